namespace Tasklets;

/// <summary>
/// Raised by a blocking operation of a tasklet whose <see cref="Tasklet.Timeout(TimeSpan)"/> deadline has passed.
/// </summary>
/// <remarks>
/// The operation that throws took no effect: a receive took no item, a send delivered none.
/// <see cref="Scope"/> names the scope whose deadline fired (the earliest of nested scopes).
/// </remarks>
public class TaskletTimeoutException : TimeoutException
{
    /// <summary>Creates the exception with the default message.</summary>
    public TaskletTimeoutException()
        : base("The tasklet's timeout expired.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public TaskletTimeoutException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public TaskletTimeoutException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }

    internal TaskletTimeoutException(string message, TimeoutScope scope)
        : base(message)
    {
        Scope = scope;
    }

    /// <summary>The timeout scope whose deadline expired, when the exception came from one.</summary>
    public TimeoutScope? Scope { get; }
}
