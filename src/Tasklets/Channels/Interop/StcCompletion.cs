using Stc = System.Threading.Channels;

namespace Tasklets.Internal;

/// <summary>
/// How System.Threading.Channels reports a completed channel to an operation, for the adapters: the rules of STC's
/// readers and writers (its <c>ChannelUtilities</c>), so that code written against STC sees what it expects.
/// </summary>
/// <remarks>
/// An operation (read, write) on a channel completed with an <see cref="OperationCanceledException"/> is cancelled with
/// it; with another error, it fails with STC's <see cref="Stc.ChannelClosedException"/> whose inner exception is the
/// error; with none, with a plain one. A readiness wait (<c>WaitToReadAsync</c>, <c>WaitToWriteAsync</c>) fails with the
/// error itself, and a normal completion answers false (see Channel.Readiness.cs).
/// </remarks>
internal static class StcCompletion
{
    /// <summary>The exception an operation on a channel closed with <paramref name="error"/> (or none) ends with.</summary>
    public static Exception OperationError(Exception? error) => error switch
    {
        OperationCanceledException canceled => canceled,
        null => new Stc.ChannelClosedException(),
        _ => new Stc.ChannelClosedException(error),
    };

    /// <summary><see cref="OperationError"/> as the result of an operation that found the channel closed when it began.</summary>
    public static ValueTask<TResult> FailedOperation<TResult>(Exception? error)
        => error is OperationCanceledException canceled
            ? ValueTask.FromCanceled<TResult>(CanceledToken(canceled))
            : ValueTask.FromException<TResult>(OperationError(error));

    /// <summary><see cref="OperationError"/> as the result of an operation that found the channel closed when it began.</summary>
    public static ValueTask FailedOperation(Exception? error)
        => error is OperationCanceledException canceled
            ? ValueTask.FromCanceled(CanceledToken(canceled))
            : ValueTask.FromException(OperationError(error));

    // A cancelled task needs a cancelled token: the error's own if it is cancelled (an OperationCanceledException made
    // by hand may carry none), else a token that is.
    private static CancellationToken CanceledToken(OperationCanceledException canceled)
        => canceled.CancellationToken.IsCancellationRequested ? canceled.CancellationToken : new CancellationToken(canceled: true);
}
