using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// A receive node that is the <see cref="IValueTaskSource{T}"/> of its receive, owned by one waiter and reused by it:
/// status and continuation are its waiter's. The two kinds differ only in what a close ends them with.
/// </summary>
internal abstract class ValueTaskReceive<T> : ReceiveCase<T>, IValueTaskSource<T>
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ValueTask<T> AsValueTask() => new(this, (short)_waiter!.Generation);

    /// <summary>The awaitable of the current receive, as the library's op.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TaskletOp<T> AsOp() => new(this, (short)_waiter!.Generation);

    public ValueTaskSourceStatus GetStatus(short token) => _waiter!.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _waiter!.OnCompleted(continuation, state, token, flags);

    /// <summary>The body builder's fast path (<see cref="TaskletWaiter.TryAwaitFromBody"/>) for this receive: its waiter's.</summary>
    public bool TryAwaitFromBody(TaskletBodyBox box, short token) => _waiter is TaskletWaiter waiter && waiter.TryAwaitFromBody(box, token);

    public T GetResult(short token)
    {
        // The token first: a second GetResult of a consumed receive must not take the item of a later one (this node
        // is reused by the waiter's next receive). Then the item before EndWait: an external waiter goes back to its
        // pool there and may be reused at once.
        long state = _waiter!.ThrowIfNotCompleted(token);
        T value = Value;
        Value = default!;
        _waiter.EndCompletedWait(state);
        return value;
    }
}

/// <summary>The queue node of a plain <see cref="Channel{T}.ReceiveAsync"/>: a close throws <see cref="ChannelClosedException"/>.</summary>
internal sealed class ReceiveOperation<T> : ValueTaskReceive<T>
{
    internal override bool ThrowsOnClosed => true;
}

/// <summary>The queue node of an <c>await foreach</c> receive: reports close instead of throwing.</summary>
internal sealed class EnumeratorReceive<T> : ReceiveCase<T>
{
}

/// <summary>The queue node of a plain <see cref="Channel{T}.SendAsync"/>, owned by one waiter; the waiter is the awaitable.</summary>
internal sealed class SendOperation<T> : SendCase<T>
{
}

/// <summary>The <c>await foreach</c> enumerator of a channel: receives until the channel is closed and drained.</summary>
internal sealed class ChannelEnumerator<T> : IAsyncEnumerator<T>, IValueTaskSource<bool>
{
    private readonly Channel<T> _channel;
    private readonly CancellationToken _cancellationToken;
    private ReceiveCase<T>? _pending;

    public ChannelEnumerator(Channel<T> channel, CancellationToken cancellationToken)
    {
        _channel = channel;
        _cancellationToken = cancellationToken;
    }

    public T Current { get; private set; } = default!;

    public ValueTask<bool> MoveNextAsync()
    {
        ReceiveCase<T>? parked = _channel.ReceiveForEnumerator(_cancellationToken, out T value, out bool closed);
        if (parked is null)
        {
            Current = value;
            return new ValueTask<bool>(!closed);
        }

        _pending = parked;
        return new ValueTask<bool>(this, (short)parked._waiter!.Generation);
    }

    public ValueTask DisposeAsync() => default;

    public ValueTaskSourceStatus GetStatus(short token) => Pending._waiter!.GetStatus(token);

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => Pending._waiter!.OnCompleted(continuation, state, token, flags);

    // The node of the MoveNextAsync in progress; none once its result was taken (awaiting it again is stale).
    private ReceiveCase<T> Pending => _pending ?? throw new InvalidOperationException(Strings.StaleAwait);

    public bool GetResult(short token)
    {
        ReceiveCase<T> node = _pending ?? throw new InvalidOperationException(Strings.StaleAwait);
        node._waiter!.ThrowIfNotCompleted(token); // before touching the node: see ReceiveOperation.GetResult
        _pending = null;
        T value = node.Value;
        bool closed = node.IsClosed;
        node.Value = default!;
        node._waiter!.EndWait(token);
        if (closed)
        {
            return false;
        }

        Current = value;
        return true;
    }
}

/// <summary>
/// The queue node of an STC reader's <c>ReadAsync</c> (<see cref="ChannelInteropExtensions.AsChannelReader{T}"/>): as
/// <see cref="ReceiveOperation{T}"/>, but a close ends it with STC's exception (the channel's close writes that
/// outcome: see <c>Channel.ClosedOutcome</c>).
/// </summary>
internal sealed class ReaderReceive<T> : ValueTaskReceive<T>
{
}

/// <summary>
/// The queue node of an STC writer's <c>WriteAsync</c> (<see cref="ChannelInteropExtensions.AsChannelWriter{T}"/>), owned by one waiter;
/// the waiter is the awaitable. As <see cref="SendOperation{T}"/>, but a close ends it with STC's exception.
/// </summary>
internal sealed class WriterSend<T> : SendCase<T>
{
}
