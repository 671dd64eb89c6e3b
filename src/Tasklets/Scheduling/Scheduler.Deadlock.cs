using System.Text;
using Tasklets.Internal;

namespace Tasklets;

// Facet: deadlock detection per group of schedulers (DESIGN.md, "Deadlock").
// A group is the schedulers whose tasklets have met on a wait source (Parties merges them on a party's first use) or
// spawned tasklets onto each other (Spawn merges them): only they may end each other's library waits. A group is
// deadlocked when each of its schedulers is stuck (its owner sleeps in WaitStuck with an empty inbox, after finding
// no wait of its tasklets that a party outside the tracked schedulers may end) or finished (outside Run, with no
// tasklet alive and nothing posted). Other groups may run or idle meanwhile.
// A group that met the outside world (a member used a primitive that plain code holds: made outside any tasklet,
// outside a deterministic scheduler's closed world, or used by a party outside the tracked schedulers) is *open*:
// plain code may have handed that primitive, and with it whatever travels through it, to any scheduler of the
// process, recorded or not. An open group is declared only when every scheduler inside Run() is stuck as well.
// Relies on: every wake-up that crosses schedulers goes through an inbox, so a stuck scheduler with an empty inbox
// cannot be woken by another stuck one; and groups only merge, under s_deadlockGate.
public sealed partial class Scheduler
{
    private static readonly object s_deadlockGate = new();
    private static readonly List<Scheduler> s_trackedSchedulers = []; // inside Run(), under s_deadlockGate

    // Written under s_deadlockGate.
    private volatile bool _tracked;
    private volatile bool _deadlockDeclared;
    private bool _stuck;

    // The group (union-find over schedulers): the parent toward the group's root, null at the root. Written under
    // s_deadlockGate; read lock-free by InSameDeadlockGroup's fast path (see there). The root lists the members.
    private volatile Scheduler? _groupParent;
    private List<Scheduler>? _groupMembers; // at the root only, under s_deadlockGate; null: just this scheduler
    private volatile bool _groupOpen;       // at the root (merged into the new root); written under s_deadlockGate

    /// <summary>True while a thread is inside <see cref="Run()"/>: its tasklets' waits count for deadlock detection.</summary>
    internal bool IsTrackedForDeadlock => _tracked;

