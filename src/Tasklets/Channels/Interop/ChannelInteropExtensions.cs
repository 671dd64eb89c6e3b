using Tasklets.Internal;
using Stc = System.Threading.Channels;

namespace Tasklets;

/// <summary>
/// Bridges between Tasklets channels and System.Threading.Channels (STC): STC's reader and writer over a
/// <see cref="Channel{T}"/>, for code written against STC, and a <see cref="Channel{T}"/> fed by an STC reader, for
/// tasklets that want to receive from it with <see cref="Select"/>, kill and timeouts. See docs/semantics.md,
/// "System.Threading.Channels interop".
/// </summary>
public static class ChannelInteropExtensions
{
    /// <summary>
    /// An STC <see cref="Stc.ChannelReader{T}"/> over this channel: each of its members is an operation of the
    /// channel (<c>TryRead</c> is <see cref="Channel{T}.TryReceive"/>, <c>ReadAsync</c> is
    /// <see cref="Channel{T}.ReceiveAsync"/>), so FIFO service, no barging and "nothing is lost" hold as for any
    /// receiver.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="channel">The channel.</param>
    /// <returns>A reader; any number of them, and other receivers, may use the channel at once, from any thread.</returns>
    /// <remarks>
    /// <para><c>WaitToReadAsync</c> takes nothing: true when a receive could proceed now (an item is buffered, an
    /// exception from <see cref="Channel{T}.SendException"/> is pending, or, on an unbuffered channel, a sender is
    /// blocked), false once the channel is closed and drained, and it fails with the close error itself if the channel
    /// was closed with one. <c>ReadAsync</c> on a closed and drained channel fails with STC's
    /// <see cref="Stc.ChannelClosedException"/> (inner: the close error), or is cancelled if that error is an
    /// <see cref="OperationCanceledException"/>. <c>Completion</c> is <see cref="Channel{T}.Completion"/>;
    /// <c>Count</c> is the buffered items. <c>TryPeek</c> is not supported (<c>CanPeek</c> is false).</para>
    /// <para>Works from plain async code and OS threads as well as inside tasklets (where its waits are library waits:
    /// kill and timeouts end them, deadlock detection sees them). Continuations never run inline on the party that
    /// completed the wait. Cancellation tokens are honoured: a cancelled read took nothing.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="channel"/> is null.</exception>
    public static Stc.ChannelReader<T> AsChannelReader<T>(this Channel<T> channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        return new ChannelReaderAdapter<T>(channel);
    }

    /// <summary>
    /// An STC <see cref="Stc.ChannelWriter{T}"/> over this channel: <c>TryWrite</c> is <see cref="Channel{T}.TrySend"/>,
    /// <c>WriteAsync</c> is <see cref="Channel{T}.SendAsync"/> (on an unbuffered channel it completes when a receiver
    /// has the item), <c>TryComplete(error)</c> is <see cref="Channel{T}.Close(Exception?)"/>.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="channel">The channel.</param>
    /// <returns>A writer; any number of them, and other senders, may use the channel at once, from any thread.</returns>
    /// <remarks>
    /// <para><c>WaitToWriteAsync</c>: true when a send could proceed now (a receiver is blocked, the buffer has room, or
    /// the channel is unbounded), false once the channel is closed, and it fails with the close error itself if it was
    /// closed with one. <c>WriteAsync</c> on a closed channel fails with STC's <see cref="Stc.ChannelClosedException"/>
    /// (inner: the close error), or is cancelled if that error is an <see cref="OperationCanceledException"/>; a write
    /// that fails or is cancelled delivered nothing. <c>TryComplete</c> returns false when the channel was closed
    /// already (the first close and its error stay), so <c>Complete</c> then throws, as STC's does.</para>
    /// <para>Where waits resume: as for <see cref="AsChannelReader{T}"/>.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="channel"/> is null.</exception>
    public static Stc.ChannelWriter<T> AsChannelWriter<T>(this Channel<T> channel)
    {
        ArgumentNullException.ThrowIfNull(channel);
        return new ChannelWriterAdapter<T>(channel);
    }

    /// <summary>
    /// A Tasklets channel fed from this STC reader, so that tasklets receive from it as from any channel:
    /// <see cref="Channel{T}.ReceiveAsync"/>, a <see cref="Select"/> case beside other channels, <c>await foreach</c>,
    /// with kill and timeouts ending the wait at once.
    /// </summary>
    /// <typeparam name="T">The item type.</typeparam>
    /// <param name="reader">The reader to drain. Other readers may share it; each item goes to one of them.</param>
    /// <param name="name">A name for the view, for diagnostics (<see cref="Channel{T}.Name"/>).</param>
    /// <param name="cancellationToken">Stops the pump: the view is closed with the cancellation (its receivers get
    /// <see cref="ChannelClosedException"/> with the <see cref="OperationCanceledException"/> inside) once the pump
    /// holds no item.</param>
    /// <returns>The view: an unbuffered channel, closed by the pump when the reader is completed and drained (with the reader's error, if any), whether or not a receiver waits.</returns>
    /// <remarks>
    /// <para>A pump on the thread pool moves the items. It takes an item from the reader only when a receiver waits on
    /// the view, and hands it to a receiver of the view before it takes the next one, so no item is lost and at most
    /// one is out of the reader while nobody receives (when the receiver it was meant for gave up meanwhile). So polls
    /// (<see cref="Channel{T}.TryReceive"/>, <see cref="Select.Try(ReadOnlySpan{SelectCase})"/>) find an item only while the pump holds one: a
    /// consumer waits with <see cref="Channel{T}.ReceiveAsync"/> or <see cref="Select.WaitAsync(ReadOnlySpan{SelectCase})"/>.</para>
    /// <para>Only the pump closes the view: <see cref="Channel{T}.Close(Exception?)"/> on it throws
    /// <see cref="InvalidOperationException"/> (a close by the consumer could lose the item the pump holds); stop it
    /// with <paramref name="cancellationToken"/>. Sending into the view is allowed; its items mix with the reader's.</para>
    /// <para>The view is reachable from outside the tasklets (its pump is plain code): a tasklet waiting on it is not
    /// reported as deadlocked. The pump runs on the thread pool, so a deterministic scheduler's run that uses it is
    /// not deterministic.</para>
    /// <para>There is no Tasklets view of an STC writer: an item a tasklet's send handed to such a view would still have
    /// to reach the writer, which another party may complete meanwhile, and the item would be lost with the sender
    /// already told it was delivered. A tasklet writes to an STC writer by awaiting its <c>WriteAsync</c>.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="reader"/> is null.</exception>
    public static Channel<T> AsTaskletChannel<T>(this Stc.ChannelReader<T> reader, string? name = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(reader);
        return ReaderPump.Start(reader, name, cancellationToken);
    }
}
