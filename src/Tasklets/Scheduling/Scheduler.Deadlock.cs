using System.Text;
using Tasklets.Internal;

namespace Tasklets;

// Facet: deadlock detection, exact across the schedulers inside Run() (DESIGN.md, "Deadlock").
// Relies on: a scheduler is "stuck" only while its owner sleeps in WaitStuck with an empty inbox; every wake-up
// that crosses schedulers goes through an inbox, so a stuck scheduler with an empty inbox cannot be woken by
// another stuck scheduler.
public sealed partial class Scheduler
{
    private static readonly object s_deadlockGate = new();
    private static readonly List<Scheduler> s_stuck = [];
    private static int s_tracked;

    // Written under s_deadlockGate.
    private volatile bool _tracked;
    private volatile bool _deadlockDeclared;

    /// <summary>True while a thread is inside <see cref="Run()"/>: its tasklets' waits count for deadlock detection.</summary>
    internal bool IsTrackedForDeadlock => _tracked;

    private void EnterDeadlockTracking()
    {
        lock (s_deadlockGate)
        {
            s_tracked++;
            _tracked = true;
        }
    }

    private void ExitDeadlockTracking()
    {
        lock (s_deadlockGate)
        {
            s_tracked--;
            _tracked = false;
            s_stuck.Remove(this);
            DeclareIfAllStuck();
        }
    }

    /// <summary>Nothing is ready and no timer is due: sleep until something happens, or detect a deadlock.</summary>
    private void IdleOrDetectDeadlock()
    {
        if (AdvanceVirtualTime())
        {
            return;
        }

        if (_timers.Count > 0 || _foreignWaits > 0 || Volatile.Read(ref _keepAlive) > 0 || AnyExternalWaitInThisWorld())
        {
            WaitForWork(_timers.Count > 0 ? _timers.Peek().Due : long.MaxValue, long.MaxValue);
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

    /// <summary>Sleeps as a stuck scheduler. Returns true if every tracked scheduler is stuck (a deadlock).</summary>
    private bool WaitStuck()
    {
        lock (s_deadlockGate)
        {
            _deadlockDeclared = false;
            s_stuck.Add(this);
            DeclareIfAllStuck();
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
            s_stuck.Remove(this);
            bool deadlocked = _deadlockDeclared && _inboxCount == 0;
            _deadlockDeclared = false;
            return deadlocked;
        }
    }

    /// <summary>Caller holds s_deadlockGate. Declares a deadlock when every tracked scheduler is stuck with an empty inbox.</summary>
    private static void DeclareIfAllStuck()
    {
        if (s_stuck.Count == 0 || s_stuck.Count < s_tracked)
        {
            return;
        }

        foreach (Scheduler scheduler in s_stuck)
        {
            if (scheduler._inboxCount != 0)
            {
                return;
            }
        }

        foreach (Scheduler scheduler in s_stuck)
        {
            scheduler._deadlockDeclared = true;
            scheduler.Signal();
        }
    }

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
