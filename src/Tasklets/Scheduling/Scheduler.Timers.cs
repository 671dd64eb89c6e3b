using System.Diagnostics;
using Tasklets.Internal;

namespace Tasklets;

// Facet: timers (sleep, select timeouts, timeout scopes), the clock, and sleeping while idle.
// Relies on: the timer heap and the coarse clock are owner-thread state; Signal() may come from any thread.
public sealed partial class Scheduler
{
    private TimerHeap _timers;
    private long _timerSequence;
    private ITimer? _wakeTimer;

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
        while (_timers.Count > 0 && !_timers.Peek().IsLive)
        {
            _timers.Pop();
        }

        return _timers.Count > 0 && Now >= _timers.Peek().Due;
    }

    /// <summary>Wake-ups from outside (the inbox) or a due timer are waiting. Owner thread.</summary>
    internal bool HasWaitingWakeups => _inboxCount != 0 || (_timers.Count > 0 && IsTimerDue());

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
            if (entry.Scope is { } scope)
            {
                scope.Expire();
                any = true;
            }
            else if (entry.Waiter!.TryEnd(entry.Generation, entry.FiredIndex, null, front: false))
            {
                any = true; // a timer that lost (the wait ended otherwise) is simply dropped
            }
        }

        return any;
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

    /// <summary>
    /// Sleeps until the inbox gets an entry, <see cref="Signal"/> is called, the timer due at <paramref name="due"/>
    /// (in <see cref="Time"/> units) is due, or the real-time <paramref name="budgetEnd"/> (Stopwatch units) passes.
    /// </summary>
    private void WaitForWork(long due, long budgetEnd)
    {
        TimeSpan wait = Timeout.InfiniteTimeSpan;
        bool useProviderTimer = false;
        if (due != long.MaxValue)
        {
            wait = _time.GetElapsedTime(Now, due);
            if (wait <= TimeSpan.Zero)
            {
                return;
            }

            useProviderTimer = !ReferenceEquals(_time, TimeProvider.System);
        }

        if (budgetEnd != long.MaxValue)
        {
            TimeSpan left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), budgetEnd);
            if (left <= TimeSpan.Zero)
            {
                return;
            }

            if (wait == Timeout.InfiniteTimeSpan || left < wait)
            {
                wait = left;
                useProviderTimer = false;
            }
        }

        if (useProviderTimer)
        {
            // A custom clock (a fake one in tests) decides when the timer is due: let it wake us.
            _wakeTimer ??= _time.CreateTimer(static s => ((Scheduler)s!).Signal(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _wakeTimer.Change(wait, Timeout.InfiniteTimeSpan);
            wait = Timeout.InfiniteTimeSpan;
        }

        lock (_inboxLock)
        {
            if (_inboxCount == 0 && !_signaled)
            {
                _sleeping = true;
                int ms = wait == Timeout.InfiniteTimeSpan ? Timeout.Infinite : (int)Math.Min(int.MaxValue - 1, Math.Ceiling(wait.TotalMilliseconds));
                Monitor.Wait(_inboxLock, ms);
                _sleeping = false;
            }

            _signaled = false;
        }
    }
}
