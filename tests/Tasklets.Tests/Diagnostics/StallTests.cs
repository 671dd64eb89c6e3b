using Tasklets.Internal;
using Xunit;
using static Tasklets.Tests.Diagnostics.StallTestKit;

namespace Tasklets.Tests.Diagnostics;

/// <summary>
/// Issue 15, DESIGN "Stalls: every hang explains itself": a scheduler inside Run() reports, once per stall, a step that
/// never switches, a likely deadlock on primitives nothing outside the tasklets has used, and (under Seed) tasklets
/// that only yield; never an idle service. StallTimeout is a threshold here, never a duration to assert on: reports
/// are awaited with a hang guard, and "no report" is proven by waiting for the monitor to have observed several
/// timeouts (StallTestKit.WaitForMonitor), a state of the monitor rather than a sleep.
/// </summary>
[Collection(NonParallel.Name)] // a likely deadlock is judged over every scheduler inside Run(), process-wide
public class StallTests
{
    // ---------------------------------------------------------------- reports

    [Fact]
    public void Stalled_StepThatNeverSwitches_IsReportedAsLongStep_AndNothingIsKilled()
    {
        (SchedulerStalledEventArgs stall, Scheduler s, Tasklet spinner, bool finished) = SpinUntilReportedAsLongStep();
        using (s)
        {
            Assert.True(stall.LongStep);
            Assert.Same(s, stall.Scheduler);
            Assert.True(stall.StalledFor >= StallTimeout, $"reported after {stall.StalledFor}, before its timeout");
            Assert.Contains($"one step has run without a switch, in tasklet {spinner.Id} 'spinner'", stall.Dump, StringComparison.Ordinal);
            Assert.Contains($"{spinner.Id} 'spinner' Running", stall.Dump, StringComparison.Ordinal);
            Assert.True(finished, "a stall is a report: the tasklet went on");
        }
    }

    // A tasklet spins without an await until its long step is reported, then is released and ends; returns the report.
    private static (SchedulerStalledEventArgs Stall, Scheduler Scheduler, Tasklet Spinner, bool Finished) SpinUntilReportedAsLongStep()
    {
        var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, LongStepOf("spinner"));
        bool released = false;
        bool finished = false;
        Tasklet spinner = s.Go(async () =>
        {
            var spin = default(SpinWait);
            while (!Volatile.Read(ref released))
            {
                spin.SpinOnce(); // CPU work that never reaches an await: the scheduler's thread is held
            }

            await Tasklet.Yield();
            finished = true;
        }, "spinner");
        Runner run = Start(s.Run);

