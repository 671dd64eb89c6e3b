using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// An intrusive FIFO of queue nodes (<see cref="SelectCase"/>): the blocked senders or the blocked receivers of
/// one channel (Go's <c>waitq</c>), the joiners of a tasklet.
/// </summary>
/// <remarks>
/// Caller holds the owning channel's lock for every call. A node is in at most one queue at a time, and
/// <c>node._queued</c> says whether it is in one. Removal is O(1), so a select's losing cases and waits ended
/// by kill, timeout or cancellation are withdrawn at once rather than left for a partner to skip.
/// Nodes whose wait was already claimed by someone else may still be queued for a moment (a kill claims without
/// the channel lock); partners skip them with a failed claim, and their owner withdraws them on resumption.
/// </remarks>
internal struct WaitQueue
{
    private SelectCase? _first;
    private SelectCase? _last;

    public readonly SelectCase? First => _first;

    public readonly bool IsEmpty => _first is null;

    /// <summary><see cref="IsEmpty"/> as a volatile read, for the seqlock readers of <see cref="Select.Try(ReadOnlySpan{SelectCase})"/> (no lock held).</summary>
    public readonly bool IsEmptyVolatile => Volatile.Read(in _first) is null;

    /// <summary>
    /// Begins <paramref name="waiter"/>'s wait of <paramref name="kind"/> with <paramref name="node"/> (bound to this
    /// queue's source) as its one registration, queued here; returns the wait's generation. Caller holds the source's
    /// gate and rented the waiter and the node before: nothing here throws, so the node is queued iff the wait began.
    /// </summary>
    public long BeginWaitLocked(Waiter waiter, SelectCase node, WaitKind kind, int caseIndex = 0)
    {
        long generation = waiter.BeginWait(kind);
        Enqueue(node, waiter, generation, caseIndex);
        waiter.AddRegistration(node);
        return generation;
    }

    /// <summary>Records <paramref name="node"/> as a registration of wait <paramref name="generation"/> of <paramref name="waiter"/> and queues it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enqueue(SelectCase node, Waiter waiter, long generation, int caseIndex)
    {
        if (!ReferenceEquals(node._waiter, waiter))
        {
            node._waiter = waiter; // a cached node or a reused case usually has this waiter already: no write barrier
        }

        node._generation = generation;
        node._caseIndex = caseIndex;
        Enqueue(node);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Enqueue(SelectCase node)
    {
        if (node._queued)
        {
            // Checked in Release too: linking a node that is in a queue already would cut that queue, and the nodes
            // cut off would never be paired or withdrawn. Callers rule it out first (Select checks its cases under
            // the locks before it begins its wait), so this fires only on a library bug.
            ThrowHelper.ThrowInvalidOperation(Strings.NodeAlreadyQueued);
        }

        // Stores of a constant null need no GC write barrier; a queue of one (the usual case) takes that path.
        SelectCase? last = _last;
        node._next = null;
        if (last is null)
        {
            node._prev = null;
            _first = node;
        }
        else
        {
            node._prev = last;
            last._next = node;
        }

        _last = node;
        node._queued = true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Remove(SelectCase node)
    {
        if (!node._queued)
        {
            // Checked in Release too: unlinking a node that is in no queue would empty this one.
            ThrowHelper.ThrowInvalidOperation(Strings.NodeNotQueued);
        }

        SelectCase? prev = node._prev;
        SelectCase? next = node._next;
        if (prev is null && next is null)
        {
            // The only node: constant-null stores, no write barriers.
            _first = null;
            _last = null;
        }
        else
        {
            if (prev is null)
            {
                _first = next;
            }
            else
            {
                prev._next = next;
            }

            if (next is null)
            {
                _last = prev;
            }
            else
            {
                next._prev = prev;
            }
        }

        node._prev = null;
        node._next = null;
        // Release: every read of the node before this line (DequeueAndClaim's registration) stays before it, since
        // an owner that reads false here (Waiter.EndWait, with an acquire read) may reuse the node at once.
        Volatile.Write(ref node._queued, false);
    }

    /// <summary>
    /// Dequeues nodes until one whose wait this call claims; stale nodes met on the way are dropped.
    /// Returns null when no live node remains. The claimed node's waiter must then get an outcome and a wake.
    /// </summary>
    /// <remarks>
    /// The claim is the only test of liveness that counts: a node that looked live a moment ago (<see cref="HasLive"/>)
    /// may have been claimed since by a kill, a timeout, a cancellation or a partner on another source of the same
    /// select, none of which holds this queue's lock. A dropped node belongs to a wait that is over; its owner's
    /// <see cref="Waiter.EndWait"/> finds it unqueued and leaves it. The caller acts only on the node returned.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SelectCase? DequeueAndClaim()
    {
        SelectCase? node;
        while ((node = _first) is not null)
        {
            // The registration is read before the node is unlinked: once it is unlinked, the owner of a wait that
            // someone else ended may take it back and reuse it for its next operation, so after Remove nothing may
            // touch the node unless this claim (of the generation read here) wins.
            Waiter waiter = node._waiter!;
            long generation = node._generation;
            Remove(node);
            if (waiter.TryClaim(generation))
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>
    /// True when some node's wait can still be claimed. A hint only: the claim may fail by the time the caller acts,
    /// so callers act through <see cref="DequeueAndClaim"/> and treat a null there as "not ready after all".
    /// </summary>
    public readonly bool HasLive()
    {
        for (SelectCase? node = _first; node is not null; node = node._next)
        {
            if (node._waiter!.IsParkedWith(node._generation))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>The number of nodes whose wait can still be claimed.</summary>
    public readonly int CountLive()
    {
        int count = 0;
        for (SelectCase? node = _first; node is not null; node = node._next)
        {
            if (node._waiter!.IsParkedWith(node._generation))
            {
                count++;
            }
        }

        return count;
    }
}
