using System.Diagnostics;

namespace Tasklets;

// Facet: the idle wait. With nothing ready, the owner spins briefly on the inbox, within an adaptive budget, when a
// party on another thread may wake it; then it sleeps on the inbox lock until a post, a Signal, the next timer or the
// deadlock verdict (WaitStuck, Scheduler.Deadlock.cs). docs/performance.md, "Cross-thread wake-ups", has the rule and
// its figures.
// Relies on: every wake-up from another thread goes through the inbox (PostToInbox) or Signal, both of which write
// under _inboxLock and pulse only a sleeping owner (_sleeping, written by the owner under the same lock); the spin
// budget and its counters are owner-thread state.
public sealed partial class Scheduler
{
    // Never on one core: a spin there only delays the thread that would post. Figures: docs/performance.md.
    private static readonly bool s_idleSpinAllowed = Environment.ProcessorCount > 1;
    private static readonly long s_initialIdleSpin = Stopwatch.Frequency / 50_000; // 20 µs
    private static readonly long s_maxIdleSpin = Stopwatch.Frequency / 20_000;     // 50 µs
    private static readonly long s_minIdleSpin = Stopwatch.Frequency / 500_000;    // 2 µs: the floor
    private static readonly TimeSpan s_spinBelow = TimeSpan.FromMilliseconds(1);

    private static readonly long s_idleSpinYieldInterval = Stopwatch.Frequency / 3_333_333; // 0.3 µs between yields
    private const int MaxIdleSpinPause = 4; // Thread.SpinWait(4) between reads: about 0.1-0.3 µs here

    // Beyond this many alive tasklets, an idle scheduler with a timer pending does not walk them to learn whether a
    // party outside may end one of their waits: it takes that as possible and lets the budget decide (a spin that
    // finds nothing halves it). Without a timer the walk is the deadlock check's, made anyway.
    private const int MaxIdleSpinWalk = 64;

    // The spin budget (Stopwatch ticks), owner thread only. Invariant: in [s_minIdleSpin, s_maxIdleSpin], and 0 on one
    // core. See IdleSpinBudgetAfterSpin.
    private long _idleSpinBudget = s_idleSpinAllowed ? s_initialIdleSpin : 0;

    private ITimer? _wakeTimer;

    /// <summary>Idle spins that found work (owner thread; read by tests once Run has returned).</summary>
    internal long IdleSpinsWon { get; private set; }

    /// <summary>Idle spins that ran out their budget and slept (owner thread; read by tests once Run has returned).</summary>
    internal long IdleSpinsLost { get; private set; }

    /// <summary>The spin budget now, in Stopwatch ticks (owner thread; read by tests once Run has returned).</summary>
    internal long IdleSpinBudget => _idleSpinBudget;

    /// <summary>The budget's bounds and its start, in Stopwatch ticks (for tests).</summary>
    internal static (long Min, long Initial, long Max) IdleSpinBounds => (s_minIdleSpin, s_initialIdleSpin, s_maxIdleSpin);

    /// <summary>True while the owner sleeps in an idle wait (tests: a spin, if any, is over). Any thread; takes the inbox lock.</summary>
    internal bool IsIdleSleeping
    {
        get
        {
            lock (_inboxLock)
            {
                return _sleeping;
            }
        }
    }

    /// <summary>
    /// True when the idle spin may apply at all: more than one core, the system clock (a virtual or custom clock
    /// decides time itself: a spin on the wall clock means nothing there), and no Seed (deterministic mode is a
    /// closed world run by one thread).
    /// </summary>
    private bool IdleSpinApplies => s_idleSpinAllowed && !IsDeterministic && ReferenceEquals(_time, TimeProvider.System);

    /// <summary>
    /// A scheduler of another thread may post here: this one shares a deadlock group with another (their tasklets met
    /// on a wait source, or spawned onto each other). Lock-free and a hint only: groups only merge, and a stale answer
    /// only decides whether the idle owner spins, never whether it sleeps or what it takes in.
    /// </summary>
    private bool InGroupWithOthers => _groupParent is not null || Volatile.Read(ref _groupMembers) is not null;

