using System.Diagnostics;

namespace Tasklets.Internal;

/// <summary>What a stall is (DESIGN.md, "Stalls: every hang explains itself").</summary>
internal enum StallKind
{
    /// <summary>No stall window is open.</summary>
    None,

    /// <summary>One step has run without a switch: CPU work that never checkpoints, or a blocking call.</summary>
    LongStep,

    /// <summary>Idle with only closed-world waits (no timer, foreign await, keep-alive): a likely deadlock.</summary>
    LikelyDeadlock,

    /// <summary>Under Seed with the virtual clock: only steps that resume a yield have run.</summary>
    YieldOnly,
}

/// <summary>
/// The one process-wide watcher behind <see cref="Scheduler.Stalled"/>: a background thread that samples the
/// progress fields of every scheduler inside <see cref="Scheduler.Run()"/> (or <c>Run(main)</c>) a few times per
/// stall timeout and reports a stall once per stall. It must live outside the schedulers' threads: a step that never
/// switches holds its thread, and nothing on that thread can notice.
/// </summary>
/// <remarks>
/// <para><b>Threads.</b> <see cref="Register"/> and <see cref="Unregister"/> run on a scheduler's thread as it enters
/// and leaves <c>Run()</c>, under <c>s_gate</c>. Everything else runs on the monitor thread: each <see cref="Watch"/>'s
/// window fields are written by it alone (after the registering thread's writes, published by <c>s_gate</c>), and the
/// handlers of <see cref="Scheduler.Stalled"/> run on it, outside the gate.</para>
/// <para><b>Life.</b> The thread starts with the first scheduler that enters <c>Run()</c> with a finite
/// <see cref="SchedulerOptions.StallTimeout"/>, sleeps a quarter of the shortest such timeout between checks (5 ms to
/// 1 s), and parks on the gate, without a timeout, while no such scheduler runs. It is a background thread: it never
/// keeps the process alive.</para>
/// <para><b>Time.</b> A window accumulates the time between two checks, at most two check intervals per check: time
/// in which the monitor itself did not run (the process was suspended in a debugger, a long GC pause, the machine
/// slept) is not counted as a stall. <see cref="SchedulerStalledEventArgs.StalledFor"/> is therefore a lower bound,
/// and a report comes at most a quarter of the timeout (one check) after the timeout, or two checks for a likely
/// deadlock, which the scheduler looks at once more before it is reported.</para>
/// </remarks>
internal static class StallMonitor
{
    private static readonly long s_minInterval = Stopwatch.Frequency / 200; // 5 ms
    private static readonly long s_maxInterval = Stopwatch.Frequency;       // 1 s

    // All under s_gate.
    private static readonly object s_gate = new();
    private static readonly List<Watch> s_watches = [];
    private static int s_reporting;      // watches with a finite timeout: the thread parks while this is 0
    private static long s_interval = s_maxInterval;
    private static bool s_kicked;        // a registration changed the interval or woke the parked thread
    private static Thread? s_thread;

    // Written by the monitor thread only (Volatile.Write), read by anyone (tests, through ObservedTicks).
    private static long s_observedTicks;

    /// <summary>
    /// The monitor's observation time so far, in <see cref="Stopwatch"/> ticks: the sum of the (capped) time between
    /// its checks while at least one scheduler had a finite timeout. A stall window can only reach its timeout after
    /// this grew by that much; tests wait on it (a state) to prove that no stall was reported.
    /// </summary>
    internal static long ObservedTicks => Volatile.Read(ref s_observedTicks);

    /// <summary>
    /// Starts watching <paramref name="scheduler"/>, which enters <c>Run()</c> on the calling thread. A scheduler with
    /// reports turned off (<see cref="Timeout.InfiniteTimeSpan"/>) is registered too: a likely deadlock is reported only
    /// while every scheduler inside <c>Run()</c> is stuck, and such a scheduler counts as one that may still progress.
    /// </summary>
    public static Watch Register(Scheduler scheduler, TimeSpan stallTimeout)
    {
        var watch = new Watch(scheduler, ToStopwatchTicks(stallTimeout));
        lock (s_gate)
        {
            s_watches.Add(watch);
            if (watch.TimeoutTicks == 0)
            {
                return watch;
            }

            s_reporting++;
            long interval = ComputeInterval();
            if (s_thread is null)
            {
                s_interval = interval;
                // UnsafeStart: the thread must not keep the first Run caller's ExecutionContext (its AsyncLocals)
                // alive for the life of the process, nor run handlers in it.
                s_thread = new Thread(Loop) { IsBackground = true, Name = "Tasklets stall monitor" };
                s_thread.UnsafeStart();
            }
            else if (s_reporting == 1 || interval < s_interval)
            {
                // Parked, or the new timeout needs closer checks than the current sleep: wake it to re-plan.
                s_interval = interval;
                s_kicked = true;
                Monitor.Pulse(s_gate);
            }
        }

        return watch;
    }

