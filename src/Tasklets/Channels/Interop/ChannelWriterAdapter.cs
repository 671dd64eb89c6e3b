using System.Diagnostics;
using Stc = System.Threading.Channels;

namespace Tasklets.Internal;

/// <summary>
/// A System.Threading.Channels writer over a Tasklets channel (<see cref="ChannelInteropExtensions.AsChannelWriter{T}"/>):
/// each member is one operation of the channel, with STC's way of reporting a completed channel
/// (<see cref="StcCompletion"/>). Stateless, thread-safe; see <see cref="ChannelReaderAdapter{T}"/> for where waits resume.
/// </summary>
[DebuggerDisplay("STC writer over {_channel}")]
internal sealed class ChannelWriterAdapter<T> : Stc.ChannelWriter<T>
{
    private readonly Channel<T> _channel;

    public ChannelWriterAdapter(Channel<T> channel)
    {
        _channel = channel;
    }

    /// <summary><see cref="Channel{T}.Close(Exception?)"/>, reporting whether this call closed it (false: closed already, its first error kept).</summary>
    public override bool TryComplete(Exception? error = null) => _channel.TryClose(error);

    /// <summary><see cref="Channel{T}.TrySend"/>: false when the send would wait, or the channel is closed.</summary>
    public override bool TryWrite(T item) => _channel.TrySend(item);

    /// <summary>True when a send could proceed now (on an unbuffered channel: a receiver is blocked); false when closed; the close error itself if closed with one.</summary>
    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
        => _channel.WaitToSendAsync(cancellationToken);

    /// <summary><see cref="Channel{T}.SendAsync"/>, reporting a closed channel as STC does (a failed task, never a throw).</summary>
    public override ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
        => _channel.SendForWriterAsync(item, cancellationToken);
}
