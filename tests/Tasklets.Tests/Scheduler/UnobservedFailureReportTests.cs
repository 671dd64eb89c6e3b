using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// Issue 15: RunOnce/RunFor reported a failure as unobserved before a tasklet joined it in the next pass, and the
/// joiner observed it too: reported twice. OnUnobservedFailure did the same for every join that came a step later,
/// and for the failures a TaskletGroup, a WhenAll, a WhenAny or a JoinCase observe. The rule (docs/semantics.md): a
/// failure nobody has observed is reported at the end of the pass after the one it happened in, or as soon as the
/// scheduler has nothing ready, whichever comes first; a group that will throw it, or a WhenAll in progress over the
/// tasklet, holds the report until it ends; each failure is reported once.
/// </summary>
[Collection(NonParallel.Name)] // one test asserts a deadlock, which detection declares process-wide
public class UnobservedFailureReportTests
{
    // ---------------------------------------------------------------- host loops

    [Fact]
    public void RunOnce_FailureJoinedInTheNextPass_IsReportedOnce_ByTheJoinOnly()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 1, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        Tasklet failing = s.Go(() => throw new InvalidOperationException("boom"), "failing");
        Exception? joined = null;
        s.Go(async () =>
        {
            await Tasklet.Yield(); // the join comes in the next pass
            joined = await Record.ExceptionAsync(async () => await failing);
        }, "joiner");

