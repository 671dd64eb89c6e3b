using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A condition variable over an <see cref="AsyncLock"/> (Python's <c>threading.Condition</c>, stacklesslib's
/// <c>Condition</c>, Go's <c>sync.Cond</c>): a holder of the lock waits, releasing it, until another party notifies;
/// then it holds the lock again. Thread-safe. See DESIGN.md, "Coordination", and docs/coordination.md.
/// </summary>
/// <example><code>
/// using (await gate.LockAsync())
/// {
///     await notEmpty.WaitUntilAsync(() => queue.Count > 0);
///     item = queue.Dequeue();
/// }
/// </code></example>
/// <remarks>
/// <para><b>Protocol of a wait</b>: under the lock's gate and then this condition's (ids order them: the lock is
/// always created first), the caller's ownership is checked, its node is queued here and the lock is released
/// completely (every nested acquisition), handed to the lock's first live waiter. Because the node is queued before
/// the lock is released, a party that changes the state under the lock and then notifies cannot miss the waiter.</para>
/// <para>Whatever ends the wait (a notify, a kill, a timeout, a cancellation), the waiter then reacquires the lock,
/// FIFO behind the lock's other waiters, with no deadline and no token, and an interrupt that ends the reacquire does
/// not abandon it: it is remembered and the reacquire waits again. Only then does <see cref="WaitAsync"/> return or
/// throw, so the caller's <c>using</c> always releases a lock it holds, once.</para>
/// <para><b>Notify</b> ends the waits of the first live waiters under this condition's gate (a wait already ended by
/// a kill, a timeout or a cancellation is skipped, so the notification goes to the next waiter and is not lost), and
/// wakes them after releasing it. A notification with nobody waiting is dropped, as in Go and Python.</para>
/// </remarks>
[DebuggerDisplay("{Describe(),nq}")]
public sealed class AsyncCondition : IWaitSource
{
    private readonly long _id = WaitSourceIds.Next(); // greater than the lock's: the lock exists when this is created
    private readonly AsyncLock _lock;
    private SpinGate _gate;
    private WaitQueue _waiters; // under _gate: ConditionNode registrations, FIFO

    // Set once, never cleared: a party outside a Run() scheduler's tasklets used the condition.
    private Reachability _reach; // who may end waits here from outside the deadlock detector's view

    /// <summary>Creates a condition over <paramref name="lock"/>.</summary>
    /// <param name="lock">The lock a waiter must hold; it is released during the wait and held again afterwards.</param>
    /// <exception cref="ArgumentNullException"><paramref name="lock"/> is null.</exception>
    public AsyncCondition(AsyncLock @lock)
    {
        ArgumentNullException.ThrowIfNull(@lock);
        _lock = @lock;
        Tasklet? current = Tasklet.CurrentOrNull;
        _reach = Reachability.MadeBy(current);
    }

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports.</summary>
    public string? Name { get; init; }

    /// <summary>The lock this condition is used with.</summary>
    public AsyncLock Lock => _lock;

    long IWaitSource.Id => _id;

    // A party outside the tasklets that uses the lock can notify too (it holds the lock, then notifies), so the
    // condition is as reachable as its lock.
    bool IWaitSource.IsExternal => _reach.IsExternal || ((IWaitSource)_lock).IsExternal;

    void IWaitSource.EnterGate() => _gate.Enter();

    void IWaitSource.ExitGate() => _gate.Exit();

    // ---------------------------------------------------------------- wait

    /// <summary>
    /// Releases the lock, waits for a notification, and acquires the lock again. The caller must hold the lock.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait for the notification; the lock is still reacquired before the call throws.</param>
    /// <returns>Completes when the caller holds the lock again after a notification.</returns>
    /// <remarks>
    /// Always re-check the awaited state after it returns (or use <see cref="WaitUntilAsync"/>): another party may have
    /// taken the lock, and changed the state, between the notification and the reacquire. When a kill, a timeout or a
    /// cancellation ends the wait, the lock is reacquired first and then the exception is thrown, so the caller's
    /// <c>using</c> releases it once. A reentrant lock held n deep is released completely and held n deep again, and
    /// the caller's releasers stay valid. A pending kill or timeout, or a cancelled token, throws before the lock is
    /// released.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The caller does not hold the lock.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the lock is held again).</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed (the lock is held again).</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired (the lock is held again).</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkUsedBy(current);
        _lock.MarkUsedBy(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        string? problem;
        Waiter waiter;
        long generation;
        long token;
        int depth;
        LockCase? granted;
        _lock.EnterGate(); // the lock's gate first, then this condition's: source id order, as a select takes them
        try
        {
            problem = _lock.NotHeldByLocked(current);
            if (problem is not null)
            {
                goto NotHeld;
            }

            waiter = Waiter.ForParty(current);
            ConditionNode node = waiter.RentNode<ConditionNode>();

            // Nothing from BeginWait to the release of the lock's gate can throw: the node is queued exactly when the
            // wait was begun, and the lock is released exactly when the node is queued.
            using (new GateScope(ref _gate))
            {
                node.Bind(this);
                generation = _waiters.BeginWaitLocked(waiter, node, WaitKind.Condition);
            }

            granted = _lock.ReleaseAllLocked(out token, out depth);
        }
        finally
        {
            _lock.ExitGate();
        }

        if (granted is not null)
        {
            AsyncLock.WakeGranted(granted, current);
        }

        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return WaitThenReacquireAsync(waiter.AsValueTask(), current, token, depth);

    NotHeld:
        throw new InvalidOperationException(
            $"Cannot wait on {Describe()}: {problem}. Acquire the lock first: using (await lock.LockAsync()) {{ await condition.WaitAsync(); }}");
    }

    /// <summary>
    /// Waits until <paramref name="predicate"/> is true, checking it under the lock before each wait and after each
    /// notification (Python's <c>wait_for</c>). The caller must hold the lock; it holds it when this returns or throws.
    /// </summary>
    /// <param name="predicate">The awaited state; called with the lock held, on the caller's side.</param>
    /// <param name="cancellationToken">Cancels the waits; the lock is reacquired before the call throws.</param>
    /// <returns>Completes when the predicate returned true.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="predicate"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The caller does not hold the lock.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the lock is held again).</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed (the lock is held again).</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired (the lock is held again).</exception>
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    public async ValueTask WaitUntilAsync(Func<bool> predicate, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        ThrowIfNotHeld(Tasklet.CurrentOrNull);
        while (!predicate())
        {
            await WaitAsync(cancellationToken);
        }
    }

    // The second half of a wait: await the notification (or whatever ended the wait), then reacquire the lock, which
    // nothing may abandon. Pooled, so a tasklet that waits in a loop allocates nothing per wait in steady state.
    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder))]
    private async ValueTask WaitThenReacquireAsync(ValueTask wait, Tasklet? current, long token, int depth)
    {
        ExceptionDispatchInfo? failure = null;
        try
        {
            await wait;
        }
        catch (Exception e)
        {
            failure = ExceptionDispatchInfo.Capture(e);
        }

        while (true)
        {
            // No interrupt check at the start and no token: a kill or timeout pending since the wait above must not
            // keep the caller from the lock its using will release. An interrupt that ends this wait (a kill, a
            // throw, a timeout scope firing now) ended it without the lock (the claim protocol: the grant and the
            // interrupt cannot both win), so it is remembered and the reacquire waits again. Each interrupt is
            // delivered to a wait once, so this ends when the lock is handed over.
            ValueTask<AsyncLock.Releaser> reacquire = _lock.LockCore(current, checkInterrupts: false, token, depth, default, out _);
            try
            {
                await reacquire;
                break;
            }
            catch (Exception e)
            {
                failure ??= ExceptionDispatchInfo.Capture(e);
            }
        }

        failure?.Throw();
    }

    private void ThrowIfNotHeld(Tasklet? current)
    {
        string? problem;
        _lock.EnterGate();
        try
        {
            problem = _lock.NotHeldByLocked(current);
        }
        finally
        {
            _lock.ExitGate();
        }

        if (problem is not null)
        {
            throw new InvalidOperationException(
                $"Cannot wait on {Describe()}: {problem}. Acquire the lock first: using (await lock.LockAsync()) {{ await condition.WaitUntilAsync(...); }}");
        }
    }

    // ---------------------------------------------------------------- notify

    /// <summary>Wakes up to <paramref name="count"/> waiters, first come first served. Never blocks; the lock need not be held.</summary>
    /// <param name="count">How many waiters to wake; more than are waiting wakes all of them.</param>
    /// <remarks>
    /// A waiter whose wait was ended by a kill, a timeout or a cancellation is skipped and the notification goes to
    /// the next one. Notifications are not stored: with nobody waiting, nothing happens. Change the awaited state while
    /// holding the lock, so that a waiter cannot check it between the change and its wait.
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is negative.</exception>
    public void Notify(int count = 1)
    {
        if (count < 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(count), count, "The number of waiters to notify cannot be negative.");
        }

        Tasklet? current = Tasklet.CurrentOrNull;
        MarkUsedBy(current);
        SelectCase? first = null;
        SelectCase? last = null;
        using (new GateScope(ref _gate))
        {
            for (int n = 0; n < count; n++)
            {
                // Only the node claimed here is acted on; nodes of waits ended otherwise are dropped on the way.
                SelectCase? node = _waiters.DequeueAndClaim();
                if (node is null)
                {
                    break;
                }

                node._waiter!.SetOutcome(node._caseIndex, null);
                node._next = null; // unlinked by the dequeue; reused here as the wake list's link
                if (last is null)
                {
                    first = node;
                }
                else
                {
                    last._next = node;
                }

                last = node;
            }
        }

        // Outside the gate, in queue order. Read the link before waking: the woken owner may reuse its node at once.
        while (first is not null)
        {
            SelectCase? next = first._next;
            first._next = null;
            Waiter.WakePartner(first._waiter!, current, preferPartner: false);
            first = next;
        }
    }

    /// <summary>Wakes every waiter. Never blocks; the lock need not be held.</summary>
    public void NotifyAll() => Notify(int.MaxValue);

    // ---------------------------------------------------------------- wait source

    private void MarkUsedBy(Tasklet? current) => _reach.MarkUsedBy(current);

    void IWaitSource.MarkUsedBy(Tasklet? current) => MarkUsedBy(current);

    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node) => _waiters.Remove(node);

    /// <summary>"condition 'ready' of lock 'db' (free)": for Dump, deadlock reports and messages.</summary>
    internal string Describe()
    {
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        return $"condition {name} of {_lock.Describe()}";
    }

    string IWaitSource.Describe() => Describe();

    /// <summary>The registration of a waiter on a condition: one per waiter, reused. Not a select case.</summary>
    private sealed class ConditionNode : PassiveNode
    {
        private AsyncCondition Typed => Unsafe.As<AsyncCondition>(_source!);

        internal void Bind(AsyncCondition condition) => BindSource(condition);

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
            => Typed._waiters.Enqueue(this, waiter, generation, caseIndex);
    }
}