        SchedulerStalledEventArgs stall = stalls.WaitFor();
        Volatile.Write(ref released, true);
        Assert.Null(run.Join());
        return (stall, s, spinner, finished);
    }

    [Fact]
    public void Stalled_IsWrittenToTheEventSource_AndCountedOnTheMeter()
    {
        long counted = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Scheduler.MeterName && instrument.Name == "tasklets.stalls")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref counted, value));
        listener.Start();
        using var recorder = new TaskletsEventRecorder();
        recorder.Enable();

        (SchedulerStalledEventArgs stall, Scheduler s, _, _) = SpinUntilReportedAsLongStep();
        s.Dispose();

        // The handler ran after the meter and the EventSource were written: both are there by now.
        Assert.True(Interlocked.Read(ref counted) >= 1);
        Assert.Contains(recorder.Events("Stall"), e => e.Payload!.OfType<string>().Any(text => text.Contains("'spinner'", StringComparison.Ordinal)));
        Assert.True(stall.LongStep);
    }

    [Fact]
    public void Stalled_SameStallGoesOn_IsReportedOnce_AndAgainOnlyAfterProgress()
    {
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, LongStepOf("spinner"));
        int phase = 0;
        s.Go(async () =>
        {
            for (int wanted = 1; wanted <= 2; wanted++)
            {
                var spin = default(SpinWait);
                while (Volatile.Read(ref phase) < wanted)
                {
                    spin.SpinOnce();
                }

                await Tasklet.Yield(); // a switch: progress
            }
        }, "spinner");
        Runner run = Start(s.Run);

        stalls.WaitFor(1);
        WaitForMonitor(); // many timeouts more of the same stall
        Assert.Equal(1, stalls.Count);

        Volatile.Write(ref phase, 1); // it switches once, then spins again: a new stall
        SchedulerStalledEventArgs second = stalls.WaitFor(2);
        Assert.True(second.LongStep);
        WaitForMonitor();
        Assert.Equal(2, stalls.Count);

        Volatile.Write(ref phase, 2);
        Assert.Null(run.Join());
    }

    [Fact]
    public void Stalled_ChannelsMadeBeforeRun_NeverUsedOutside_IsReportedAsLikelyDeadlock()
    {
        // Without Seed a channel made outside a tasklet is reachable from outside, so Run() idles rather than throw
        // DeadlockException (issue 15: it hung silently). The stall report names the likely deadlock.
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, NotLongStep);
        var a = new Channel<int> { Name = "a" };
        var b = new Channel<int> { Name = "b" };
        int got = 0;
        Tasklet left = s.Go(async () =>
        {
            int item = await a.ReceiveAsync();
            got += item;
        }, "left");
        Tasklet right = s.Go(async () =>
        {
            int item = await b.ReceiveAsync();
            got += item;
        }, "right");
        Runner run = Start(s.Run);

        SchedulerStalledEventArgs stall = stalls.WaitFor();
        Assert.StartsWith("Stalled for ", stall.Dump, StringComparison.Ordinal);
        Assert.Contains("a likely deadlock", stall.Dump.Split('\n')[0], StringComparison.Ordinal);
        Assert.Matches($@"{left.Id} 'left' Blocked: receive on channel 'a' [^\n]*; nothing outside has used it: a likely deadlock", stall.Dump);
        Assert.Matches($@"{right.Id} 'right' Blocked: receive on channel 'b' [^\n]*; nothing outside has used it: a likely deadlock", stall.Dump);

        // Nothing was killed: the tasklets still take what an outside party now sends.
        Assert.True(a.TrySend(1));
        Assert.True(b.TrySend(2));
        Assert.Null(run.Join());
        Assert.Equal(3, got);
        Assert.Equal(1, stalls.Count);
    }

    [Fact]
    public void Stalled_Seeded_OnlyYieldingTasklets_IsReported_VirtualTimeCannotAdvance()
    {
        // Issue 15: under Seed a tasklet that polls with Yield keeps the virtual clock still, so the sleeper that
        // would set its flag never wakes; the real clock would have worked.
        using var s = new Scheduler(Options(seed: 7));
        var stalls = new StallRecorder(s, NotLongStep);
        bool flag = false;
        bool released = false;
        s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromSeconds(1));
            Volatile.Write(ref flag, true);
        }, "sleeper");
        s.Go(async () =>
        {
            while (!Volatile.Read(ref flag) && !Volatile.Read(ref released))
            {
                await Tasklet.Yield();
            }
        }, "poller");
        Runner run = Start(s.Run);

        SchedulerStalledEventArgs stall = stalls.WaitFor();
        Volatile.Write(ref released, true);
        Assert.Null(run.Join());

        Assert.Contains("only yielding tasklets: virtual time cannot advance", stall.Dump, StringComparison.Ordinal);
        Assert.Contains("'sleeper' Blocked: sleep", stall.Dump, StringComparison.Ordinal);
        Assert.True(Volatile.Read(ref flag), "the sleeper woke once the poller stopped");
    }

    [Fact]
    public void Stalled_LikelyDeadlock_WaitsUntilNoOtherSchedulerInRunCanProgress()
    {
        // A tasklet of another scheduler inside Run() may still wake it: while one sleeps on a timer there, the
        // stuck scheduler is not reported; once that scheduler has left Run(), it is.
        using var stuck = new Scheduler(Options());
        using var other = new Scheduler(Options());
        var stalls = new StallRecorder(stuck, NotLongStep);
        var c = new Channel<int> { Name = "c" };
        stuck.Go(async () => await c.ReceiveAsync(), "receiver");
        Tasklet sleeper = other.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)), "sleeper");
        Runner otherRun = Start(other.Run);
        WaitUntil(() => sleeper.State == TaskletState.Blocked, "the sleeper sleeps");
        Runner stuckRun = Start(stuck.Run);

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);

        sleeper.Kill();
        Assert.Null(otherRun.Join()); // a kill is not a failure
        Assert.IsType<TaskletExitException>(sleeper.Exception);
        SchedulerStalledEventArgs stall = stalls.WaitFor();
        Assert.Contains("a likely deadlock", stall.Dump, StringComparison.Ordinal);

        Assert.True(c.TrySend(1));
        Assert.Null(stuckRun.Join());
    }

    [Fact]
    public void Stalled_HandlerThrows_OtherHandlersStillRun_AndTheMonitorGoesOn()
    {
        using var first = new Scheduler(Options());
        first.Stalled += (_, _) => throw new InvalidOperationException("a broken handler");
        var firstStalls = new StallRecorder(first);
        bool released = false;
        first.Go(() =>
        {
            var spin = default(SpinWait);
            while (!Volatile.Read(ref released))
            {
                spin.SpinOnce();
            }

            return Task.CompletedTask;
        }, "spinner");
        Runner firstRun = Start(first.Run);
        firstStalls.WaitFor(); // the handler after the throwing one ran
        Volatile.Write(ref released, true);
        Assert.Null(firstRun.Join());

        // The monitor survived: a later stall of another scheduler is reported.
        using var second = new Scheduler(Options());
        var secondStalls = new StallRecorder(second, NotLongStep);
        var never = new Channel<int> { Name = "never" };
        second.Go(async () => await never.ReceiveAsync(), "waiter");
        Runner secondRun = Start(second.Run);
        Assert.Contains("a likely deadlock", secondStalls.WaitFor().Dump, StringComparison.Ordinal);
        Assert.True(never.TrySend(0));
        Assert.Null(secondRun.Join());
    }

    // ---------------------------------------------------------------- never a stall

    [Fact]
    public void Stalled_IdleOnChannelAnOsThreadHasUsed_IsNotAStall()
    {
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, NotLongStep);
        var feed = new Channel<int> { Name = "feed" };
        Assert.False(feed.TrySend(0)); // a party that is not a tasklet has used it: it feeds the service
        var quiet = new Channel<int> { Name = "quiet" };
        int got = 0;
        Tasklet reader = s.Go(async () => got = await feed.ReceiveAsync(), "reader");
        Tasklet other = s.Go(async () => await quiet.ReceiveAsync(), "other"); // made before Run, never used outside
        Runner run = Start(s.Run);
        WaitUntil(() => reader.State == TaskletState.Blocked && other.State == TaskletState.Blocked, "both park");

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);
        // Dump says which channel nothing outside has used, and no "likely deadlock": the reader's channel is fed.
        string dump = s.Dump();
        Assert.Matches(@"'reader' Blocked: receive on channel 'feed' \(unbuffered, 0 buffered\)( for [0-9.]+ ms)?(; in [^;\n]*)?\r?\n", dump);
        Assert.Matches(@"'other' Blocked: receive on channel 'quiet' \(unbuffered, 0 buffered\)( for [0-9.]+ ms)?; nothing outside has used it(; in [^;\n]*)?\r?\n", dump);

        feed.Send(42);
        Assert.True(quiet.TrySend(0));
        Assert.Null(run.Join());
        Assert.Equal(42, got);
    }

    [Fact]
    public void Stalled_TaskletSleepingOnALongTimer_IsNotAStall()
    {
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, NotLongStep);
        var c = new Channel<int> { Name = "c" };
        Tasklet receiver = s.Go(async () => await c.ReceiveAsync(), "receiver");
        Tasklet sleeper = s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromHours(1)); // may still wake and send
            await c.SendAsync(1);
        }, "sleeper");
        Runner run = Start(s.Run);
        WaitUntil(() => receiver.State == TaskletState.Blocked && sleeper.State == TaskletState.Blocked, "both park");

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);

        sleeper.Kill();
        Assert.True(c.TrySend(2));
        Assert.Null(run.Join());
    }

    [Fact]
    public void Stalled_ForeignAwaitPending_IsNotAStall()
    {
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, NotLongStep);
        var c = new Channel<int> { Name = "c" };
        var io = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        Tasklet receiver = s.Go(async () => await c.ReceiveAsync(), "receiver");
        s.Go(async () => await c.SendAsync(await io.Task), "reader of io"); // I/O may still complete
        Runner run = Start(s.Run);
        WaitUntil(() => receiver.State == TaskletState.Blocked && s.Dump().Contains("a foreign awaitable", StringComparison.Ordinal), "both park");

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);

        io.SetResult(5);
        Assert.Null(run.Join());
    }

    [Fact]
    public void Stalled_KeepAliveHeld_IsNotAStall()
    {
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s, NotLongStep);
        var c = new Channel<int> { Name = "c" };
        IDisposable hold = s.KeepAlive(); // an outside party will still use c
        Tasklet receiver = s.Go(async () => await c.ReceiveAsync(), "receiver");
        Runner run = Start(s.Run);
        WaitUntil(() => receiver.State == TaskletState.Blocked, "the receiver parks");

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);

        Assert.True(c.TrySend(1));
        hold.Dispose();
        Assert.Null(run.Join());
    }

    [Fact]
    public void Stalled_StallTimeoutInfinite_NeverReports()
    {
        using var s = new Scheduler(new SchedulerOptions { StallTimeout = System.Threading.Timeout.InfiniteTimeSpan });
        var stalls = new StallRecorder(s);
        bool released = false;
        s.Go(() =>
        {
            var spin = default(SpinWait);
            while (!Volatile.Read(ref released))
            {
                spin.SpinOnce();
            }

            return Task.CompletedTask;
        }, "spinner");
        using Witness witness = new(); // keeps the monitor checking: it parks while no scheduler has reports on
        Runner run = Start(s.Run);

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);

        Volatile.Write(ref released, true);
        Assert.Null(run.Join());
    }

    [Fact]
    public void Stalled_RunForAndRunOnce_DoNotReport()
    {
        // Between RunFor/RunOnce calls the host owns the thread: it is not stalled by a scheduler that waits.
        using var s = new Scheduler(Options());
        var stalls = new StallRecorder(s);
        bool released = false;
        s.Go(() =>
        {
            var spin = default(SpinWait);
            while (!Volatile.Read(ref released))
            {
                spin.SpinOnce();
            }

            return Task.CompletedTask;
        }, "spinner");
        using Witness witness = new();
        Runner run = Start(() => s.RunFor(TimeSpan.FromMinutes(1)));

        WaitForMonitor();
        Assert.Equal(0, stalls.Count);

        Volatile.Write(ref released, true);
        Assert.Null(run.Join());
        s.RunOnce();
    }

    // ---------------------------------------------------------------- options

    [Fact]
    public void StallTimeout_DefaultsToTenSeconds_AcceptsInfinite_RejectsZeroAndNegative()
    {
        Assert.Equal(TimeSpan.FromSeconds(10), new SchedulerOptions().StallTimeout);
        Assert.Equal(System.Threading.Timeout.InfiniteTimeSpan, new SchedulerOptions { StallTimeout = System.Threading.Timeout.InfiniteTimeSpan }.StallTimeout);
        foreach (TimeSpan bad in new[] { TimeSpan.Zero, TimeSpan.FromSeconds(-1) })
        {
            var e = Assert.Throws<ArgumentOutOfRangeException>(() => new SchedulerOptions { StallTimeout = bad });
            Assert.Equal(nameof(SchedulerOptions.StallTimeout), e.ParamName);
            Assert.Contains("InfiniteTimeSpan", e.Message, StringComparison.Ordinal);
        }
    }

    /// <summary>
    /// A scheduler inside Run() with reports on that is an idle service (a foreign await), so that the monitor keeps
    /// checking while the scheduler under test has reports off or is not inside Run(). It never stalls.
    /// </summary>
    private sealed class Witness : IDisposable
    {
        private readonly Scheduler _scheduler = new(Options());
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Runner _run;

        public Witness()
        {
            _scheduler.Go(async () => await _done.Task, "witness");
            _run = Start(_scheduler.Run);
            long from = StallMonitor.ObservedTicks;
            WaitUntil(() => StallMonitor.ObservedTicks > from, "the monitor runs");
        }

        public void Dispose()
        {
            _done.SetResult();
            Assert.Null(_run.Join());
            _scheduler.Dispose();
        }
    }
}
