using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

// The readiness facet of Channel<T>: readiness waits (STC's WaitToReadAsync/WaitToWriteAsync), the transitions that end
// them, and the work a locked path leaves for the release of the gate (their wakes, Completion). Relies on Channel.cs's
// invariants: every change of readability, writability or drain happens under the gate and calls a transition here.
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

    // ---------------------------------------------------------------- transitions (caller holds _gate; cold paths)

    /// <summary>The channel has something to receive: every read-readiness wait ends "ready", woken at the release.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReadableLocked()
    {
        ColdState cold = _cold!;
        if (!cold.ReadWaiters.IsEmpty)
        {
            ClaimReadinessLocked(cold, ref cold.ReadWaiters);
        }
    }

    /// <summary>A send can proceed: every write-readiness wait ends "ready", woken at the release.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WritableLocked()
    {
        ColdState cold = _cold!;
        if (!cold.WriteWaiters.IsEmpty)
        {
            ClaimReadinessLocked(cold, ref cold.WriteWaiters);
        }
    }

    /// <summary>A receive took a buffered item and no blocked sender refilled its slot.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void SlotFreedLocked()
    {
        if (_closed)
        {
            CompleteIfDrainedLocked(); // closed: no sender can be waiting for the slot
        }
        else
        {
            WritableLocked();
        }
    }

    /// <summary>Leaves <see cref="Completion"/> to be completed at the release if the channel is now closed and drained.</summary>
    private void CompleteIfDrainedLocked()
    {
        if (_cold is { Completion: not null } cold && IsDrainedLocked())
        {
            // Not completed here: the gate is held, and completing a task may post to a user's context. The release
            // completes it (ReleaseGate; from the thread pool if the releaser may hold other gates).
            cold.CompletionDue = true;
            _afterRelease = cold;
        }
    }

    /// <summary>Closed, nothing buffered, no exception pending: final (after close nothing can be added).</summary>
    private bool IsDrainedLocked() => _closed && _buffer.Count == 0 && _errorCount == 0;

    /// <summary>
    /// Ends every live readiness wait of <paramref name="queue"/> with "ready" and leaves them to be woken at the
    /// release of the gate. Each claim is decided before it is made (the transition happened under this gate); a
    /// node whose claim fails was ended by a kill, timeout or cancellation and is only dropped (its owner withdraws
    /// nothing: the node is no longer queued).
    /// </summary>
    private void ClaimReadinessLocked(ColdState cold, ref WaitQueue queue)
    {
        SelectCase? node;
        while ((node = queue.DequeueAndClaim()) is not null)
        {
            node._waiter!.SetOutcome(ReadinessNode.Ready, null);
            node._next = null; // unlinked by the dequeue; the link is the wake list's now
            if (cold.WakeTail is null)
            {
                cold.WakeHead = node;
            }
            else
            {
                cold.WakeTail._next = node;
            }

            cold.WakeTail = node;
        }

        if (cold.WakeHead is not null)
        {
            _afterRelease = cold;
        }
    }

    /// <summary>Close's form of <see cref="ClaimReadinessLocked(ColdState, ref WaitQueue)"/>: "never again", with <paramref name="error"/> as what the wait throws.</summary>
    private static void ClaimReadinessLocked(ref WaitQueue queue, ref WakeList wakeList, Exception? error)
    {
        SelectCase? node;
        while ((node = queue.DequeueAndClaim()) is not null)
        {
            node._waiter!.SetOutcome(ReadinessNode.NotReady, error);
            wakeList.Add(node);
        }
    }

    /// <summary>Releases the gate taken by a <see cref="GateHold"/>, then does what the locked path left to do.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseGate()
    {
        // Read under the gate: only a holder writes it.
        ColdState? work = _afterRelease;
        if (work is null)
        {
            _gate.Exit();
            return;
        }

        ReleaseGateAndRun(work, later: false);
    }

    /// <summary>
    /// Takes the work <paramref name="cold"/> holds, releases the gate, and does it: wakes the readiness waits claimed
    /// (directly, or from the thread pool when <paramref name="later"/>: the caller may hold other gates) and completes
    /// <see cref="Completion"/>. Caller holds the gate and read <c>_afterRelease</c> as <paramref name="cold"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ReleaseGateAndRun(ColdState cold, bool later)
    {
        SelectCase? wakes = cold.WakeHead;
        cold.WakeHead = null;
        cold.WakeTail = null;
        bool complete = cold.CompletionDue;
        cold.CompletionDue = false;
        _afterRelease = null;
        _gate.Exit();

        ReadinessNode.WakeAll(wakes, later ? null : Tasklet.CurrentOrNull, later);
        if (complete)
        {
            // Completion, written once before it was due, and the close error are fixed by now (closed and drained).
            if (later)
            {
                ThreadPool.UnsafeQueueUserWorkItem(cold, preferLocal: false);
            }
            else
            {
                Complete(cold.Completion!, cold.CloseError);
            }
        }
    }

    /// <summary>Completes <paramref name="completion"/> as STC's Completion: cancelled for an <see cref="OperationCanceledException"/>, failed for another error.</summary>
    private static void Complete(TaskCompletionSource completion, Exception? error)
    {
        if (error is null)
        {
            completion.TrySetResult();
        }
        else if (error is OperationCanceledException canceled)
        {
            completion.TrySetCanceled(canceled.CancellationToken);
        }
        else
        {
            completion.TrySetException(error);
        }
    }

    /// <summary>The cold state, created on first need. Caller holds the gate.</summary>
    private ColdState ColdLocked()
    {
        // Published by a volatile write: lock-free readers (Completion, CloseError) read it with a volatile read.
        if (_cold is null)
        {
            Volatile.Write(ref _cold, new ColdState());
        }

        return _cold!;
    }

    // ---------------------------------------------------------------- nested types

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

    /// <summary>
    /// Holds <c>_gate</c> for a <c>using</c> block, like <see cref="GateScope"/>, and releases it through
    /// <see cref="ReleaseGate"/>, which does the work the block left (readiness wakes, Completion) once the gate is free.
    /// The scope of every path that may make the channel readable, writable or drained.
    /// </summary>
    private readonly ref struct GateHold
    {
        private readonly Channel<T> _channel;

        public GateHold(Channel<T> channel)
        {
            _channel = channel;
            channel._gate.Enter();
        }

        public void Dispose() => _channel.ReleaseGate();
    }

    /// <summary>
    /// What few channels need (see <c>_cold</c>). Every field is under the channel's gate, except that
    /// <see cref="Completion"/> and <see cref="CloseError"/>, written once, are also read lock-free after their
    /// publication.
    /// </summary>
    private sealed class ColdState : IThreadPoolWorkItem
    {
        /// <summary>The error of the first close, or null (a normal close, or open).</summary>
        public Exception? CloseError;

        /// <summary>The channel's Completion, created on first read.</summary>
        public TaskCompletionSource? Completion;

        /// <summary>The only party that may close the channel (<see cref="ReserveClose"/>), or null for anyone.</summary>
        public object? CloseOwner;

        /// <summary>Parked read-readiness waits (STC's WaitToReadAsync): <see cref="ReadinessWait"/> nodes.</summary>
        public WaitQueue ReadWaiters;

        /// <summary>Parked write-readiness waits (STC's WaitToWriteAsync): <see cref="ReadinessWait"/> nodes.</summary>
        public WaitQueue WriteWaiters;

        /// <summary>Readiness waits claimed under the gate, to be woken at its release, in claim order; linked through <c>_next</c>.</summary>
        public SelectCase? WakeHead;

        /// <summary>The last node of the wake list, or null.</summary>
        public SelectCase? WakeTail;

        /// <summary>True when the channel became closed and drained under the gate and <see cref="Completion"/> is to be completed at the release.</summary>
        public bool CompletionDue;

        /// <summary>The thread pool's completion of <see cref="Completion"/>, for a release that may hold other gates.</summary>
        void IThreadPoolWorkItem.Execute() => Complete(Completion!, CloseError);
    }
}
