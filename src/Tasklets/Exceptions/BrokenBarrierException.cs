namespace Tasklets;

/// <summary>
/// Raised by <see cref="AsyncBarrier.SignalAndWaitAsync"/> when the barrier is broken (Python's
/// <c>BrokenBarrierError</c>): a waiting participant's wait ended by kill, timeout or cancellation before the phase
/// completed, or <see cref="AsyncBarrier.Reset"/> was called while participants waited. The barrier stays broken
/// until <see cref="AsyncBarrier.Reset"/>.
/// </summary>
public class BrokenBarrierException : InvalidOperationException
{
    /// <summary>Creates the exception with the default message.</summary>
    public BrokenBarrierException()
        : base("The barrier is broken. Call Reset to use it again.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public BrokenBarrierException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public BrokenBarrierException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
