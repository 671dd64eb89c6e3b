namespace Tasklets.Internal;

/// <summary>
/// The waits for one tasklet's end: a wait source whose registrations are <see cref="JoinNode"/>s (joins) and
/// <see cref="JoinCase"/>s (selects, WhenAny), created on the first join or case.
/// </summary>
/// <remarks>
/// Lock: <see cref="Gate"/> guards the queue. A join queues a node under it unless the tasklet is dead; the end of
/// the tasklet (<see cref="WakeAll"/>) claims every queued node under it. A join ended otherwise (cancellation,
/// timeout, kill) is withdrawn by its owner like any registration, so nothing of it stays here.
/// </remarks>
internal sealed class JoinSource : IWaitSource
{
    private readonly Tasklet _target;
    private readonly long _id = WaitSourceIds.Next();
    private WaitQueue _joiners; // under Gate
    private volatile bool _external;

    /// <summary>The lock; a field so that callers take it with a <see cref="GateScope"/>.</summary>
    public SpinGate Gate;

    public JoinSource(Tasklet target)
    {
        _target = target;
    }

    /// <summary>The tasklet whose end is waited for.</summary>
    public Tasklet Target => _target;

    long IWaitSource.Id => _id;

    /// <summary>
    /// True when a party the deadlock detector cannot see may end the wait: the target runs on a scheduler that is
    /// not inside Run(), or a party that is not a tasklet of a Run() scheduler joins it.
    /// </summary>
    public bool IsExternal => _external || !_target.Scheduler.IsTrackedForDeadlock;

    void IWaitSource.EnterGate() => Gate.Enter();

    void IWaitSource.ExitGate() => Gate.Exit();

    public void MarkUsedBy(Tasklet? current)
    {
        if (!_external && (current is null || !current.Scheduler.IsTrackedForDeadlock))
        {
            _external = true;
        }

        if (current is not null)
        {
            // The target's end ends the join: the joiner's scheduler and the target's are one deadlock group.
            Scheduler.JoinDeadlockGroups(current.Scheduler, _target.Scheduler);
        }
    }

    /// <summary>Queues a join. Caller holds the gate and saw the target alive under it.</summary>
    public void EnqueueLocked(SelectCase node, Waiter waiter, long generation, int caseIndex)
        => _joiners.Enqueue(node, waiter, generation, caseIndex);

    /// <summary>
    /// The target died: ends every queued join. Returns true if a join that observes the failure was ended: a
    /// <see cref="JoinNode"/> (JoinAsync) takes <paramref name="exception"/> as its outcome and observes it; a
    /// <see cref="JoinCase"/> (a select, WhenAny) only learns that the target is dead: its select fires without
    /// throwing, and the failure stays for a join (or Run) to report.
    /// </summary>
    public bool WakeAll(Exception? exception)
    {
        // The claimed joins, linked in the order they were claimed (arrival order), woken in that order.
        SelectCase? head = null;
        SelectCase? tail = null;
        bool observed = false;
        using (new GateScope(ref Gate))
        {
            SelectCase? node;
            while ((node = _joiners.DequeueAndClaim()) is not null)
            {
                bool joins = node is JoinNode;
                node._waiter!.SetOutcome(node._caseIndex, joins ? exception : null);
                observed |= joins;
                node._next = null;
                if (tail is null)
                {
                    head = node;
                }
                else
                {
                    tail._next = node;
                }

                tail = node;
            }
        }

        // Outside the gate. Read the link before waking: the woken owner may reuse its node at once.
        while (head is not null)
        {
            SelectCase? next = head._next;
            head._next = null;
            head._waiter!.Wake(front: false);
            head = next;
        }

        return observed;
    }

    public void WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node) => _joiners.Remove(node);

    public string Describe() => $"tasklet {_target.Id} '{_target.Name}'";
}

/// <summary>The queue node of a join: one per waiter, reused (a join of a tasklet is a registration like any other).</summary>
internal sealed class JoinNode : SelectCase
{
    private JoinSource Typed => (JoinSource)_source!;

    internal void Bind(JoinSource source) => BindSource(source);

    internal override string DescribeWait() => "join of " + Typed.Describe();

    // "Maybe": a tasklet's death is not written under this source's gate, so the seqlock snapshot of Select.Try
    // cannot vouch for "not ready" read here; the locked path decides.
    internal override bool MaybeReadyUnlocked() => true;

    internal override int GateSequenceUnlocked() => Typed.Gate.Sequence;

    internal override bool IsReadyLocked() => !Typed.Target.IsAlive;

    internal override bool TryExecuteLocked(out Waiter? partner)
    {
        partner = null;
        return !Typed.Target.IsAlive;
    }

    internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        => Typed.EnqueueLocked(this, waiter, generation, caseIndex);

    internal override bool PartnerPreferred => false;
}
