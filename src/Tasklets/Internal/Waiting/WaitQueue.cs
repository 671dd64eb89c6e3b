using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// An intrusive FIFO of queue nodes (<see cref="SelectCase"/>): the blocked senders or the blocked receivers of
/// one channel (Go's <c>waitq</c>).
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enqueue(SelectCase node)
    {
        Debug.Assert(!node._queued, "node already queued");
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
        Debug.Assert(node._queued, "node not queued");
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
        node._queued = false;
    }

    /// <summary>
    /// Dequeues nodes until one whose wait this call claims; stale nodes met on the way are dropped.
    /// Returns null when no live node remains. The claimed node's waiter must then get an outcome and a wake.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public SelectCase? DequeueAndClaim()
    {
        SelectCase? node;
        while ((node = _first) is not null)
        {
            Remove(node);
            if (node._waiter!.TryClaim(node._generation))
            {
                return node;
            }
        }

        return null;
    }

    /// <summary>True when some node's wait can still be claimed (readiness checks for select and Try).</summary>
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
