using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Kill;

/// <summary>Tasklet.CancellationToken: cancelled by a kill, so that foreign awaits can be made killable.</summary>
public class TaskletCancellationTokenTests
{
    [Fact]
    public void CancellationToken_KillDuringForeignAwait_WakesItAndTheTaskletEndsKilled()
    {
        Scheduler.Run(async () =>
        {
            Tasklet t = Tasklet.Go(async () => await Task.Delay(Timeout.Infinite, Tasklet.Current!.CancellationToken));
            await Tasklet.Yield(); // t is in its foreign await
            Assert.False(t.CancellationToken.IsCancellationRequested);
            Assert.Equal(TaskletState.Blocked, t.State);
            t.Kill();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await t); // killed, not failed
            Assert.True(t.CancellationToken.IsCancellationRequested);
            Assert.IsType<TaskletExitException>(t.Exception);
            Assert.IsType<TaskCanceledException>(t.Exception!.InnerException);
        });
    }

    [Fact]
    public void CancellationToken_AskedForAfterTheKill_IsCancelledAlready()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Tasklet blocked = s.Go(async () => await ch.ReceiveAsync());
        Tasklet neverStarted = s.Go(() => Task.CompletedTask);
        neverStarted.Kill(); // before the first step: it dies without running
        s.RunUntilIdle();
        blocked.Kill();
        s.RunUntilIdle();
        Assert.True(neverStarted.CancellationToken.IsCancellationRequested);
        Assert.True(blocked.CancellationToken.IsCancellationRequested);
        Assert.False(blocked.IsAlive);
    }

    [Fact]
    public void CancellationToken_TimeoutsAndANormalEnd_DoNotCancelIt()
    {
        CancellationToken token = default;
        Scheduler.Run(
            async () =>
            {
                token = Tasklet.Current!.CancellationToken;
                var ch = new Channel<int>();
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await ch.ReceiveAsync());
                }

                Assert.False(token.IsCancellationRequested); // a scope ends; the tasklet's token is for kills
            },
            new SchedulerOptions { Seed = 1 });
        Assert.True(token.CanBeCanceled);
        Assert.False(token.IsCancellationRequested);
    }

    [Fact]
    public void CancellationToken_SameTokenEveryTime_FromAnyThread()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Tasklet t = s.Go(async () => await ch.ReceiveAsync());
        CancellationToken first = t.CancellationToken;
        CancellationToken fromAnotherThread = default;
        var thread = new Thread(() => fromAnotherThread = t.CancellationToken);
        thread.Start();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "hang guard");
        Assert.Equal(first, fromAnotherThread);
        s.RunUntilIdle();
        t.Kill();
        s.RunUntilIdle();
        Assert.True(first.IsCancellationRequested);
    }
}
