using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

// The System.Threading.Channels facet of Channel<T>: readiness waits, and the receive and send of the STC adapters,
// whose close is reported in STC's terms. Relies on Channel.cs's invariants and transitions (readiness waits are
// claimed at every transition, under the gate, and woken by ReleaseGate) and on its close rules.
public sealed partial class Channel<T>
{
    // ---------------------------------------------------------------- readiness waits

    /// <summary>
    /// STC's <c>WaitToReadAsync</c>: completes with true when a receive could proceed (an item is buffered, an
    /// exception is pending, or a sender is blocked: on an unbuffered channel a waiting sender is readable), with false
    /// when the channel is closed and drained, and fails with the close error itself if it was closed with one.
    /// Takes nothing. A true is a snapshot: another receiver may take the item first.
    /// </summary>
    internal ValueTask<bool> WaitToReceiveAsync(CancellationToken cancellationToken) => WaitReadyCore(forSend: false, cancellationToken);

    /// <summary>
    /// STC's <c>WaitToWriteAsync</c>: completes with true when a send could proceed (a receiver is blocked, the buffer
    /// has room, or the channel is unbounded), with false when the channel is closed, and fails with the close error
    /// itself if it was closed with one. A true is a snapshot: another sender may take the room first.
    /// </summary>
    internal ValueTask<bool> WaitToSendAsync(CancellationToken cancellationToken) => WaitReadyCore(forSend: true, cancellationToken);

    private ValueTask<bool> WaitReadyCore(bool forSend, CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        Waiter waiter;
        ReadinessWait node;
        using (new GateHold(this))
        {
            // Exact for the buffer, the errors and close; a live partner node is a hint (it may be claimed by a kill
            // right after), which is what a readiness answer is anyway: the operation that follows decides.
            if (forSend ? !_closed && IsSendReadyLocked() : _buffer.Count > 0 || _errorCount > 0 || _senders.HasLive())
            {
                return new ValueTask<bool>(true);
            }

            if (_closed)
            {
                // Closed and drained (a receive), or closed (a send): never again.
                return CloseError is { } error ? ValueTask.FromException<bool>(error) : new ValueTask<bool>(false);
            }

            // Park. Renting (and the cold state) before BeginWait; nothing after it can throw.
            ColdState cold = ColdLocked();
            waiter = Waiter.ForParty(current);
            node = waiter.RentNode<ReadinessWait>();
            node.Bind(this, forSend);
            _ = forSend
                ? cold.WriteWaiters.BeginWaitLocked(waiter, node, WaitKind.Send)
                : cold.ReadWaiters.BeginWaitLocked(waiter, node, WaitKind.Receive);
        }

        waiter.Commit(node._generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return node.AsValueTask();
    }

    /// <summary>The readiness waits that can still be claimed, read and write (tests and diagnostics; takes the gate).</summary>
    internal (int Read, int Write) CountReadinessWaits()
    {
        using (new GateScope(ref _gate))
        {
            return _cold is { } cold ? (cold.ReadWaiters.CountLive(), cold.WriteWaiters.CountLive()) : (0, 0);
        }
    }

    // ---------------------------------------------------------------- the STC reader's receive and writer's send

    /// <summary>
    /// STC's <c>ReadAsync</c>: <see cref="ReceiveAsync"/>, except that "closed and drained" is STC's
    /// <c>ChannelClosedException</c> (inner: the close error), or the close error itself if it is an
    /// <see cref="OperationCanceledException"/>; and it never switches tasklets (an adapter call has no preference).
    /// </summary>
    internal ValueTask<T> ReceiveForReaderAsync(CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        Waiter? partner;
        T value;
        bool closed;
        Exception? error;
        Waiter waiter;
        ReaderReceive<T> node;
        using (new GateHold(this))
        {
            if (TryReceiveLocked(out value, out closed, out partner, out error))
            {
                goto Received;
            }

            // Park; as in ReceiveCore, nothing from BeginWait to the end of the block can throw.
            waiter = Waiter.ForParty(current);
            node = waiter.RentNode<ReaderReceive<T>>();
            long generation = waiter.BeginWait(WaitKind.Receive);
            node.Bind(this);
            EnqueueReceiverLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        waiter.Commit(node._generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return node.AsValueTask();

    Received:
        if (error is not null)
        {
            return ValueTask.FromException<T>(error); // SendException's: meant for the next receiver, whoever it is
        }

        if (closed)
        {
            return StcCompletion.FailedOperation<T>(CloseError);
        }

        if (partner is not null)
        {
            Waiter.WakePartner(partner, current, preferPartner: false);
        }

        return new ValueTask<T>(value);
    }

    /// <summary>
    /// STC's <c>WriteAsync</c>: <see cref="SendAsync"/>, except that a closed channel is STC's
    /// <c>ChannelClosedException</c> (inner: the close error), or the close error itself if it is an
    /// <see cref="OperationCanceledException"/>, as a failed task rather than a throw; and it never switches tasklets.
    /// </summary>
    internal ValueTask SendForWriterAsync(T item, CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkExternalIfNeeded(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        Waiter? partner;
        Waiter waiter;
        long generation;
        using (new GateHold(this))
        {
            if (_closed)
            {
                goto Closed; // before TrySendLocked, which would throw this library's exception
            }

            if (TrySendLocked(item, out partner))
            {
                goto Sent;
            }

            // Park; as in SendCore, nothing from BeginWait to the end of the block can throw.
            waiter = Waiter.ForParty(current);
            WriterSend<T> node = waiter.RentNode<WriterSend<T>>();
            generation = waiter.BeginWait(WaitKind.Send);
            node.Bind(this);
            node.Item = item;
            EnqueueSenderLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return waiter.AsValueTask();

    Sent:
        if (partner is not null)
        {
            Waiter.WakePartner(partner, current, preferPartner: false);
        }

        return default;

    Closed:
        return StcCompletion.FailedOperation(CloseError);
    }

    // ---------------------------------------------------------------- the readiness registration

    /// <summary>
    /// The registration of a readiness wait on this channel, in its read or write readiness queue (the cold state's);
    /// owned and reused by its waiter.
    /// </summary>
    private sealed class ReadinessWait : ReadinessNode
    {
        /// <summary>True for a write-readiness wait, false for a read-readiness one. Written by the owner before it queues the node.</summary>
        public bool ForSend { get; private set; }

        // Set only to a Channel<T> (Bind), so no type check is needed.
        private Channel<T> Typed => Unsafe.As<Channel<T>>(_source!);

        public void Bind(Channel<T> channel, bool forSend)
        {
            BindSource(channel);
            ForSend = forSend;
        }

        internal override string DescribeWait() => (ForSend ? "wait to send on " : "wait to receive on ") + Typed.Describe();

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        {
            ColdState cold = Typed.ColdLocked();
            if (ForSend)
            {
                cold.WriteWaiters.Enqueue(this, waiter, generation, caseIndex);
            }
            else
            {
                cold.ReadWaiters.Enqueue(this, waiter, generation, caseIndex);
            }
        }
    }
}