        Assert.True(s.RunOnce()); // issue 15: threw the failure here, before the joiner's pass
        Assert.False(s.RunOnce());
        Assert.Equal("boom", joined?.Message);
        Assert.Empty(reported);
    }

    [Fact]
    public void RunOnce_FailureNeverJoined_IsReportedByTheHostLoopExactlyOnce()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 1, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        s.Go(() => throw new InvalidOperationException("boom"), "failing");
        s.Go(async () =>
        {
            for (int i = 0; i < 5; i++)
            {
                await Tasklet.Yield(); // a busy service: the scheduler is never idle
            }
        }, "service");

        var thrown = new List<int>();
        for (int pass = 1; pass <= 6; pass++)
        {
            try
            {
                s.RunOnce();
            }
            catch (AggregateException e)
            {
                Assert.Equal("boom", Assert.Single(e.InnerExceptions).Message);
                thrown.Add(pass);
            }
        }

        Assert.Equal([2], thrown); // at the end of the pass after the one it died in, and never again
        Assert.Equal(["failing"], reported);

        // With nothing else ready, the pass it dies in ends idle: reported by that very RunOnce.
        s.Go(() => throw new InvalidOperationException("alone"), "alone");
        AggregateException alone = Assert.Throws<AggregateException>(() => s.RunOnce());
        Assert.Equal("alone", Assert.Single(alone.InnerExceptions).Message);
        Assert.False(s.RunOnce());
        Assert.Equal(["failing", "alone"], reported);
    }

    [Fact]
    public void RunFor_OneStepAtATime_FailureJoinedInTheNextPass_IsNeverThrown_NeverJoined_IsThrownOnce()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 1, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        Tasklet joinedLater = s.Go(() => throw new InvalidOperationException("joined"), "joined later");
        s.Go(() => throw new InvalidOperationException("never"), "never joined");
        Exception? joined = null;
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                await Tasklet.Yield();
                if (i == 0)
                {
                    joined = await Record.ExceptionAsync(async () => await joinedLater); // in the next pass
                }
            }
        }, "service");

        var thrown = new List<string>();
        bool alive = true;
        for (int call = 0; alive && call < 100; call++)
        {
            try
            {
                alive = s.RunFor(TimeSpan.Zero); // a spent budget: one step per call
            }
            catch (AggregateException e)
            {
                thrown.AddRange(e.InnerExceptions.Select(x => x.Message));
            }
        }

        Assert.False(alive);
        Assert.Equal("joined", joined?.Message);
        Assert.Equal(["never"], thrown); // issue 15: "joined" was thrown by the RunFor of its death step too
        Assert.Equal(["never joined"], reported);
    }

    // ---------------------------------------------------------------- observers that take longer than a pass

    [Fact]
    public void TaskletGroup_ChildFailsWhileTheWaitIsOnASlowSibling_OnlyTheGroupReportsIt()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 2, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        Exception? caught = null;
        s.Go(async () =>
        {
            caught = await Record.ExceptionAsync(async () =>
            {
                await using var group = new TaskletGroup("g");
                group.Go(async () =>
                {
                    try
                    {
                        await Tasklet.Sleep(TimeSpan.FromHours(1));
                    }
                    finally
                    {
                        await Task.Delay(TimeSpan.FromMinutes(5), s.Time); // killed: a slow cleanup, past idle points
                    }
                }, "slow");
                group.Go(() => throw new InvalidOperationException("child failed"), "failing");
            });
        }, "parent");

        s.Run();
        Assert.Equal("child failed", caught?.Message);
        Assert.Empty(reported); // issue 15: reported by OnUnobservedFailure while the group was waiting for "slow"
    }

    [Fact]
    public void TaskletGroup_NeverWaited_ReportsTheChildFailureOnce_WhenItsCreatorEnds()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 2, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        var order = new List<string>();
        s.Go(async () =>
        {
            var group = new TaskletGroup("forgotten"); // no await using: nobody will throw its failures
            group.Go(() => throw new InvalidOperationException("child failed"), "failing");
            for (int i = 0; i < 3; i++)
            {
                await Tasklet.Yield();
            }

            order.Add($"creator ends, reported so far: {reported.Count}");
        }, "creator");

        AggregateException failures = Assert.Throws<AggregateException>(s.Run);
        Assert.Equal("child failed", Assert.Single(failures.InnerExceptions).Message);
        Assert.Equal(["creator ends, reported so far: 0"], order); // held while the creator could still wait
        Assert.Equal(["failing"], reported);
    }

    [Fact]
    public void WhenAll_FailureBehindASlowerTasklet_OnlyWhenAllReportsIt()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 3, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        Exception? caught = null;
        s.Go(async () =>
        {
            Tasklet slow = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromMinutes(5)), "slow");
            Tasklet failing = Tasklet.Go(() => throw new InvalidOperationException("boom"), "failing");
            caught = await Record.ExceptionAsync(async () => await Tasklet.WhenAll(slow, failing));
        }, "main");

        s.Run();
        Assert.Equal("boom", caught?.Message);
        Assert.Empty(reported); // issue 15: reported when "failing" died, while WhenAll was joining "slow"
    }

    [Fact]
    public void WhenAll_EndedByTheCallersKill_HandsTheFailureBack_ReportedOnce()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 3, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        var order = new List<string>();
        Tasklet? waiter = null;
        s.Go(async () =>
        {
            Tasklet slow = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromMinutes(5)), "slow");
            Tasklet failing = Tasklet.Go(() => throw new InvalidOperationException("boom"), "failing");
            waiter = Tasklet.Go(async () => await Tasklet.WhenAll(slow, failing), "waiter");
            await Tasklet.Sleep(TimeSpan.FromMinutes(1));
            order.Add($"before the kill, reported: {reported.Count}");
            waiter.Kill(); // its WhenAll will never look at "failing" now
            await Assert.ThrowsAsync<TaskletExitException>(async () => await waiter);
            await slow;
        }, "main");

        AggregateException failures = Assert.Throws<AggregateException>(s.Run);
        Assert.Equal("boom", Assert.Single(failures.InnerExceptions).Message);
        Assert.Equal(["before the kill, reported: 0"], order);
        Assert.Equal(["failing"], reported);
    }

    // ---------------------------------------------------------------- observers woken by the death

    [Fact]
    public void WhenAny_ThenAwaitTheWinner_IsNotReported_ByRunOnceOrTheCallback()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 4, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        var never = new Channel<int> { Name = "never" };
        Exception? caught = null;
        Tasklet sleeper = s.Go(async () => await never.ReceiveAsync(), "blocked");
        Tasklet failing = s.Go(async () =>
        {
            await Tasklet.Yield();
            throw new InvalidOperationException("boom");
        }, "failing");
        s.Go(async () =>
        {
            Tasklet first = await Tasklet.WhenAny(sleeper, failing);
            caught = await Record.ExceptionAsync(async () => await first);
            sleeper.Kill();
        }, "main");

        int passes = 0;
        while (s.RunOnce())
        {
            passes++; // any throw fails the test: issue 15 threw "boom" from the pass "failing" died in
        }

        Assert.True(passes > 1);
        Assert.Equal("boom", caught?.Message);
        Assert.Empty(reported);
    }

    [Fact]
    public void JoinCaseInASelect_ThenJoin_IsNotReported_ByRunOrTheCallback()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 5, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        Exception? caught = null;
        s.Go(async () =>
        {
            var jobs = new Channel<int> { Name = "jobs" };
            Tasklet worker = Tasklet.Go(() => throw new InvalidOperationException("worker failed"), "worker");
            JoinCase done = worker.JoinCase();
            Assert.Equal(0, await Select.WaitAsync(done, jobs.ReceiveCase()));
            caught = await Record.ExceptionAsync(async () => await done.Tasklet);
        }, "main");

        s.Run();
        Assert.Equal("worker failed", caught?.Message);
        Assert.Empty(reported); // issue 15: reported when the worker died, before the select's tasklet ran
    }

    [Fact]
    public void Deadlock_AfterAGroupObservedTheFailure_CarriesNoUnobservedFailure_AndTheCallbackStaysSilent()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 6, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            try
            {
                await using var group = new TaskletGroup();
                group.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)), "slow");
                group.Go(() => throw new InvalidOperationException("child failed"), "failing");
            }
            catch (InvalidOperationException)
            {
                // observed by the group, handled here
            }

            await never.ReceiveAsync();
        }, "main");

        DeadlockException deadlock = Assert.Throws<DeadlockException>(s.Run);
        Assert.Null(deadlock.InnerException);
        Assert.DoesNotContain("child failed", deadlock.Message, StringComparison.Ordinal);
        Assert.Empty(reported);
    }

    [Fact]
    public void RunMain_MainFails_IsRethrownAsItIs_NotReportedAsUnobserved()
    {
        var reported = new List<string>();
        var options = new SchedulerOptions { Seed = 7, OnUnobservedFailure = (t, _) => reported.Add(t.Name) };
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => Scheduler.Run(() => throw new InvalidOperationException("main failed"), options));
        Assert.Equal("main failed", e.Message);
        Assert.Empty(reported); // Run(main) observes main: it rethrows its failure
    }
}
