using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// Issue 15: an unjoined failing tasklet surfaced only when Run() returned, so a long-running service never heard of
/// it. SchedulerOptions.OnUnobservedFailure reports it when it happens.
/// </summary>
public class UnobservedFailureTests
{
    [Fact]
    public void OnUnobservedFailure_CalledAtTheEndOfThePassAfterTheDeath_WhileTheServiceRunsOn()
    {
        var order = new List<string>();
        using var s = new Scheduler(new SchedulerOptions
        {
            Seed = 1,
            OnUnobservedFailure = (t, e) => order.Add($"reported {t.Name}: {e.Message}"),
        });
        s.Go(() => throw new InvalidOperationException("boom"), "worker");
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                order.Add($"service {i}");
                await Tasklet.Yield();
            }
        }, "service");
        AggregateException failures = Assert.Throws<AggregateException>(s.Run); // Run still reports it
        Assert.Equal("boom", Assert.Single(failures.InnerExceptions).Message);
        // The worker dies in pass 1; nobody joined it by the end of pass 2 (the rule in docs/semantics.md: a join in
        // the next pass would have observed it, and it would not be reported at all).
        Assert.Equal(["service 0", "service 1", "reported worker: boom", "service 2"], order);
    }

    [Fact]
    public void OnUnobservedFailure_NotCalled_ForAJoinedFailure_OrAKill()
    {
        var reported = new List<string>();
        using var s = new Scheduler(new SchedulerOptions { Seed = 1, OnUnobservedFailure = (t, _) => reported.Add(t.Name) });
        s.Go(async () =>
        {
            Tasklet failing = Tasklet.Go(() => throw new InvalidOperationException("joined"), "joined");
            Tasklet sleeper = Tasklet.Go(() => Tasklet.Sleep(TimeSpan.FromHours(1)).AsTask(), "killed");
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await failing);
            sleeper.Kill();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await sleeper);
        });
        s.Run();
        Assert.Empty(reported);
    }

    [Fact]
    public void OnUnobservedFailure_ThatThrows_IsReportedByRun()
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = 1, OnUnobservedFailure = (_, _) => throw new FormatException("callback") });
        s.Go(() => throw new InvalidOperationException("boom"), "worker");
        AggregateException failures = Assert.Throws<AggregateException>(s.Run);
        Assert.Contains(failures.InnerExceptions, e => e is InvalidOperationException { Message: "boom" });
        Assert.Contains(failures.InnerExceptions, e => e.InnerException is FormatException);
    }
}