    /// <summary>
    /// Sleeps until the inbox gets an entry, <see cref="Signal"/> is called, the timer due at <paramref name="due"/>
    /// (in <see cref="Time"/> units) is due, or the real-time <paramref name="budgetEnd"/> (Stopwatch units) passes;
    /// spins first, within the adaptive budget, when <paramref name="spinCandidate"/> (a party on another thread may
    /// wake it). A timer is never made late by the spin: the spin ends at the wait's end, and what is left of the wait
    /// is measured after it. Owner thread.
    /// </summary>
    private void WaitForWork(long due, long budgetEnd, bool spinCandidate)
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
            // A custom clock (a fake one in tests) decides when the timer is due: let it wake us. (No spin: see
            // IdleSpinApplies.)
            _wakeTimer ??= _time.CreateTimer(static s => ((Scheduler)s!).Signal(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
            _wakeTimer.Change(wait, Timeout.InfiniteTimeSpan);
            wait = Timeout.InfiniteTimeSpan;
        }

        long idleStart = Stopwatch.GetTimestamp();
        if (spinCandidate && _idleSpinBudget > 0 && (wait == Timeout.InfiniteTimeSpan || wait > s_spinBelow))
        {
            // The spin ends before the wait does: a timer due within the budget is not made late by it.
            if (SpinForWork(IdleSpinLimit(_idleSpinBudget, wait), stuck: false))
            {
                return;
            }

            if (wait != Timeout.InfiniteTimeSpan)
            {
                // What is left of the wait, so that the sleep below does not add the spin to it.
                wait -= Stopwatch.GetElapsedTime(idleStart);
                if (wait <= TimeSpan.Zero)
                {
                    return;
                }
            }
        }

        if (wait != Timeout.InfiniteTimeSpan && wait < s_spinBelow)
        {
            // The last part of a wait: Monitor.Wait counts whole milliseconds, so a timer due in 0.3 ms would fire
            // about 1 ms late. Spin it out instead, giving the core away between reads. A stale read of the inbox
            // count or of the signal only costs one more turn: both are read again under the lock below next time.
            long until = Stopwatch.GetTimestamp() + (long)(wait.TotalSeconds * Stopwatch.Frequency);
            while (_inboxCount == 0 && !Volatile.Read(ref _signaled) && Stopwatch.GetTimestamp() < until)
            {
                Thread.Yield();
            }

            ConsumeSignal();
            return;
        }

        bool wokenByPost = false;
        lock (_inboxLock)
        {
            // Under the lock that every post and Signal takes: an entry added or a signal given after the spin's last
            // read is seen here, or, once _sleeping is set, pulses the Wait below. No wake-up is lost between the two.
            if (_inboxCount == 0 && !_signaled)
            {
                _sleeping = true;
                // Whole milliseconds rounded down: the loop comes back for the rest, which the spin above takes.
                int ms = wait == Timeout.InfiniteTimeSpan ? Timeout.Infinite : (int)Math.Min(int.MaxValue - 1, Math.Floor(wait.TotalMilliseconds));
                Monitor.Wait(_inboxLock, ms);
                _sleeping = false;
                wokenByPost = _inboxCount != 0 || _signaled; // else the timeout: the timer's turn
            }

            _signaled = false;
        }

        if (spinCandidate && wokenByPost)
        {
            AfterSleepEndedByWake(idleStart);
        }
    }

