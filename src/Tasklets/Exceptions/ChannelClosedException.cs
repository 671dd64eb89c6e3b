namespace Tasklets;

/// <summary>
/// Raised by a send on a closed channel (the item was not delivered), and by a receive on a channel that is
/// closed and drained.
/// </summary>
public class ChannelClosedException : InvalidOperationException
{
    /// <summary>Creates the exception with the default message.</summary>
    public ChannelClosedException()
        : base("The channel is closed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public ChannelClosedException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the exception that caused it.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The cause.</param>
    public ChannelClosedException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }
}
