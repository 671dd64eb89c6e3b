using Xunit;

namespace Tasklets.Tests.Regression;

/// <summary>
/// Issue 15: true deadlocks went unreported until a stale timer was due. The timer of a select satisfied at once, of
/// a timeout scope left early, or of a sleep ended by a kill stayed in the heap, and the idle loop slept until it was
/// due (10 minutes, an hour) instead of declaring the deadlock. Each Run goes on a thread of its own with a hang guard
/// far below those durations. The first three shapes were already covered by the per-step drop of dead timers at the
/// top of the heap (they fail when it is disabled); a scope that died with its tasklet undisposed looked live, and
/// hung the real clock for an hour and jumped the virtual one by it, before the idle loop asked for live timers only.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class StaleTimerDeadlockTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    public static TheoryData<int?> Clocks => new() { null, 7 }; // the real clock, and virtual time under a Seed

    [Theory]
    [MemberData(nameof(Clocks))]
    public void Run_SelectWithTenMinuteTimeoutSatisfiedAtOnce_ThenADeadlock_IsReported(int? seed)
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = seed });
        int fired = -2;
        s.Go(async () =>
        {
            var ready = new Channel<int> { Name = "ready" };
            var never = new Channel<int> { Name = "never" };
            _ = Tasklet.Go(() => ready.SendAsync(1).AsTask(), "sender"); // runs right after the select parks
            fired = await Select.WaitAsync(TimeSpan.FromMinutes(10), ready.ReceiveCase());
            await never.ReceiveAsync(); // the select's timer is dead: this is a deadlock (issue 15: used to wait 10 min)
        }, "selector");

        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunGuarded(s.Run));
        Assert.Equal(0, fired);
        Assert.Contains("'selector': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clocks))]
    public void Run_OneHourTimeoutScopeLeftEarly_ThenADeadlock_IsReported(int? seed)
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = seed });
        s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            using (Tasklet.Timeout(TimeSpan.FromHours(1)))
            {
                await Tasklet.Yield();
            }

            await never.ReceiveAsync(); // the scope's timer is dead (issue 15: used to wait an hour)
        }, "worker");

        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunGuarded(s.Run));
        Assert.Contains("'worker': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clocks))]
    public void Run_OneHourSleeperKilled_ThenADeadlock_IsReported(int? seed)
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = seed });
        s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            Tasklet sleeper = Tasklet.Go(() => Tasklet.Sleep(TimeSpan.FromHours(1)).AsTask(), "sleeper");
            await Tasklet.Yield(); // the sleeper parks with its timer
            sleeper.Kill();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await sleeper);
            await never.ReceiveAsync(); // the sleep's timer is dead (issue 15: used to wait an hour)
        }, "main");

        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunGuarded(s.Run));
        Assert.Contains("'main': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Clocks))]
    public void Run_OneHourTimeoutScopeOfATaskletThatEnded_ThenADeadlock_IsReportedAtOnce(int? seed)
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = seed });
        DateTimeOffset start = s.Time.GetUtcNow();
        s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            Tasklet leaker = Tasklet.Go(() =>
            {
                _ = Tasklet.Timeout(TimeSpan.FromHours(1)); // never disposed: it dies with its tasklet
                return Task.CompletedTask;
            }, "leaker");
            await leaker;
            await never.ReceiveAsync(); // issue 15: the scope's timer, which can expire nothing, kept this waiting an hour
        }, "main");

        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunGuarded(s.Run));
        Assert.Contains("'main': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
        // Under a Seed the virtual clock jumped the hour to the dead timer before the deadlock was declared.
        Assert.True(s.Time.GetUtcNow() - start < TimeSpan.FromMinutes(1), $"the clock moved {s.Time.GetUtcNow() - start}");
    }

    [Fact]
    public void Seeded_LiveSleepAheadOfADeadScopeTimer_DeadlockDeclaredWhenTheSleepEnds_NotAtTheDeadTimer()
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = 3 });
        DateTimeOffset start = s.Time.GetUtcNow();
        TimeSpan? deadlockedAt = null;
        s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            await Tasklet.Go(() =>
            {
                _ = Tasklet.Timeout(TimeSpan.FromHours(1)); // dead with its tasklet, below the live sleep in the heap
                return Task.CompletedTask;
            }, "leaker");
            await Tasklet.Sleep(TimeSpan.FromMilliseconds(50));
            try
            {
                await never.ReceiveAsync();
            }
            finally
            {
                deadlockedAt = s.Time.GetUtcNow() - start; // KillOnDeadlock runs it; issue 15: at 1 h, after a jump to the dead timer
            }
        }, "worker");

        Assert.IsType<DeadlockException>(RunGuarded(s.Run));
        Assert.Equal(TimeSpan.FromMilliseconds(50), deadlockedAt);
    }

    // Runs `run` on a thread of its own and returns what it threw (null if nothing); fails if it does not return.
    private static Exception? RunGuarded(Action run)
    {
        Exception? failure = null;
        var runner = new Thread(() => failure = Record.Exception(run)) { IsBackground = true };
        runner.Start();
        Assert.True(runner.Join(s_guard), "hang guard: Run() did not return (a dead timer kept the deadlock from being declared)");
        return failure;
    }
}
