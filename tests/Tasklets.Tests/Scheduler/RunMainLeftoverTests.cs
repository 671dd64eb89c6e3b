using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// Issue 15: Scheduler.Run(main) hung when a leftover tasklet awaited a foreign task that never completes, although it
/// "returns when main ends, remaining tasklets are killed". A kill cannot reach into somebody else's awaitable: such
/// leftovers are abandoned once their token's cancellation has run, and a leftover that honours its token still
/// runs its finally.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class RunMainLeftoverTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    [Fact]
    public void RunMain_LeftoverAwaitsAForeignTaskThatNeverCompletes_ReturnsAnyway()
    {
        var never = new TaskCompletionSource();
        Tasklet? leftover = null;
        int result = 0;
        var runner = new Thread(() => result = Scheduler.Run(async () =>
        {
            leftover = Tasklet.Go(async () => await never.Task, "stuck on a foreign task");
            await Tasklet.Yield(); // the leftover is parked on its foreign await
            return 42;
        }));
        runner.Start();
        Assert.True(runner.Join(s_guard), "hang guard: Run(main) waited for a leftover nothing can wake");
        Assert.Equal(42, result);
        Assert.True(leftover!.IsAlive); // abandoned, not dead: it can never run again on that scheduler
    }

    [Fact]
    public void RunMain_LeftoverAwaitsWithItsToken_IsCancelledByTheKill_AndRunsItsFinally()
    {
        bool cleanedUp = false;
        int result = Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(async () =>
            {
                try
                {
                    await Task.Delay(Timeout.InfiniteTimeSpan, Tasklet.Current!.CancellationToken); // cancelled by the kill
                }
                finally
                {
                    cleanedUp = true;
                }
            }, "cooperative");
            await Tasklet.Yield();
            return 7;
        });
        Assert.Equal(7, result);
        Assert.True(cleanedUp, "the leftover that honours its token was abandoned before its finally ran");
    }
}
