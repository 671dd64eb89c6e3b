using System.Diagnostics;
using Tasklets.Internal;

namespace Tasklets;

// Facet: timers (sleep, select timeouts, timeout scopes) and the clock; the idle wait is Scheduler.Idle.cs.
// Relies on: the timer heap and the coarse clock are owner-thread state; Signal() may come from any thread.
public sealed partial class Scheduler
{
    private TimerHeap _timers;
    private long _timerSequence;

    /// <summary>Now, in the timestamp units of <see cref="Time"/>.</summary>
    private long Now => _virtualTime?.Now ?? _time.GetTimestamp();

    /// <summary>
    /// Schedules a timer <paramref name="delay"/> from now that ends <paramref name="waiter"/>'s wait
    /// <paramref name="generation"/> with <paramref name="firedIndex"/>, or expires <paramref name="scope"/>.
    /// Scheduler thread only (called by the running tasklet). Returns the due timestamp.
    /// </summary>
    internal long AddTimer(TimeSpan delay, Waiter? waiter, long generation, int firedIndex, TimeoutScope? scope)
    {
        Debug.Assert(IsOwnerThread, "timers are owned by the scheduler thread");
        long frequency = _time.TimestampFrequency;
        double ticks = delay.TotalSeconds * frequency;
        long now = Now;
        long due = ticks >= long.MaxValue - now ? long.MaxValue : now + (long)Math.Ceiling(ticks);
        _timers.Push(new TimerEntry(due, _timerSequence++, waiter, generation, firedIndex, scope));
        return due;
    }

    /// <summary>
    /// True when a timer is due now: its tasklet should run before a tasklet that gives way at a checkpoint. Drops
    /// timers at the top of the heap that can no longer fire anything, so that a heap of stale timers does not cost a
    /// clock read per step. Owner thread.
    /// </summary>
    private bool IsTimerDue()
    {
        DropStaleTimers();
        return _timers.Count > 0 && Now >= _timers.Peek().Due;
    }

    /// <summary><see cref="IsTimerDue()"/> at <paramref name="now"/>, read from <see cref="Time"/> by the caller.</summary>
    private bool IsTimerDue(long now)
    {
        DropStaleTimers();
        return _timers.Count > 0 && now >= _timers.Peek().Due;
    }

    /// <summary>
    /// Pops the entries at the top of the heap that can no longer fire anything, so that the top, if any, is live.
    /// Owner thread (the heap is its state). Dropping on a dead read is safe because liveness is monotone
    /// (<see cref="TimerEntry.IsLive"/>); each entry is popped at most once, so the cost is paid by the timers that
    /// died, O(log n) each.
    /// </summary>
    private void DropStaleTimers()
    {
        while (_timers.Count > 0 && !_timers.Peek().IsLive)
        {
            _timers.Pop();
        }
    }

    /// <summary>
    /// True when a timer that can still end a wait, expire a scope or fire a virtual-clock timer is pending: for the
    /// idle loop, which must not take a dead timer (a select satisfied at once, a scope left early or dead with its
    /// tasklet, a sleep ended by a kill) for a party that may still wake a tasklet (issue 15: a true deadlock waited
    /// for it). Drops the dead entries at the top. Owner thread.
    /// </summary>
    internal bool HasLiveTimers
    {
        get
        {
            DropStaleTimers();
            return _timers.Count > 0;
        }
    }

    /// <summary>
    /// When the next live timer is due (in <see cref="Time"/> units), or <see cref="long.MaxValue"/> if none is: what
    /// the idle loop sleeps until. Drops the dead entries at the top, so a dead timer never wakes it. Owner thread.
    /// </summary>
    internal long NextLiveTimerDue => HasLiveTimers ? _timers.Peek().Due : long.MaxValue;

    /// <summary>Wake-ups from outside (the inbox) are waiting. Any thread may have posted them; read by the owner.</summary>
    internal bool HasPostedWakeups => _inboxCount != 0;

