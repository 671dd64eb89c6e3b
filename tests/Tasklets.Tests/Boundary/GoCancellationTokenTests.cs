using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Boundary;

/// <summary>Go(body, name, cancellationToken): cancelling the token kills the tasklet (issue 16).</summary>
public class GoCancellationTokenTests
{
    [Fact]
    public void Go_TokenCancelledFromAnotherThread_KillsBlockedTaskletAndItsFinallyRuns()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        var ch = new Channel<int>();
        bool finallyRan = false;
        Exception? inside = null;
        Tasklet t = s.Go(async () =>
        {
            try
            {
                await ch.ReceiveAsync();
            }
            catch (Exception e)
            {
                inside = e;
                throw;
            }
            finally
            {
                finallyRan = true;
            }
        }, "worker", cts.Token);
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Blocked, t.State);
        cts.Cancel(); // the test thread is not the scheduler's: the kill is posted
        s.RunUntilIdle();
        Assert.False(t.IsAlive);
        Assert.IsType<TaskletExitException>(inside);
        Assert.True(finallyRan);
        Assert.IsType<TaskletExitException>(t.Exception);
        Assert.Equal(0, ch.Balance);
    }

    [Fact]
    public void Go_TokenAlreadyCancelled_TaskletDiesWithoutRunning()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        bool ran = false;
        Tasklet<int> t = s.Go(() =>
        {
            ran = true;
            return Task.FromResult(1);
        }, null, new CancellationToken(canceled: true));
        Assert.False(t.IsAlive);
        s.RunUntilIdle();
        Assert.False(ran);
        Assert.IsType<TaskletExitException>(t.Exception);
        Assert.Empty(s.Tasklets);
    }

    [Fact]
    public void Go_TokenCancelledByAnotherTasklet_KillsAtOnceOnTheSchedulerThread()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        var order = new OrderRecorder();
        s.Go(async () =>
        {
            Tasklet victim = Tasklet.Go(async () =>
            {
                try
                {
                    order.Expect(1);
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                finally
                {
                    order.Expect(3);
                }
            }, "victim", cts.Token);
            await Tasklet.Yield(); // victim parks
            order.Expect(2);
            cts.Cancel();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await victim);
            order.Finish(4);
        });
        s.Run();
    }

    [Fact]
    public void Go_TaskletCancelsItsOwnToken_KilledAtItsNextOperationNotInsideCancel()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        Exception? fromCancel = null;
        Exception? atNext = null;
        Tasklet t = s.Go(async () =>
        {
            fromCancel = Record.Exception(cts.Cancel);
            atNext = await Record.ExceptionAsync(async () => await Tasklet.Yield());
        }, "self", cts.Token);
        s.RunUntilIdle();
        Assert.Null(fromCancel);
        Assert.IsType<TaskletExitException>(atNext);
        Assert.False(t.IsAlive);
    }

    [Fact]
    public void Go_TaskletDies_RegistrationOnTheTokenIsRemoved()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        Tasklet ended = s.Go(() => Task.CompletedTask, "ends", cts.Token);
        Tasklet killed = s.Go(() => Task.CompletedTask, "killed before start", cts.Token);
        killed.Kill();
        s.RunUntilIdle();
        Assert.False(ended.IsAlive);
        Assert.NotEqual(default, ended.Cold.KillRegistration);
        Assert.False(ended.Cold.KillRegistration.Unregister()); // false: the death removed it already
        Assert.False(killed.Cold.KillRegistration.Unregister());
    }

    [Fact]
    public void Go_TokenThatCannotBeCancelled_RegistersNothing()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Tasklet t = s.Go(() => Task.CompletedTask, "plain", CancellationToken.None);
        Assert.Equal(default, t.Cold.KillRegistration);
        s.RunUntilIdle();
        Assert.Null(t.Exception);
    }

    [Fact]
    public void TaskletGo_WithToken_SpawnsOnTheCurrentSchedulerAndTheTokenKills()
    {
        using var cts = new CancellationTokenSource();
        // Virtual time: a sleeper the token failed to kill wakes after its hour and the assertion fails, rather than
        // the test waiting forever on an infinite sleep.
        using Scheduler s = SchedulerExtensions.Deterministic();
        s.Go(async () =>
        {
            Tasklet t = Tasklet.Go(() => Tasklet.Sleep(TimeSpan.FromHours(1)).AsTask(), "sleeper", cts.Token);
            Tasklet<int> r = Tasklet.Go(() => Task.FromResult(7), "result", cts.Token);
            Assert.Equal(7, await r);
            cts.Cancel();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await t);
            Assert.Same(s, t.Scheduler);
        });
        s.Run();
    }

    [Fact]
    public void Go_NullBody_Throws()
    {
        using var s = new Scheduler();
        Assert.Throws<ArgumentNullException>(() => s.Go(null!, "x", CancellationToken.None));
        Assert.Throws<ArgumentNullException>(() => s.Go<int>(null!, "x", CancellationToken.None));
    }
}
