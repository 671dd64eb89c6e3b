using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// The registration of a readiness wait: it waits until its source could perform an operation for its owner, and
/// takes nothing (dotnet's <c>WaitingReadAsyncOperation</c>, beside the <c>BlockedReadAsyncOperation</c> that carries
/// an item). The awaitable of System.Threading.Channels' <c>WaitToReadAsync</c>/<c>WaitToWriteAsync</c> over a channel.
/// </summary>
/// <remarks>
/// <para><b>Claim rules</b> (the layer's, unchanged): the source claims a queued readiness node under its gate at the
/// transition that makes it ready (<see cref="WaitQueue.DequeueAndClaim"/>), writes the answer as the fired index
/// (<see cref="Ready"/> or <see cref="NotReady"/>) and, for "never again" with a cause, that cause as the exception,
/// and wakes the owner after releasing the gate. The answer is decided before the claim, and a claim that loses to a
/// kill, timeout or cancellation changes nothing; the loser of the claim is dropped from the queue like any stale
/// node. A readiness node takes nothing, so an ended readiness wait can lose nothing.</para>
/// <para>A source wakes every queued readiness node at the transition, not one: the wait promises "ready now", not
/// "yours", and a woken owner that does not follow with an operation must not leave another waiter parked while the
/// source is ready.</para>
/// <para>Never a select case (<see cref="PassiveNode"/>). The subclass says which queue of its source it is in.</para>
/// <para><b>Deferred wake</b>: a source whose gate is released by code that holds other gates too (a select over
/// several sources) cannot wake from there without running foreign code under a lock, so it hands the claimed node
/// to the thread pool (<see cref="WakeLater"/>); the owner stays parked, claimed, until the pool wakes it.</para>
/// </remarks>
internal abstract class ReadinessNode : PassiveNode, IValueTaskSource<bool>, IThreadPoolWorkItem
{
    /// <summary>The fired index of a wait that ended because the source is ready: the await returns true.</summary>
    public const int Ready = 1;

    /// <summary>The fired index of a wait that ended because the source will never be ready again: the await returns false (or throws the cause the claimer wrote).</summary>
    public const int NotReady = 0;

    /// <summary>The awaitable of the current wait: true when ready, false when never again.</summary>
    public ValueTask<bool> AsValueTask() => new(this, (short)_waiter!.Generation);

    /// <inheritdoc/>
    public ValueTaskSourceStatus GetStatus(short token) => _waiter!.GetStatus(token);

    /// <inheritdoc/>
    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        => _waiter!.OnCompleted(continuation, state, token, flags);

    /// <inheritdoc/>
    public bool GetResult(short token)
    {
        // EndWait checks the token before anything else (a stale await throws and touches nothing), withdraws the node
        // if still queued (a wait ended by cancellation, kill or timeout), and throws the outcome's exception. Nothing
        // of the node is read after it: an external waiter goes back to its pool there.
        return _waiter!.EndWait(token) == Ready;
    }

    /// <summary>
    /// Wakes the owner from the thread pool. Precondition: the caller claimed the wait and wrote the answer; it may
    /// still hold gates. Nothing touches the node after the wake: its owner may reuse it at once.
    /// </summary>
    public void WakeLater() => ThreadPool.UnsafeQueueUserWorkItem(this, preferLocal: false);

    /// <summary>The thread pool's call for <see cref="WakeLater"/>.</summary>
    void IThreadPoolWorkItem.Execute() => _waiter!.Wake(front: false);

    /// <summary>
    /// Wakes the owners of a list of claimed readiness nodes (linked through <see cref="SelectCase._next"/>, the list
    /// the caller detached under its gate), in list order: directly, as a handoff's wake (the caller holds no gate), or
    /// from the thread pool (<paramref name="later"/>: the caller may hold gates).
    /// </summary>
    public static void WakeAll(SelectCase? list, Tasklet? current, bool later)
    {
        while (list is not null)
        {
            // Read the link before the wake: the woken owner may reuse its node at once.
            var node = (ReadinessNode)list;
            list = node._next;
            node._next = null;
            if (later)
            {
                node.WakeLater();
            }
            else
            {
                Waiter.WakePartner(node._waiter!, current, preferPartner: false);
            }
        }
    }
}