    /// <summary>
    /// True while the owner sleeps as a stuck scheduler, its group's verdict taken (tests: a false deadlock would have
    /// been declared by the time this reads true).
    /// </summary>
    internal bool IsStuckForDeadlock
    {
        get
        {
            lock (s_deadlockGate)
            {
                return _stuck;
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="a"/> and <paramref name="b"/> one deadlock group: tasklets of one used a wait source the
    /// other's used, or one spawned onto the other. Any thread. Costs a lock only the first time for a pair of groups.
    /// </summary>
    internal static void JoinDeadlockGroups(Scheduler a, Scheduler b)
    {
        if (ReferenceEquals(a, b) || InSameDeadlockGroup(a, b))
        {
            return;
        }

        lock (s_deadlockGate)
        {
            Scheduler rootA = RootOf(a);
            Scheduler rootB = RootOf(b);
            if (ReferenceEquals(rootA, rootB))
            {
                return;
            }

            List<Scheduler> members = rootA._groupMembers ??= [rootA];
            members.AddRange(rootB._groupMembers ?? [rootB]);
            rootB._groupMembers = null;
            rootA._groupOpen |= rootB._groupOpen;
            rootB._groupParent = rootA;
        }
    }

    /// <summary>
    /// Marks <paramref name="scheduler"/>'s group open: one of its tasklets used a primitive that plain code holds or
    /// has used. Any thread; a lock only the first time for a group.
    /// </summary>
    internal static void OpenDeadlockGroup(Scheduler scheduler)
    {
        // Lock-free fast path: open is never cleared, and a merge copies it into the new root before the old root
        // gains its parent, so a root read as open is (or was merged into) an open group.
        if (RootOf(scheduler)._groupOpen)
        {
            return;
        }

        lock (s_deadlockGate)
        {
            RootOf(scheduler)._groupOpen = true;
        }
    }

    /// <summary>
    /// Lock-free: true only if the two are in one group. Roots only ever gain a parent, never lose one, so a chain read
    /// while a merge runs ends at a root that was current a moment ago; two schedulers found under one root are in one
    /// group for good. A false answer may be stale and is rechecked under the lock.
    /// </summary>
    private static bool InSameDeadlockGroup(Scheduler a, Scheduler b) => ReferenceEquals(RootOf(a), RootOf(b));

    private static Scheduler RootOf(Scheduler scheduler)
    {
        while (scheduler._groupParent is { } parent)
        {
            scheduler = parent;
        }

        return scheduler;
    }

    private void EnterDeadlockTracking()
    {
        lock (s_deadlockGate)
        {
            _tracked = true;
            s_trackedSchedulers.Add(this);
        }
    }

    private void ExitDeadlockTracking()
    {
        lock (s_deadlockGate)
        {
            _tracked = false;
            _stuck = false;
            s_trackedSchedulers.Remove(this);

            // Finished, this scheduler may have been the last one its group (or an open group) waited for.
            DeclareDeadlockedGroups(this, leaving: this);
        }
    }

    /// <summary>Nothing is ready and no timer is due: sleep until something happens, or detect a deadlock.</summary>
    private void IdleOrDetectDeadlock()
    {
        if (AdvanceVirtualTime())
        {
            return;
        }

        if (HasLiveTimers || _foreignWaits > 0 || Volatile.Read(ref _keepAlive) > 0 || AnyExternalWaitInThisWorld())
        {
            WaitForWork(NextLiveTimerDue, long.MaxValue);
            return;
        }

        if (WaitStuck())
        {
            HandleDeadlock();
        }
    }

    /// <summary><see cref="AnyExternalWait"/>, in the closed world of deterministic mode when this scheduler has a Seed.</summary>
    private bool AnyExternalWaitInThisWorld()
    {
        WaitSources.ClosedWorld = IsDeterministic;
        try
        {
            return AnyExternalWait();
        }
        finally
        {
            WaitSources.ClosedWorld = false;
        }
    }

    /// <summary>
    /// True if a wake-up is in flight (a claimed wait), or a tasklet awaits a wait that a party outside the tracked
    /// schedulers may end.
    /// </summary>
    private bool AnyExternalWait()
    {
        for (Tasklet? t = _aliveHead; t is not null; t = t._nextAlive)
        {
            if (t.AnyAwaitedWait(s_mayBeEndedFromOutside))
            {
                return true;
            }
        }

        return false;
    }

    private static readonly Func<Waiter, bool> s_mayBeEndedFromOutside = MayBeEndedFromOutside;

    /// <summary>
    /// True when a party the deadlock detector does not see may end <paramref name="waiter"/>'s wait, or already has.
    /// Only awaited waits count: ending a stored operation nobody awaits wakes nobody.
    /// </summary>
    private static bool MayBeEndedFromOutside(Waiter waiter)
    {
        WaitPhase phase = waiter.Phase; // once: see Waiter.Phase
        if (phase == WaitPhase.Claimed || (phase == WaitPhase.Completed && waiter is ExternalWaiter))
        {
            // Claimed by a partner on another thread whose wake-up has not reached the inbox yet: it will. An
            // external waiter is Completed by its wake, before it dispatches the continuation to the tasklet's
            // context: that post is on its way too.
            return true;
        }

        if (phase != WaitPhase.Parked || !waiter.IsAwaited)
        {
            return false;
        }

        if (waiter.HasCancellation)
        {
            // Whoever holds the token's source may cancel the wait; nothing says it will not.
            return true;
        }

        // A claim from now on comes from a party this loop would call external (another thread's partner on an
        // external source, a cancellation), or from a tasklet of another tracked scheduler, which is then not
        // stuck, or posts to this inbox before it is: either way no deadlock is declared on a wait in flight.
        // Each source says whether a party outside the tracked schedulers can end a wait on it.
        for (int i = 0; i < waiter.RegistrationCount; i++)
        {
            SelectCase? node = waiter.RegistrationAt(i);
            if (node is not null && node.Source.IsExternal)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Sleeps as a stuck scheduler. Returns true if its group was declared deadlocked meanwhile.</summary>
    private bool WaitStuck()
    {
        lock (s_deadlockGate)
        {
            _deadlockDeclared = false;
            _stuck = true;
            DeclareDeadlockedGroups(this, leaving: null);
        }

        lock (_inboxLock)
        {
            while (_inboxCount == 0 && !_signaled && !_deadlockDeclared)
            {
                _sleeping = true;
                Monitor.Wait(_inboxLock);
                _sleeping = false;
            }

            _signaled = false;
        }

        lock (s_deadlockGate)
        {
            _stuck = false;
            bool deadlocked = _deadlockDeclared && _inboxCount == 0;
            _deadlockDeclared = false;
            return deadlocked;
        }
    }

    /// <summary>
    /// Caller holds s_deadlockGate. Takes the verdicts that <paramref name="changed"/> (now stuck, or leaving Run) may
    /// have made due: its own group's, and when every scheduler inside Run() is stuck, every open group's.
    /// </summary>
    private static void DeclareDeadlockedGroups(Scheduler changed, Scheduler? leaving)
    {
        DeclareIfGroupDeadlocked(changed, leaving);
        if (!AllTrackedStuck())
        {
            return;
        }

        foreach (Scheduler scheduler in s_trackedSchedulers)
        {
            if (!scheduler._deadlockDeclared && RootOf(scheduler)._groupOpen)
            {
                DeclareIfGroupDeadlocked(scheduler, leaving);
            }
        }
    }

    /// <summary>Caller holds s_deadlockGate. True when every scheduler inside Run() is stuck (none: true).</summary>
    private static bool AllTrackedStuck()
    {
        foreach (Scheduler scheduler in s_trackedSchedulers)
        {
            if (!scheduler._stuck)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Caller holds s_deadlockGate. Declares <paramref name="member"/>'s group deadlocked when each of its schedulers
    /// is stuck or finished, at least one is stuck, and no stuck one has a wait that a party outside the tracked
    /// schedulers may end; wakes the stuck ones to report it. <paramref name="leaving"/>: a scheduler whose owner is
    /// leaving Run on this thread (it still owns the scheduler, but runs none of its code any more).
    /// </summary>
    private static void DeclareIfGroupDeadlocked(Scheduler member, Scheduler? leaving)
    {
        Scheduler root = RootOf(member);
        if (root._groupOpen && !AllTrackedStuck())
        {
            return; // an unrecorded party may hold what the group waits on: wait until nothing inside Run() runs
        }

        List<Scheduler>? members = root._groupMembers;
        int count = members?.Count ?? 1;
        bool anyStuck = false;
        for (int i = 0; i < count; i++)
        {
            Scheduler scheduler = members is null ? root : members[i];
            if (scheduler._stuck)
            {
                if (!scheduler.IsStillStuck())
                {
                    return;
                }

                anyStuck = true;
            }
            else if (!scheduler.IsFinished(ownerLeaving: ReferenceEquals(scheduler, leaving)))
            {
                return;
            }
        }

        if (!anyStuck)
        {
            return;
        }

        for (int i = 0; i < count; i++)
        {
            Scheduler scheduler = members is null ? root : members[i];
            if (scheduler._stuck)
            {
                scheduler._deadlockDeclared = true;
                scheduler.Signal();
            }
        }
    }

    /// <summary>
    /// Caller holds s_deadlockGate; this scheduler is stuck, so its owner sleeps in WaitStuck and changes none of its
    /// owner-thread state (the alive list, the tasklets' registrations, timers, foreign waits) until it takes the
    /// gate again: reading them from here is reading a scheduler at rest, published to this thread by the gate the
    /// owner took when it became stuck. What other threads may change meanwhile is read again here: the inbox (a
    /// post), a keep-alive hold, and each wait's phase and sources' reachability, which a party outside may have
    /// changed since the owner's own check.
    /// </summary>
    private bool IsStillStuck()
    {
        if (_inboxCount != 0 || Volatile.Read(ref _keepAlive) > 0)
        {
            return false;
        }

        return !AnyExternalWaitInThisWorld();
    }

    /// <summary>
    /// Caller holds s_deadlockGate. True when no thread runs the scheduler, it has no tasklet alive and nothing is
    /// posted: it cannot end anybody's wait. A post that arrives after this read is a party acting after the verdict
    /// (a tasklet spawned later has not used anything yet: the blind spot). <paramref name="ownerLeaving"/>: the caller
    /// is the owner, leaving Run.
    /// </summary>
    private bool IsFinished(bool ownerLeaving)
        => !_tracked && (ownerLeaving || _ownerThreadId == 0) && _inboxCount == 0 && Volatile.Read(ref _aliveCount) == 0;

    private void HandleDeadlock()
    {
        var blocked = new List<Tasklet>();
        for (Tasklet? t = _aliveHead; t is not null; t = t._nextAlive)
        {
            blocked.Add(t);
        }

        blocked.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        var message = new StringBuilder();
        message.Append("Deadlock: ").Append(blocked.Count).Append(" tasklet(s) are blocked and nothing can wake any of them:");
        foreach (Tasklet t in blocked)
        {
            message.AppendLine().Append("  tasklet ").Append(t.Id).Append(" '").Append(t.Name).Append("': ").Append(DescribeWait(t));
        }

        var exception = new DeadlockException(message.ToString(), [.. blocked]);
        if (_pendingDeadlock is { } earlier)
        {
            // Found again after its kills. A killed tasklet whose finally blocks again is killed again (the kill is
            // sticky) and dies; but when rounds of kills end no tasklet at all, they are caught in waits that
            // interrupts pass by or that wait again (a group's for its killed children, a condition's reacquire of
            // its lock), and killing again would loop forever. The tasklets stay blocked, and Run() throws.
            _deadlockRoundsWithoutDeath = _aliveCount < _aliveAtDeadlockKill ? 0 : _deadlockRoundsWithoutDeath + 1;
            if (_deadlockRoundsWithoutDeath >= MaxDeadlockRoundsWithoutDeath)
            {
                _pendingDeadlock = null;
                _deadlockRoundsWithoutDeath = 0;
                throw WithUnobservedFailures(earlier);
            }
        }
        else
        {
            _deadlockRoundsWithoutDeath = 0;
        }

        TaskletsMetrics.Deadlock();
        TaskletsEventSource.Log.Deadlock(this, exception.Message);
        if (!_options.KillOnDeadlock)
        {
            throw WithUnobservedFailures(exception);
        }

        // Kill them so that their finally blocks run; Run() throws once they are dead.
        _pendingDeadlock = exception;
        _aliveAtDeadlockKill = _aliveCount;
        foreach (Tasklet t in blocked)
        {
            t.ApplyInterrupt(null);
        }
    }
}