    /// <summary>
    /// The idle spin: reads the inbox count (and the signal, and with <paramref name="stuck"/> the deadlock verdict)
    /// with a growing pause between reads, for at most <paramref name="limit"/> Stopwatch ticks. True when one of
    /// them says there is work: the caller returns to the loop, which takes the inbox in under its lock. False when the
    /// limit passed: the caller goes on to sleep, and reads all of them again under the lock first. Adapts the budget
    /// (<see cref="IdleSpinBudgetAfterSpin"/>). Owner thread; changes no state another thread reads (a stuck scheduler is
    /// judged by other threads while it spins: see IsStillStuck).
    /// </summary>
    private bool SpinForWork(long limit, bool stuck)
    {
        long start = Stopwatch.GetTimestamp();
        long until = start + limit;
        long nextYield = start + s_idleSpinYieldInterval;
        int pause = 1;
        while (true)
        {
            // Lock-free reads, each only a hint. _inboxCount is volatile and written under _inboxLock after the entry
            // is in the list: a non-zero read means the drain will find it; a stale zero costs one more round. The
            // signal and the verdict are set before the pulse that a sleeper would get, and the sleep reads both again
            // under the lock before it waits (WaitForWork, WaitStuck): a read missed here is never a lost wake-up.
            if (_inboxCount != 0 || Volatile.Read(ref _signaled) || (stuck && _deadlockDeclared))
            {
                ConsumeSignal();
                IdleSpinsWon++;
                _idleSpinBudget = IdleSpinBudgetAfterSpin(_idleSpinBudget, won: true, Stopwatch.GetTimestamp() - start);
                return true;
            }

            long now = Stopwatch.GetTimestamp();
            if (now >= until)
            {
                IdleSpinsLost++;
                _idleSpinBudget = IdleSpinBudgetAfterSpin(_idleSpinBudget, won: false, limit);
                return false;
            }

            if (now >= nextYield)
            {
                // The core is offered every 0.3 µs: the partner that would post may be waiting for this very core (a
                // loaded machine, two threads on one core), and pause instructions would hold it off for the whole
                // budget. Measured at a load of 9-11 on this 2-core machine, the cross-scheduler handoff took 1.6, 1.6
                // and 0.3 µs per item with a yield every 0.3 µs, 6.9, 1.4 and 6.6 with one every 5 µs (and 4.2, 3.9
                // and 1.4 with the SpinWait spin this replaced); on a quiet machine the interval made no difference
                // (a yield with nothing else runnable costs about 0.4 µs).
                Thread.Yield();
                nextYield = Stopwatch.GetTimestamp() + s_idleSpinYieldInterval;
                continue;
            }

            // The pause doubles to a few tens of ns between reads.
            Thread.SpinWait(pause);
            if (pause < MaxIdleSpinPause)
            {
                pause <<= 1;
            }
        }
    }

    /// <summary>
    /// A wait that ends without sleeping has consumed a signal it read: cleared as the sleep's exit clears it, under
    /// the lock, or the next idle wait would return at once, and so on, a busy loop until the next sleep. The loop
    /// the caller returns to re-reads everything a signal announces (the inbox, timers, holds, the verdict); a Signal
    /// after this clear sets it again. Owner thread.
    /// </summary>
    private void ConsumeSignal()
    {
        if (Volatile.Read(ref _signaled))
        {
            lock (_inboxLock)
            {
                _signaled = false;
            }
        }
    }

    /// <summary>
    /// How long an idle wait of <paramref name="wait"/> (infinite: none) spins with <paramref name="budget"/>: the
    /// budget, cut at the wait's end, so that a timer due within it is taken when due, not after the spin.
    /// </summary>
    internal static long IdleSpinLimit(long budget, TimeSpan wait)
        => wait == Timeout.InfiniteTimeSpan ? budget : Math.Min(budget, (long)(wait.TotalSeconds * Stopwatch.Frequency));

    /// <summary>
    /// The budget rule after a spin (Stopwatch ticks). A spin that found work after <paramref name="elapsed"/> keeps the
    /// budget at least twice that, up to the cap: the next gap of the same kind is caught too. A spin that ran out
    /// halves it, down to the floor: a scheduler whose partners come late or rarely spins 2 µs per idle period, less
    /// than the sleep and wake-up it precedes cost this thread (a futex wait, two context switches), and still
    /// catches a partner that answers at once, which grows the budget again. A spin costs only its own length when it
    /// wins, so growing is cheap; every loss is paid in full, so the budget shrinks fast (from the cap to the floor in
    /// five losses).
    /// </summary>
    internal static long IdleSpinBudgetAfterSpin(long budget, bool won, long elapsed)
        => won
            ? Math.Clamp(Math.Max(budget, 2 * elapsed), s_minIdleSpin, s_maxIdleSpin)
            : Math.Max(s_minIdleSpin, budget / 2);

    /// <summary>
    /// The budget rule after a sleep that a post or a signal ended <paramref name="gap"/> ticks after the idle wait
    /// began: within the cap, a spin as long as the gap would have caught it and saved the sleep and the wake, so the
    /// budget becomes at least twice the gap; a longer gap leaves it. Never on one core.
    /// </summary>
    internal static long IdleSpinBudgetAfterWake(long budget, long gap)
        => s_idleSpinAllowed && gap <= s_maxIdleSpin ? Math.Clamp(Math.Max(budget, 2 * gap), s_minIdleSpin, s_maxIdleSpin) : budget;

    /// <summary>A sleep that a post or a signal ended, the idle wait having begun at <paramref name="idleStart"/>. Owner thread.</summary>
    private void AfterSleepEndedByWake(long idleStart)
        => _idleSpinBudget = IdleSpinBudgetAfterWake(_idleSpinBudget, Stopwatch.GetTimestamp() - idleStart);
}