    // ---------------------------------------------------------------- checkpoints
    // Owner-thread state (only the running tasklet's Checkpoint touches it): no races. The clock costs ~30 ns a read
    // here (kvm-clock), several times a checkpoint that gives way to nobody, so it is read once per stride of
    // checkpoints, sized to the rate this step checkpoints at.

    private const int MaxCheckpointStride = 64;
    private const int DeterministicSliceCheckpoints = 64;
    private static readonly long s_checkpointClockInterval = Stopwatch.Frequency / 50_000; // 20 µs
    private static readonly long s_osYieldInterval = Stopwatch.Frequency / 5_000; // 200 µs

    // True once the inbox or a timer queued a tasklet at the back of the run queue, possibly behind a tasklet that
    // will checkpoint (the loop takes them in between steps): its next checkpoint gives way so that they run first,
    // and the give-way clears it (everything queued so far is then ahead of it). At worst one needless yield.
    private bool _wokenBehindCheckpoint;

    private long _checkpointStep = -1; // the step the slice below belongs to
    private long _sliceStart;          // when its first checkpoint ran (Stopwatch), or its checkpoints (deterministic)
    private long _lastCheckpointClock; // the clock at the last read
    private int _checkpointStride = 1;
    private int _checkpointCountdown;
    private long _lastOsYield;         // when a checkpoint last offered the OS thread's core (Stopwatch)

    /// <summary>
    /// True when the running tasklet's checkpoint should give way: its slice or the RunFor budget is spent, or a timer
    /// is due. Reads the clock only once per stride of checkpoints. Owner thread, inside a step.
    /// </summary>
    internal bool IsCheckpointDue()
        => (--_checkpointCountdown <= 0 || _checkpointStep != _stepCount) && (_wokenBehindCheckpoint || CheckpointReadClock());

    /// <summary>
    /// The checkpoints to let pass before the next clock read: as many as took <paramref name="interval"/> at the rate
    /// of the last <paramref name="stride"/> checkpoints, which took <paramref name="elapsed"/>; 1 to 64.
    /// </summary>
    internal static int NextCheckpointStride(int stride, long elapsed, long interval)
        => (int)Math.Clamp(interval * stride / Math.Max(1, elapsed), 1, MaxCheckpointStride);

    private bool CheckpointReadClock()
    {
        if (IsDeterministic)
        {
            // No wall clock in deterministic mode: the slice is a number of checkpoints, so that a seed replays
            // exactly. The virtual clock is cheap to read, so due timers are checked at every checkpoint.
            if (_checkpointStep != _stepCount)
            {
                _checkpointStep = _stepCount;
                _sliceStart = 0;
            }

            _checkpointCountdown = 1;
            return ++_sliceStart >= DeterministicSliceCheckpoints || (_timers.Count > 0 && IsTimerDue());
        }

        long now = Stopwatch.GetTimestamp();
        bool systemClock = ReferenceEquals(_time, TimeProvider.System);
        if (_checkpointStep != _stepCount)
        {
            // The first checkpoint of a step starts its slice; the stride is learnt again (another tasklet, another rate).
            _checkpointStep = _stepCount;
            _sliceStart = now;
            _checkpointStride = 1;
        }
        else if (systemClock)
        {
            // Checkpoints per interval at the rate since the last read: the next read comes about one interval later.
            // (A custom clock, a test's fake one, keeps a stride of 1: its timers are checked at every checkpoint.)
            _checkpointStride = NextCheckpointStride(_checkpointStride, now - _lastCheckpointClock, s_checkpointClockInterval);
        }

        if (_foreignWaits > 0 && now - _lastOsYield >= s_osYieldInterval)
        {
            // I/O priority at the OS level: while tasklets await foreign work (sockets, files), their completions are
            // delivered by the runtime's threads (the socket engine, the thread pool), which need a core to post them
            // here. A CPU-bound step would hold this core for its whole OS time slice; offering it every 200 µs lets
            // a waiting I/O thread run now. Costs a syscall (under 1 µs) when nothing else is runnable.
            _lastOsYield = now;
            Thread.Yield();
        }

        _lastCheckpointClock = now;
        _checkpointCountdown = _checkpointStride;
        return now - _sliceStart >= TimeSliceTicks
            || now >= BudgetDeadline
            || (_timers.Count > 0 && (systemClock ? IsTimerDue(now) : IsTimerDue()));
    }

