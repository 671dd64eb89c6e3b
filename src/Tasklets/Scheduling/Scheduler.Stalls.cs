using System.Diagnostics;
using System.Globalization;
using Tasklets.Internal;

namespace Tasklets;

// Facet: stall reports (DESIGN.md, "Stalls: every hang explains itself"): the progress fields the owner publishes for
// the process-wide StallMonitor, the idle state it publishes once per idle transition, and the report.
// Relies on: Step (Scheduler.cs) increments _stepCount at the start of every step, and _progressSteps at the start of
// every step that starts a tasklet, runs a posted step or resumes a wait other than a yield (a yield parked on an
// external waiter, because the own one holds a stored operation, runs as a posted step: counted as progress, so at
// worst it hides a yield-only stall); the loop of Run() waits only inside IdleOrDetectDeadlock, which it brackets
// with EnterStallIdle/ExitStallIdle; Enter/Exit register the scheduler with the monitor for Run() and Run(main) only.
public sealed partial class Scheduler
{
    // Owner-thread writes, monitor-thread reads (see SampleForStalls for why each read is sound).
    private long _progressSteps;                // steps that did not resume a yield
    private int _idleEpoch;                     // +1 entering and +1 leaving an idle wait of Run(): odd while idle
    private volatile bool _idleLikelyDeadlock;  // written before _idleEpoch turns odd: that idle period's verdict

    // The monitor's record of this scheduler while a thread is inside Run() (null otherwise). Owner thread.
    private StallMonitor.Watch? _stallWatch;

    /// <summary>
    /// Raised once per stall while a thread is inside <see cref="Run()"/> or <see cref="Run(Func{Task}, SchedulerOptions?)"/>
    /// and, for <see cref="SchedulerOptions.StallTimeout"/>: one step has run without a switch (CPU work that never
    /// reaches an await or <see cref="Tasklet.Checkpoint"/>, a blocking call; <see cref="SchedulerStalledEventArgs.LongStep"/>
    /// is true); or nothing has progressed while every blocked tasklet waits on primitives that no party outside the
    /// tasklets has ever used, with no timer, foreign await or <see cref="KeepAlive"/> hold, and every scheduler inside
    /// <c>Run()</c> is in that state (a likely deadlock, e.g. channels created before <c>Run()</c> and never used from
    /// outside); or, under <see cref="SchedulerOptions.Seed"/> with the virtual clock, only tasklets that yield have
    /// run, so virtual time cannot advance.
    /// </summary>
    /// <remarks>
    /// <para>A report, never an exception: nothing is killed, and the scheduler goes on as before. A new stall is
    /// reported only after the scheduler has progressed (run a step that did not only resume a yield). An idle
    /// service (waits on channels that outside code feeds or has used, I/O, foreign awaits, timers, a keep-alive
    /// hold) is never a stall. <see cref="RunFor"/> and <see cref="RunOnce"/> do not report: between their calls the
    /// host owns the thread.</para>
    /// <para>The handler runs on the stall monitor's thread (one background thread for the process), not on the
    /// scheduler's, while the scheduler may still be running the long step; keep it short, it delays the checks of
    /// every scheduler. An exception a handler throws is caught and written to <see cref="Trace"/>; the other handlers
    /// still run, and the monitor goes on.</para>
    /// <para>The report comes up to a quarter of the timeout after the timeout (half, for a likely deadlock);
    /// <see cref="SchedulerStalledEventArgs.StalledFor"/> is how long the stall had lasted at least.</para>
    /// </remarks>
    public event EventHandler<SchedulerStalledEventArgs>? Stalled;

    /// <summary>What the monitor samples of this scheduler at one check.</summary>
    internal readonly record struct StallSample(long Steps, long Progress, int Epoch, bool Settled, bool LikelyDeadlock, bool VirtualClock)
    {
        /// <summary>Inside an idle wait of Run() at the time of the sample.</summary>
        public bool Idle => (Epoch & 1) != 0;
    }

