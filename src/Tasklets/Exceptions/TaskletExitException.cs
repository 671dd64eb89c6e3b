namespace Tasklets;

/// <summary>
/// Raised inside a tasklet that was killed (<see cref="Tasklet.Kill"/>), at its blocking point.
/// </summary>
/// <remarks>
/// A kill is sticky: if the tasklet catches this exception and reaches another blocking operation, the
/// exception is raised again, so a broad <c>catch (Exception)</c> cannot make a tasklet unkillable. A killed
/// tasklet counts as cancelled, not failed: joining it throws this exception, and
/// <see cref="Scheduler.Run()"/> does not report it.
/// </remarks>
public class TaskletExitException : OperationCanceledException
{
    /// <summary>Creates the exception with the default message.</summary>
    public TaskletExitException()
        : base("The tasklet was killed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public TaskletExitException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public TaskletExitException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
