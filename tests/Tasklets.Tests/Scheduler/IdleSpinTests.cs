using System.Diagnostics;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// Issue 17: the idle scheduler's adaptive spin (Scheduler.Idle.cs, docs/performance.md "Cross-thread wake-ups"):
/// when it spins and when never, the budget's rule, the timer bound, and that a scheduler spinning or sleeping is
/// still stopped from another thread and still reports a deadlock. Outcomes only, never durations: a test that waits
/// for the owner to sleep waits for a state (<see cref="Scheduler.IsIdleSleeping"/>) under a hang guard.
/// </summary>
public class IdleSpinTests
{
    private static readonly bool s_multiCore = Environment.ProcessorCount > 1;

    // ------------------------------------------------------------------ the rule

    [Fact]
    public void IdleSpinBudgetAfterSpin_Won_KeepsAtLeastTwiceTheGapWithinTheBounds()
    {
        (long min, long initial, long max) = Scheduler.IdleSpinBounds;
        Assert.Equal(initial, Scheduler.IdleSpinBudgetAfterSpin(initial, won: true, elapsed: initial / 4)); // never shrinks on a win
        Assert.Equal(2 * initial, Scheduler.IdleSpinBudgetAfterSpin(initial, won: true, elapsed: initial)); // 2 x 20 µs
        Assert.Equal(max, Scheduler.IdleSpinBudgetAfterSpin(initial, won: true, elapsed: 2 * initial)); // capped at 50 µs
        Assert.Equal(2 * (min + 1), Scheduler.IdleSpinBudgetAfterSpin(min, won: true, elapsed: min + 1));
        Assert.Equal(max, Scheduler.IdleSpinBudgetAfterSpin(max, won: true, elapsed: 10 * max));
    }

    [Fact]
    public void IdleSpinBudgetAfterSpin_Lost_HalvesDownToTheFloorInFiveLossesFromTheCap()
    {
        (long min, _, long max) = Scheduler.IdleSpinBounds;
        long budget = max;
        int losses = 0;
        while (budget > min)
        {
            budget = Scheduler.IdleSpinBudgetAfterSpin(budget, won: false, elapsed: budget);
            losses++;
        }

        Assert.Equal(min, budget);
        Assert.Equal(5, losses);
        Assert.Equal(min, Scheduler.IdleSpinBudgetAfterSpin(min, won: false, elapsed: min)); // never below the floor
    }

    [Fact]
    public void IdleSpinBudgetAfterWake_SleepEndedWithinTheCap_GrowsToTwiceTheGap_ALongerOneLeavesIt()
    {
        (long min, _, long max) = Scheduler.IdleSpinBounds;
        long gap = 3 * min;
        Assert.Equal(s_multiCore ? 2 * gap : min, Scheduler.IdleSpinBudgetAfterWake(min, gap));
        Assert.Equal(min, Scheduler.IdleSpinBudgetAfterWake(min, max + 1));
    }

    [Fact]
    public void IdleSpinLimit_TimerDueWithinTheBudget_TheSpinEndsWhenItIsDue()
    {
        (_, _, long max) = Scheduler.IdleSpinBounds;
        TimeSpan soon = TimeSpan.FromTicks(Math.Max(1, Stopwatch.GetElapsedTime(0, max).Ticks / 4));
        long soonTicks = (long)(soon.TotalSeconds * Stopwatch.Frequency);
        Assert.True(Scheduler.IdleSpinLimit(max, soon) <= soonTicks);
        Assert.Equal(max, Scheduler.IdleSpinLimit(max, TimeSpan.FromHours(1)));
        Assert.Equal(max, Scheduler.IdleSpinLimit(max, Timeout.InfiniteTimeSpan));
    }

    // ------------------------------------------------------------------ when it spins, and when never

    [Fact]
    public void SystemClock_IdleOnAForeignWait_SpinsBeforeItSleeps_OnMoreThanOneCore()
    {
        var s = new Scheduler();
        (long won, long lost) = IdleOnAForeignWait(s);
        // The spin finds nothing (the completion comes only once the owner sleeps): one loss at least.
        Assert.Equal(0, won);
        Assert.True(s_multiCore ? lost >= 1 : lost == 0, $"lost {lost}");
    }

    [Fact]
    public void Deterministic_IdleOnAForeignWait_NeverSpins()
    {
        Scheduler s = SchedulerExtensions.Deterministic();
        Assert.Equal((0, 0), IdleOnAForeignWait(s));
    }

    [Fact]
    public void CustomClock_IdleOnAForeignWait_NeverSpins()
    {
        var s = new Scheduler(new SchedulerOptions { Time = new OtherClock() });
        Assert.Equal((0, 0), IdleOnAForeignWait(s));
    }