    /// <summary>
    /// Reads the progress fields the owner writes. Monitor thread. Each read is a volatile read of a field that only
    /// the owner writes; what makes each one sound is said at the line.
    /// </summary>
    internal StallSample SampleForStalls()
    {
        // The idle epoch brackets the verdict like a seqlock: the owner writes the verdict (volatile) and then the odd
        // epoch (volatile: release), and changes the verdict again only after writing the next epoch. So two equal
        // epoch reads (acquire) around the verdict's read prove that the verdict is the one of that idle period.
        int epoch = Volatile.Read(ref _idleEpoch);
        bool likelyDeadlock = _idleLikelyDeadlock;

        // Plain owner increments, only compared for change with the previous check's read. The owner's store is
        // issued at every step (a heap field, and the step calls out), and becomes visible within the store buffer's
        // drain time, far below one check interval (5 ms at least): a read that misses a step is corrected by the next
        // check, which closes the window, so a miss can never hold one open for the four checks a timeout takes. On a
        // 32-bit platform a torn read of a counter being incremented is either the old value (a stale read) or one
        // that differs from it (seen as a step): it can only hide a stall, never make one.
        long steps = Volatile.Read(ref _stepCount);
        long progress = Volatile.Read(ref _progressSteps);
        bool settled = Volatile.Read(ref _idleEpoch) == epoch;

        // What may have changed since the verdict without waking the owner: a keep-alive hold taken from outside
        // (Interlocked-written, read whole), a post to the inbox (volatile). Either one means it is not stuck.
        likelyDeadlock = likelyDeadlock && Volatile.Read(ref _keepAlive) == 0 && _inboxCount == 0;
        return new StallSample(steps, progress, epoch, settled, likelyDeadlock, _virtualTime is not null);
    }

    /// <summary>Wakes the owner so that it takes its idle verdict again (the monitor suspects it is stale). Any thread.</summary>
    internal void RequestStallRecheck() => Signal();

    /// <summary>Builds the report of a stall and raises it. Monitor thread.</summary>
    internal void RaiseStall(StallKind kind, TimeSpan stalledFor)
    {
        string ms = stalledFor.TotalMilliseconds.ToString("0", CultureInfo.InvariantCulture);
        string headline = kind switch
        {
            StallKind.LongStep =>
                $"Stalled for {ms} ms: one step has run without a switch, in {DescribeRunning()}: CPU work that never " +
                "reaches an await or Tasklet.Checkpoint(), or a blocking call (move such work to Tasklet.RunInThread).",
            StallKind.YieldOnly =>
                $"Stalled for {ms} ms: only yielding tasklets: virtual time cannot advance. Under Seed the virtual clock " +
                "moves only when no tasklet is ready, so a tasklet that polls with Tasklet.Yield() or Checkpoint() keeps " +
                "every timer from firing; wait on a channel, an event or Tasklet.Sleep instead of polling.",
            _ =>
                $"Stalled for {ms} ms: nothing has progressed, and every blocked tasklet waits on primitives that nothing " +
                "outside the tasklets has used, with no timer, foreign await or keep-alive hold: a likely deadlock. If a " +
                "party outside the tasklets will still use them, it should take Scheduler.KeepAlive() until it has.",
        };
        string dump;
        try
        {
            dump = Dump();
        }
        catch (Exception e)
        {
            // Dump tolerates waits changing under it; should a race still defeat it, the stall is reported anyway.
            dump = "(Dump failed: " + e.Message + ")" + Environment.NewLine;
        }

        ReportStall(new SchedulerStalledEventArgs(this, headline + Environment.NewLine + dump, stalledFor, kind == StallKind.LongStep));
    }

    // The one place a stall is reported. Handlers run one by one: a throwing one is caught and traced, and the rest
    // still run, so that neither the process nor the monitor dies of a handler.
    private void ReportStall(SchedulerStalledEventArgs e)
    {
        TaskletsMetrics.Stall();
        TaskletsEventSource.Log.Stall(this, e.StalledFor, e.LongStep, e.Dump); // nothing when no session listens

        if (Stalled is not { } handlers)
        {
            return;
        }

        foreach (Delegate handler in handlers.GetInvocationList())
        {
            try
            {
                ((EventHandler<SchedulerStalledEventArgs>)handler)(this, e);
            }
            catch (Exception exception)
            {
                Trace.TraceError("Tasklets: a Scheduler.Stalled handler threw; the report went on without it: {0}", exception);
            }
        }
    }

    // The running step's tasklet, for a long step's report. _running is an owner-written reference, read whole; from
    // the monitor it may be a moment stale (the step just ended), which the report's Dump then shows too.
    private string DescribeRunning()
        => _running is { } t
            ? $"tasklet {t.Id.ToString(CultureInfo.InvariantCulture)} '{t.Name}'"
            : "no tasklet (the scheduler's own loop, an InvokeAsync action, a timer or failure callback)";

    // ---------------------------------------------------------------- owner side

