namespace Tasklets.Internal;

/// <summary>
/// The waits a coordination primitive ended under its gate, to be woken after the gate is released, in the order
/// they were claimed (FIFO: the first waiter served is the first to run).
/// </summary>
/// <remarks>
/// Nodes are linked through <see cref="SelectCase._next"/>, free once <see cref="WaitQueue.DequeueAndClaim"/> has
/// unlinked them. Precondition of <see cref="Add"/>: the caller claimed the node's wait and wrote its outcome.
/// </remarks>
internal struct WakeList
{
    private SelectCase? _head;
    private SelectCase? _tail;

    /// <summary>Appends a claimed node. Caller holds the source's gate.</summary>
    public void Add(SelectCase node)
    {
        node._next = null;
        if (_tail is null)
        {
            _head = node;
        }
        else
        {
            _tail._next = node;
        }

        _tail = node;
    }

    /// <summary>Wakes every node's owner, in order. Caller holds no gate; <paramref name="current"/> is the running tasklet or null.</summary>
    public readonly void WakeAll(Tasklet? current)
    {
        SelectCase? node = _head;
        while (node is not null)
        {
            // Read the link and the waiter before the wake: the woken owner may reuse its node at once.
            SelectCase? next = node._next;
            Waiter waiter = node._waiter!;
            node._next = null;
            Waiter.WakePartner(waiter, current, preferPartner: false);
            node = next;
        }
    }
}
