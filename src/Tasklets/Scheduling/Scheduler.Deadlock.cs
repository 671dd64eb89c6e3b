using System.Diagnostics;
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
    /// other's used, or one spawned onto (or posted a step to) the other. Any thread. Costs a lock only the first time
    /// two groups meet. Returns true if they were two groups.
    /// </summary>
    internal static bool JoinDeadlockGroups(Scheduler a, Scheduler b)
    {
        if (ReferenceEquals(a, b) || InSameDeadlockGroup(a, b))
        {
            return false;
        }

        lock (s_deadlockGate)
        {
            Scheduler rootA = CompressedRootOf(a);
            Scheduler rootB = CompressedRootOf(b);
            if (ReferenceEquals(rootA, rootB))
            {
                return false;
            }

            // Union by size: the larger group's root stays the root, so chains stay short (a hub that many schedulers
            // spawn onto keeps every spawner one link away) and the smaller member list is the one copied.
            // On a tie, a's root stays the root (callers pass the longer-lived side first).
            if ((rootA._groupMembers?.Count ?? 1) < (rootB._groupMembers?.Count ?? 1))
            {
                (rootA, rootB) = (rootB, rootA);
            }

            List<Scheduler> members = rootA._groupMembers ??= [rootA];
            members.AddRange(rootB._groupMembers ?? [rootB]);
            rootB._groupMembers = null;
            rootA._groupOpen |= rootB._groupOpen;
            rootB._groupParent = rootA; // after the root's fields: a lock-free reader that reaches rootA sees them
            return true;
        }
    }

    /// <summary>
    /// Lock-free: true only if the two are in one group. A root only ever gains a parent, and path halving only points
    /// a node at an ancestor in its own group, so a chain read while a merge runs ends at a root that was current a
    /// moment ago; two schedulers found under one root are in one group for good. A false answer may be stale and is
    /// rechecked under the lock.
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

    /// <summary>Caller holds s_deadlockGate. The root, halving the path on the way (each node skips to its grandparent).</summary>
    private static Scheduler CompressedRootOf(Scheduler scheduler)
    {
        while (scheduler._groupParent is { } parent)
        {
            if (parent._groupParent is { } grandparent)
            {
                scheduler._groupParent = grandparent;
                parent = grandparent;
            }

            scheduler = parent;
        }

        return scheduler;
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

            // The owner leaves in the same critical section as the verdict below: a member that gets stuck after it
            // sees the scheduler unowned, one before it is judged here (the order of the two was a missed deadlock).
            lock (_inboxLock)
            {
                _ownerThreadId = 0;
            }

            // Finished, this scheduler may have been the last one its group (or an open group) waited for.
            DeclareDeadlockedGroups(this);
        }
    }

    /// <summary>
    /// A host loop's pass (RunFor, RunOnce, a Dispose's drain) ended, the owner gone: if that left a scheduler of a
    /// group with nothing alive and nothing posted, it is finished, and its group may be due a verdict. Once per call,
    /// and a lock only for a scheduler that is in a group with others.
    /// </summary>
    private void AfterHostPass()
    {
        if ((_groupParent is not null || _groupMembers is not null) && _inboxCount == 0 && _aliveCount == 0)
        {
            lock (s_deadlockGate)
            {
                DeclareDeadlockedGroups(this);
            }
        }
    }

    /// <summary>
    /// Disposed: leaves its group's member list (so that a long-lived group does not keep it alive), counts as finished
    /// from now on, and its group may be due a verdict.
    /// </summary>
    private void LeaveDeadlockGroupOnDispose()
    {
        lock (s_deadlockGate)
        {
            Scheduler root = CompressedRootOf(this);
            if (!ReferenceEquals(root, this))
            {
                root._groupMembers?.Remove(this);
            }

            DeclareDeadlockedGroups(root);
        }
    }

    /// <summary>Nothing is ready and no timer is due: sleep until something happens, or detect a deadlock.</summary>
    private void IdleOrDetectDeadlock()
    {
        if (AdvanceVirtualTime())
        {
            return;
        }

        bool timers = HasLiveTimers;
        bool spinApplies = IdleSpinApplies;
        bool outside = _foreignWaits > 0 || Volatile.Read(ref _keepAlive) > 0;
        if (!outside && (!timers || (spinApplies && _aliveCount <= MaxIdleSpinWalk)))
        {
            // Without a timer, the deadlock check's walk; with one, a walk only to learn whether to spin (bounded: a
            // scheduler with more tasklets takes a party outside as possible, Scheduler.Idle.cs).
            outside = AnyExternalWaitInThisWorld();
        }

        if (timers || outside)
        {
            // A party on another thread may wake it: I/O, a keep-alive hold, a wait plain code or another thread may
            // end, or a scheduler of its group. Only a pending timer: nobody else, no spin.
            bool spinCandidate = spinApplies && (outside || InGroupWithOthers || _aliveCount > MaxIdleSpinWalk);
            WaitForWork(NextLiveTimerDue, long.MaxValue, spinCandidate);
            return;
        }

        // Nothing alive is not stuck: the loop came here only because a keep-alive hold was held when it looked, and
        // the hold was released since (the read above). Going round again, the loop sees no hold and returns. Counted
        // as stuck instead, a scheduler of no tasklet was declared deadlocked ("0 tasklet(s) are blocked",
        // KeepAliveReleaseStressTests). Nothing alive here means nothing can block again before the loop's own check:
        // only this thread runs tasklets, and a post from outside makes the loop drain it first.
        if (_aliveCount == 0)
        {
            return;
        }

        // Stuck: only a scheduler of its group can still end its tasklets' waits (or the verdict comes).
        if (WaitStuck(spinCandidate: spinApplies && InGroupWithOthers))
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

    /// <summary>
    /// Sleeps as a stuck scheduler, spinning first within the idle budget when <paramref name="spinCandidate"/> (a
    /// scheduler of its group may still post here). Returns true if its group was declared deadlocked meanwhile.
    /// </summary>
    private bool WaitStuck(bool spinCandidate)
    {
        lock (s_deadlockGate)
        {
            _deadlockDeclared = false;
            _stuck = true;
            DeclareDeadlockedGroups(this);
        }

        // The spin comes after the scheduler counts as stuck, so it never delays a verdict: the group's last member
        // to get stuck takes it (under the gate, reading this one at rest: the spin changes no state IsStillStuck
        // reads) and sets _deadlockDeclared, which the spin reads and leaves on.
        long idleStart = Stopwatch.GetTimestamp();
        bool spun = spinCandidate && _idleSpinBudget > 0 && !_deadlockDeclared;
        if (!spun || !SpinForWork(_idleSpinBudget, stuck: true))
        {
            bool wokenByPost = false;
            lock (_inboxLock)
            {
                // Read again under the lock that posts, Signal and the verdict's Signal take: nothing set after the
                // spin's last read is missed, and one set later pulses the Wait (_sleeping is set under the lock).
                while (_inboxCount == 0 && !_signaled && !_deadlockDeclared)
                {
                    _sleeping = true;
                    Monitor.Wait(_inboxLock);
                    _sleeping = false;
                    wokenByPost = true;
                }

                _signaled = false;
            }

            if (spinCandidate && wokenByPost && _inboxCount != 0)
            {
                AfterSleepEndedByWake(idleStart);
            }
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
    private static void DeclareDeadlockedGroups(Scheduler changed)
    {
        DeclareIfGroupDeadlocked(changed);
        if (!AllTrackedStuck())
        {
            return;
        }

        foreach (Scheduler scheduler in s_trackedSchedulers)
        {
            if (!scheduler._deadlockDeclared && RootOf(scheduler)._groupOpen)
            {
                DeclareIfGroupDeadlocked(scheduler);
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
    /// schedulers may end; wakes the stuck ones to report it.
    /// </summary>
    private static void DeclareIfGroupDeadlocked(Scheduler member)
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
            else if (!scheduler.IsFinished())
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
    /// Caller holds s_deadlockGate. True when no thread runs the scheduler and its dispose is complete, or it has no
    /// tasklet alive and nothing posted: it cannot end anybody's wait. Not <c>_disposed</c>: that is set before the
    /// dispose's shutdown takes ownership, while killed tasklets may still run their finally blocks. A post that arrives after this read is a party acting after
    /// the verdict (a tasklet spawned later has not used anything yet: the blind spot). The fields are written by
    /// their owner before it left its Run method, whose exit takes this gate or the inbox lock the post takes.
    /// </summary>
    private bool IsFinished()
        => !_tracked && _ownerThreadId == 0 && (Volatile.Read(ref _disposeDone) || (_inboxCount == 0 && Volatile.Read(ref _aliveCount) == 0));

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
