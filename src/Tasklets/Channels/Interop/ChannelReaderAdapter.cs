using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using Stc = System.Threading.Channels;

namespace Tasklets.Internal;

/// <summary>
/// A System.Threading.Channels reader over a Tasklets channel (<see cref="ChannelInteropExtensions.AsChannelReader{T}"/>):
/// each member is one operation of the channel, so every rule of the channel (FIFO, no barging, nothing lost, close)
/// holds for it, with STC's way of reporting a completed channel (<see cref="StcCompletion"/>).
/// </summary>
/// <remarks>
/// Stateless: any number of adapters, readers and threads may use one channel at once. Operations begun inside a
/// tasklet are library waits of that tasklet (kill, timeouts, deadlock detection and Dump see them); from plain code
/// they resume through the caller's context or the thread pool, never inline on the party that completed them.
/// </remarks>
[DebuggerDisplay("STC reader over {_channel}")]
internal sealed class ChannelReaderAdapter<T> : Stc.ChannelReader<T>
{
    private readonly Channel<T> _channel;

    public ChannelReaderAdapter(Channel<T> channel)
    {
        _channel = channel;
    }

    /// <summary>The channel's <see cref="Channel{T}.Completion"/>: closed and drained.</summary>
    public override Task Completion => _channel.Completion;

    /// <summary>True: the buffered items can be counted.</summary>
    public override bool CanCount => true;

    /// <summary>The buffered items (<see cref="Channel{T}.Count"/>); an unbuffered channel's is always 0, as STC's rendezvous channel's.</summary>
    public override int Count => _channel.Count;

    /// <summary><see cref="Channel{T}.TryReceive"/>: an exception sent with <see cref="Channel{T}.SendException"/> is thrown here.</summary>
    public override bool TryRead([MaybeNullWhen(false)] out T item) => _channel.TryReceive(out item);

    /// <summary>True when a receive could proceed now (on an unbuffered channel: a sender is blocked); false when closed and drained; the close error itself if closed with one.</summary>
    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
        => _channel.WaitToReceiveAsync(cancellationToken);

    /// <summary><see cref="Channel{T}.ReceiveAsync"/>, reporting a closed and drained channel as STC does.</summary>
    public override ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
        => _channel.ReceiveForReaderAsync(cancellationToken);
}
