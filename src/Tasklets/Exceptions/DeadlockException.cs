namespace Tasklets;

/// <summary>
/// Thrown by <see cref="Scheduler.Run()"/> when no tasklet can ever make progress again: nothing is ready, no
/// timer is pending, nothing waits on a foreign awaitable or an externally reachable primitive, and every
/// scheduler running in the process is stuck the same way.
/// </summary>
/// <remarks>
/// The message lists every blocked tasklet with its id, name and what it waits on. With
/// <see cref="SchedulerOptions.KillOnDeadlock"/> (the default) those tasklets were killed before the exception
/// was thrown, so their <c>finally</c> blocks ran. Failures nobody observed by then (often the cause: a producer
/// that crashed and left its consumer blocked, or a <c>finally</c> that threw) are listed too, and are its
/// <see cref="Exception.InnerException"/>, an <see cref="AggregateException"/>.
/// </remarks>
public class DeadlockException : Exception
{
    private readonly Tasklet[] _blocked = [];

    /// <summary>Creates the exception with the default message.</summary>
    public DeadlockException()
        : base("Deadlock: every tasklet is blocked and nothing can wake any of them.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public DeadlockException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public DeadlockException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }

    internal DeadlockException(string message, Tasklet[] blocked, Exception? innerException = null)
        : base(message, innerException)
    {
        _blocked = blocked;
    }

    /// <summary>The tasklets that were blocked when the deadlock was detected.</summary>
    public IReadOnlyList<Tasklet> Blocked => _blocked;
}