    /// <summary>Stops watching; the scheduler leaves <c>Run()</c> on the calling thread.</summary>
    public static void Unregister(Watch watch)
    {
        lock (s_gate)
        {
            watch.Active = false;
            s_watches.Remove(watch);
            if (watch.TimeoutTicks != 0)
            {
                s_reporting--;
                s_interval = ComputeInterval(); // takes effect at the next sleep: a longer one needs no wake-up
            }
        }
    }

    // Caller holds s_gate.
    private static long ComputeInterval()
    {
        long shortest = long.MaxValue;
        foreach (Watch w in s_watches)
        {
            if (w.TimeoutTicks != 0)
            {
                shortest = Math.Min(shortest, w.TimeoutTicks);
            }
        }

        return shortest == long.MaxValue ? s_maxInterval : Math.Clamp(shortest / 4, s_minInterval, s_maxInterval);
    }

    private static long ToStopwatchTicks(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return 0;
        }

        double ticks = timeout.TotalSeconds * Stopwatch.Frequency;
        return ticks >= long.MaxValue / 4 ? long.MaxValue / 4 : Math.Max(1, (long)ticks);
    }

    private static void Loop()
    {
        var snapshot = new List<Watch>();
        var due = new List<(Watch Watch, StallKind Kind, long Elapsed)>();
        long last = Stopwatch.GetTimestamp();
        while (true)
        {
            long interval;
            lock (s_gate)
            {
                while (s_reporting == 0)
                {
                    Monitor.Wait(s_gate); // parked: no scheduler with stall reports is inside Run()
                    last = Stopwatch.GetTimestamp(); // parked time is no observation time
                }

                snapshot.Clear();
                snapshot.AddRange(s_watches);
                interval = s_interval;
            }

            long now = Stopwatch.GetTimestamp();
            long elapsed = Math.Min(now - last, 2 * interval);
            last = now;
            try
            {
                Check(snapshot, elapsed, due);
                foreach ((Watch watch, StallKind kind, long stalledFor) in due)
                {
                    // A scheduler that left Run() since the check is not reported. It may still leave between this
                    // read and the handler: that report is of a stall that lasted its full timeout and just ended.
                    if (watch.Active)
                    {
                        watch.Scheduler.RaiseStall(kind, Stopwatch.GetElapsedTime(0, stalledFor));
                    }
                }

                // After the reports of this check: whoever sees the new total also sees their handlers done.
                Volatile.Write(ref s_observedTicks, s_observedTicks + elapsed);
            }
            catch (Exception e)
            {
                // Handlers' exceptions are caught per handler (Scheduler.ReportStall); this is a bug of the monitor
                // (a Dump that met a wait changing under it, say). The monitor must not die of it: the next check
                // starts afresh.
                Trace.TraceError("Tasklets stall monitor: a check failed and was skipped: {0}", e);
            }
            finally
            {
                // Parked, the thread must not keep schedulers that left Run() (and their tasklets) alive.
                due.Clear();
                snapshot.Clear();
            }

            lock (s_gate)
            {
                if (!s_kicked && s_reporting > 0)
                {
                    Monitor.Wait(s_gate, TimeSpan.FromSeconds(s_interval / (double)Stopwatch.Frequency));
                }

                s_kicked = false;
            }
        }
    }

    // One check of every watch: first each one's observation, then which are due (a likely deadlock needs the others'
    // observations of the same check). Monitor thread.
    private static void Check(List<Watch> watches, long elapsed, List<(Watch, StallKind, long)> due)
    {
        bool allStuck = true;
        foreach (Watch w in watches)
        {
            if (w.Active)
            {
                w.Observe(elapsed);
                allStuck &= w.IsStuck;
            }
        }

        foreach (Watch w in watches)
        {
            if (w.Active && w.IsDue(allStuck))
            {
                due.Add((w, w.Kind, w.Elapsed));
            }
        }
    }

    /// <summary>
    /// One scheduler's time inside one <c>Run()</c> call, as the monitor sees it: the last sample of its progress
    /// fields and the open stall window. Fields other than <see cref="Active"/> are the monitor thread's.
    /// </summary>
    internal sealed class Watch(Scheduler scheduler, long timeoutTicks)
    {
        private const int NoRecheck = -1;

        public readonly Scheduler Scheduler = scheduler;

        /// <summary>The stall timeout in Stopwatch ticks; 0 when reports are off.</summary>
        public readonly long TimeoutTicks = timeoutTicks;

        /// <summary>False once the scheduler left this Run() call. Written under s_gate; read by the monitor.</summary>
        public volatile bool Active = true;

        private bool _sampled;
        private long _steps;
        private long _progress;
        private int _epoch;
        private int _recheckEpoch = NoRecheck;
        private bool _reported;

        /// <summary>True when reports are on for this scheduler.</summary>
        public bool ReportsStalls => TimeoutTicks != 0;

        /// <summary>The open window's kind.</summary>
        public StallKind Kind { get; private set; }

        /// <summary>How long the open window has lasted, in Stopwatch ticks (a lower bound).</summary>
        public long Elapsed { get; private set; }

        /// <summary>At the last check: idle with only closed-world waits, and not woken since the previous one.</summary>
        public bool IsStuck { get; private set; }

        /// <summary>Takes a sample and moves the window on by <paramref name="elapsed"/>.</summary>
        public void Observe(long elapsed)
        {
            Scheduler.StallSample s = Scheduler.SampleForStalls();
            bool first = !_sampled;
            bool stepped = s.Steps != _steps;
            bool progressed = s.Progress != _progress;
            bool sameEpoch = s.Epoch == _epoch;
            _sampled = true;
            _steps = s.Steps;
            _progress = s.Progress;
            if (s.Settled)
            {
                _epoch = s.Epoch; // the last epoch read without the owner moving under us
            }

            IsStuck = s.Settled && s.Idle && s.LikelyDeadlock && !stepped;
            if (first)
            {
                return; // the baseline: nothing to compare with yet
            }

            if (progressed || (stepped && !s.VirtualClock))
            {
                // Progress ends any stall, and only progress lets the next one be reported.
                Close();
                _reported = false;
            }
            else if (stepped)
            {
                // Under Seed with the virtual clock, steps that only resume yields. They end a long step or an idle
                // period (a stall of another kind, which may have been reported): the yielding is a stall of its own.
                if (Kind is StallKind.LongStep or StallKind.LikelyDeadlock)
                {
                    _reported = false;
                }

                Extend(StallKind.YieldOnly, elapsed);
            }
            else if (!s.Settled)
            {
                // The owner moved between idle and busy while we read: judge at the next check.
            }
            else if (s.Idle)
            {
                if (s.LikelyDeadlock)
                {
                    Extend(StallKind.LikelyDeadlock, elapsed);
                }
                else
                {
                    Close(); // an idle service (timers, I/O, keep-alive, channels fed from outside): no stall
                }
            }
            else if (sameEpoch)
            {
                // No step began since the last check, and the owner has not been idle in between: the step that
                // was running then still runs. It began before that check, so the time since counts at once.
                Extend(StallKind.LongStep, elapsed, countsAtOnce: true);
            }
            else if (Kind == StallKind.LongStep)
            {
                Close(); // the owner went idle and came back without a step: that long step ended
            }
        }

        /// <summary>True once the open window has lasted the timeout and is to be reported now.</summary>
        public bool IsDue(bool allStuck)
        {
            if (!ReportsStalls || _reported || Kind == StallKind.None || Elapsed < TimeoutTicks)
            {
                return false;
            }

            if (Kind == StallKind.LikelyDeadlock)
            {
                if (!IsStuck || !allStuck)
                {
                    // Judged on this check's settled sample only; and another scheduler inside Run() may still
                    // progress and wake it (DESIGN, "Deadlock": the condition holds only when every one is stuck).
                    return false;
                }

                if (_recheckEpoch == NoRecheck)
                {
                    // Its flag was computed when it went idle; since then an outside party may have used a channel or
                    // taken a keep-alive hold without waking it. Wake it to look again (it goes idle again at once,
                    // a new epoch), and report only if that look says the same.
                    _recheckEpoch = _epoch;
                    Scheduler.RequestStallRecheck();
                    return false;
                }

                if (_epoch == _recheckEpoch)
                {
                    return false; // not looked again yet
                }
            }

            _reported = true;
            return true;
        }

        private void Extend(StallKind kind, long elapsed, bool countsAtOnce = false)
        {
            if (Kind == kind)
            {
                Elapsed += elapsed;
                return;
            }

            // A new window: it began at some moment since the last check, so that time counts only where the
            // sample proves it (a long step).
            Kind = kind;
            Elapsed = countsAtOnce ? elapsed : 0;
            _recheckEpoch = NoRecheck;
        }

        private void Close()
        {
            Kind = StallKind.None;
            Elapsed = 0;
            _recheckEpoch = NoRecheck;
        }
    }
}