    [Fact]
    public void SystemClock_OnlyATimerPending_NeverSpins()
    {
        // Nothing on another thread can wake it: it sleeps until the timer, without spinning.
        using var s = new Scheduler();
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                await Tasklet.Sleep(TimeSpan.FromMilliseconds(2));
            }
        });
        s.Run();
        Assert.Equal((0L, 0L), (s.IdleSpinsWon, s.IdleSpinsLost));
    }

    [Fact]
    public void KeepAlive_TimerWaitsNobodyEnds_LosingSpinsShrinkTheBudgetToTheFloor()
    {
        // A hold says another thread may post, so every idle wait spins first; nobody does, so every spin loses.
        using var s = new Scheduler();
        IDisposable hold = s.KeepAlive();
        s.Go(async () =>
        {
            for (int i = 0; i < 8; i++)
            {
                await Tasklet.Sleep(TimeSpan.FromMilliseconds(2)); // each sleep: at least one idle wait over 1 ms
            }

            hold.Dispose();
        });
        s.Run();
        (long min, _, _) = Scheduler.IdleSpinBounds;
        if (s_multiCore)
        {
            Assert.True(s.IdleSpinsLost >= 5, $"lost {s.IdleSpinsLost}");
            Assert.Equal(min, s.IdleSpinBudget);
        }
        else
        {
            Assert.Equal((0L, 0L, 0L), (s.IdleSpinsWon, s.IdleSpinsLost, s.IdleSpinBudget));
        }
    }

    [Fact]
    public void Signal_GivenWhileTheOwnerRuns_IsConsumedByTheNextIdleWait_WhichThenSleeps()
    {
        // A Signal given while the owner does not sleep (here: a keep-alive hold released by a tasklet) is read by
        // the next idle wait, which returns to the loop; it must be consumed there, or every later idle wait would
        // return at once, a busy loop that never sleeps.
        var s = new Scheduler(); // not `using` where Run is on another thread: see IdleOnAForeignWait
        IDisposable first = s.KeepAlive();
        IDisposable second = s.KeepAlive();
        var foreign = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        s.Go(async () =>
        {
            first.Dispose(); // Signal(), on the owner thread
            await foreign.Task;
        });
        var running = RunningScheduler.Start(s);
        RunningScheduler.WaitUntil(() => s.IsIdleSleeping, "the idle scheduler never slept (a signal left set?)");
        foreign.SetResult();
        second.Dispose();
        Assert.Null(running.Join());
        s.Dispose();
    }

    // ------------------------------------------------------------------ stopped from another thread, deadlocks

    [Fact]
    public void KillAll_FromAnotherThreadAtAnyPointOfTheIdleWait_StopsTheScheduler()
    {
        // A receive on a channel made outside any tasklet: the idle owner spins, then sleeps. The KillAll lands at a
        // different point each round: before it idles, while it spins, while it sleeps.
        for (int round = 0; round < 100; round++)
        {
            var s = new Scheduler();
            var channel = new Channel<int>();
            Tasklet receiver = s.Go(async () => await channel.ReceiveAsync());
            var running = RunningScheduler.Start(s);
            Jitter(round);
            if (round % 10 == 9)
            {
                RunningScheduler.WaitUntil(() => s.IsIdleSleeping, "the scheduler never slept");
            }

            s.KillAll();
            Assert.Null(running.Join());
            Assert.False(receiver.IsAlive);
            s.Dispose();
        }
    }

    [Fact]
    public void Dispose_FromAnotherThreadAtAnyPointOfTheIdleWait_StopsTheScheduler()
    {
        // A keep-alive hold and a blocked receive: nothing but the dispose ends this Run.
        for (int round = 0; round < 100; round++)
        {
            var s = new Scheduler();
            IDisposable hold = s.KeepAlive();
            var channel = new Channel<int>();
            Tasklet receiver = s.Go(async () => await channel.ReceiveAsync());
            var running = RunningScheduler.Start(s);
            // Inside Run first: a dispose before it would make Run throw ObjectDisposedException (documented).
            RunningScheduler.WaitUntil(() => Scheduler.Running.Contains(s), "Run never began");
            Jitter(round);
            if (round % 10 == 9)
            {
                RunningScheduler.WaitUntil(() => s.IsIdleSleeping, "the scheduler never slept");
            }

            s.Dispose();
            Assert.Null(running.Join());
            Assert.False(receiver.IsAlive);
            hold.Dispose();
        }
    }

    [Fact]
    public void TwoSchedulersOnTwoThreads_OneGroup_TrueDeadlock_BothReportIt()
    {
        // Stuck members of a group of two spin before they sleep (a member may still post); the spin comes after
        // they count as stuck, so the verdict is taken as before, and it ends the spin.
        for (int round = 0; round < 20; round++)
        {
            var a = new Scheduler();
            var b = new Scheduler();
            a.Go(async () =>
            {
                var never = new Channel<int>(); // made inside a tasklet: only tasklets can reach it
                b.Go(async () => await never.ReceiveAsync(), "b's receiver"); // one group from here on
                await never.ReceiveAsync();
            }, "a's receiver");
            var ra = RunningScheduler.Start(a);
            RunningScheduler.WaitUntil(() => b.RunnableCount > 0, "a's tasklet never spawned onto b"); // b's Run has work
            var rb = RunningScheduler.Start(b);
            Assert.IsType<DeadlockException>(ra.Join());
            Assert.IsType<DeadlockException>(rb.Join());
            a.Dispose();
            b.Dispose();
        }
    }

    // ------------------------------------------------------------------ helpers

    /// <summary>
    /// Runs <paramref name="s"/> on a thread of its own with one tasklet awaiting a task that the test completes only
    /// once the owner sleeps; returns the spins it made, and disposes it. The tests that run a scheduler on another
    /// thread dispose it only once Run has returned: after a failed hang guard, a Dispose would wait for the hung
    /// owner forever, and the run would hang instead of failing.
    /// </summary>
    private static (long Won, long Lost) IdleOnAForeignWait(Scheduler s)
    {
        var foreign = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        s.Go(async () => await foreign.Task);
        var running = RunningScheduler.Start(s);
        RunningScheduler.WaitUntil(() => s.IsIdleSleeping, "the idle scheduler never slept");
        foreign.SetResult();
        Assert.Null(running.Join());
        s.Dispose();
        return (s.IdleSpinsWon, s.IdleSpinsLost);
    }

    // A different moment for each round (pacing, not a synchronisation): from at once to some tens of microseconds.
    private static void Jitter(int round) => Thread.SpinWait(round * 7919 % 4_000);

    /// <summary>The system's clock under another name: a custom TimeProvider, which the spin must leave alone.</summary>
    private sealed class OtherClock : TimeProvider
    {
    }
}