    /// <summary>
    /// Takes in the waiting wake-ups (the inbox, due timers), so that the tasklets they make ready queue before a
    /// tasklet that gives way at a checkpoint (I/O priority, seeds 002 and 004). Owner thread, inside a step.
    /// </summary>
    internal void TakeInWakeups()
    {
        if (_inboxCount != 0)
        {
            DrainInbox();
        }

        if (_timers.Count > 0)
        {
            UpdateCoarseClock();
            FireDueTimers();
        }

        _wokenBehindCheckpoint = false; // the caller now queues behind all of them
    }

    /// <summary>Fires every due timer. Returns true if any of them made a tasklet ready.</summary>
    private bool FireDueTimers()
    {
        if (_timers.Count == 0)
        {
            return false;
        }

        long now = Now;
        bool any = false;
        while (_timers.Count > 0 && _timers.Peek().Due <= now)
        {
            TimerEntry entry = _timers.Pop();
            if (entry.Timer is { } timer)
            {
                // A virtual-clock ITimer: its callback runs as a step of its own, outside every tasklet (this may be
                // inside a checkpointing tasklet's step). Act only on a firing claimed under the timer's lock: a
                // schedule replaced by Change or Dispose is dropped here, and again if it changes before the step.
                if (timer.PrepareFiring(entry.Generation, entry.Due))
                {
                    _runQueue.PushBack(RentPostedStep(null!, s_fireVirtualTimer, timer));
                    any = true;
                }
            }
            else if (entry.Scope is { } scope)
            {
                any |= scope.Expire(); // false when it was left or its tasklet died meanwhile
            }
            else if (entry.Waiter!.TryEnd(entry.Generation, entry.FiredIndex, null, front: false))
            {
                any = true; // a timer that lost (the wait ended otherwise) is simply dropped
            }
        }

        _wokenBehindCheckpoint |= any;
        return any;
    }

    private static readonly SendOrPostCallback s_fireVirtualTimer = static s => ((VirtualTimer)s!).RunFiring();

    /// <summary>
    /// Puts the schedule (<paramref name="version"/>, <paramref name="due"/>) of a virtual-clock timer on the heap: at
    /// once on the scheduler's thread, else through the inbox (the heap is that thread's), where it waits for Run.
    /// </summary>
    internal void ArmVirtualTimer(VirtualTimer timer, long version, long due)
    {
        if (IsOwnerThread)
        {
            _timers.Push(new TimerEntry(due, _timerSequence++, null, version, 0, null, timer));
        }
        else
        {
            PostToInbox(new Entry(null!, s_armVirtualTimer, new VirtualTimerArm(this, timer, version, due)), front: false);
        }
    }

    private static readonly SendOrPostCallback s_armVirtualTimer = static s => ((VirtualTimerArm)s!).Arm();

    // A schedule posted from another thread; armed by a step of the scheduler (an invocation step, on its thread).
    private sealed class VirtualTimerArm(Scheduler scheduler, VirtualTimer timer, long version, long due)
    {
        public void Arm() => scheduler.ArmVirtualTimer(timer, version, due);
    }

    /// <summary>In deterministic mode, with nothing ready: jump the virtual clock to the next live timer.</summary>
    private bool AdvanceVirtualTime()
    {
        if (_virtualTime is null)
        {
            return false;
        }

        while (_timers.Count > 0)
        {
            if (!_timers.Peek().IsLive)
            {
                _timers.Pop();
                continue;
            }

            _virtualTime.AdvanceTo(_timers.Peek().Due);
            return true;
        }

        return false;
    }

    private void UpdateCoarseClock() => _coarseNow = Stopwatch.GetTimestamp();
}