    /// <summary>Registers with the stall monitor as Run() starts. Owner thread, inside Enter.</summary>
    private void EnterStallWatch()
    {
        if ((_idleEpoch & 1) != 0)
        {
            _idleEpoch++; // an earlier Run() threw out of an idle wait (a deadlock without KillOnDeadlock)
        }

        _idleLikelyDeadlock = false;
        _stallWatch = StallMonitor.Register(this, _options.StallTimeout); // its lock publishes the two writes above
    }

    /// <summary>Leaves the stall monitor as Run() ends. Owner thread, inside Exit.</summary>
    private void ExitStallWatch()
    {
        if (_stallWatch is { } watch)
        {
            _stallWatch = null;
            StallMonitor.Unregister(watch);
        }
    }

    /// <summary>
    /// The loop of Run() is about to wait: publish whether this idle period is a likely deadlock. Once per idle
    /// transition, never per step; the scan runs only when the cheap conditions hold (no timer, foreign await or hold).
    /// </summary>
    private void EnterStallIdle()
    {
        if (_stallWatch is not { ReportsStalls: true })
        {
            return;
        }

        _idleLikelyDeadlock = IsLikelyDeadlock();
        Volatile.Write(ref _idleEpoch, _idleEpoch + 1); // odd: after the verdict (see SampleForStalls)
    }

    /// <summary>The loop of Run() is done waiting.</summary>
    private void ExitStallIdle()
    {
        if (_stallWatch is { ReportsStalls: true })
        {
            Volatile.Write(ref _idleEpoch, _idleEpoch + 1); // even: busy
        }
    }

    /// <summary>
    /// The deadlock condition of DESIGN's "Deadlock", evaluated as in deterministic mode's closed world: tasklets are
    /// alive, nothing is posted, no live timer, no foreign await, no keep-alive hold, and no awaited wait that a party
    /// outside the tasklets may end, where a primitive made outside a tasklet does not count, only one used there.
    /// Owner thread, while nothing is ready.
    /// </summary>
    private bool IsLikelyDeadlock()
    {
        if (_aliveCount == 0 || _inboxCount != 0 || _foreignWaits > 0 || Volatile.Read(ref _keepAlive) > 0)
        {
            return false;
        }

        DropStaleTimers(); // a timer of a wait that has ended (a select's timeout, a scope left early) wakes nobody
        return _timers.Count == 0 && !AnyExternalWaitInClosedWorld();
    }

    /// <summary><see cref="AnyExternalWait"/> with <see cref="WaitSources.ClosedWorld"/> forced on, as <c>AnyExternalWaitInThisWorld</c> does for Seed.</summary>
    private bool AnyExternalWaitInClosedWorld()
    {
        bool saved = WaitSources.ClosedWorld;
        WaitSources.ClosedWorld = true;
        try
        {
            return AnyExternalWait();
        }
        finally
        {
            WaitSources.ClosedWorld = saved;
        }
    }

    // ---------------------------------------------------------------- Dump

    /// <summary>
    /// For Dump: "; nothing outside has used it" when <paramref name="tasklet"/> waits on channels that no party outside
    /// the tasklets has ever used, with ": a likely deadlock" while this scheduler is idle in that state; else empty.
    /// Any thread: the reads tolerate a wait that changes meanwhile (see DescribeWait).
    /// </summary>
    private string DescribeOutsideUse(Tasklet tasklet)
    {
        Waiter? waiter = tasklet._waiter.IsParked ? tasklet._waiter : tasklet.ParkedExternalWait();
        int count = waiter?.RegistrationCount ?? 0;
        if (count == 0)
        {
            return string.Empty;
        }

        bool saved = WaitSources.ClosedWorld;
        WaitSources.ClosedWorld = true; // "used": creation outside a tasklet does not count here
        try
        {
            for (int i = 0; i < count; i++)
            {
                if (waiter!.RegistrationAt(i) is not { } node || !IsChannel(node.Source) || node.Source.IsExternal)
                {
                    return string.Empty;
                }
            }
        }
        finally
        {
            WaitSources.ClosedWorld = saved;
        }

        // Volatile reads of the owner's idle state: a snapshot, like the rest of Dump from another thread.
        bool likely = (Volatile.Read(ref _idleEpoch) & 1) != 0 && _idleLikelyDeadlock;
        string what = count == 1 ? "; nothing outside has used it" : "; nothing outside has used any of its channels";
        return likely ? what + ": a likely deadlock" : what;
    }

    private static bool IsChannel(IWaitSource source)
        => source.GetType() is { IsGenericType: true } type && type.GetGenericTypeDefinition() == typeof(Channel<>);
}
