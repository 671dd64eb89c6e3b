using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Kill;

public class KillTests
{
    [Fact]
    public void Kill_Blocked_RaisesExitAtOnceBeforeOtherReadyTasklets()
    {
        using var s = new Scheduler();
        var order = new OrderRecorder();
        Tasklet? victim = null;
        s.Go(async () =>
        {
            var c = new Channel<int>();
            victim = Tasklet.Go(async () =>
            {
                order.Expect(1);
                try
                {
                    await c.ReceiveAsync();
                }
                catch (TaskletExitException)
                {
                    order.Expect(3);
                    throw;
                }
            });
            await Tasklet.Yield(); // victim blocks
            Tasklet.Go(() => { order.Expect(4); return Task.CompletedTask; });
            order.Expect(2);
            victim.Kill();
            Assert.Equal(0, c.Balance);
            await Tasklet.Yield();
            order.Finish(5);
        });
        s.Run();
        Assert.IsType<TaskletExitException>(victim!.Exception);
    }

    [Fact]
    public void Kill_Runnable_RaisedAtNextOperationAndKeepsHandedValue()
    {
        using var s = new Scheduler();
        int received = -1;
        Exception? atNext = null;
        s.Go(async () =>
        {
            var c = new Channel<int>();
            Tasklet receiver = Tasklet.Go(async () =>
            {
                received = await c.ReceiveAsync();
                atNext = await Record.ExceptionAsync(async () => await Tasklet.Yield());
            });
            await Tasklet.Yield();         // receiver parks
            await c.SendAsync(5);          // handoff: receiver woken with 5 (runnable)
            receiver.Kill();               // too late for that wait: raised at its next operation
            await Tasklet.Yield();
        });
        s.Run();
        Assert.Equal(5, received);
        Assert.IsType<TaskletExitException>(atNext);
    }

    [Fact]
    public void Kill_NeverStarted_DiesWithoutRunning()
    {
        using var s = new Scheduler();
        bool ran = false;
        Tasklet t = s.Go(() => { ran = true; return Task.CompletedTask; });
        t.Kill();
        Assert.False(t.IsAlive);
        s.Run();
        Assert.False(ran);
        Assert.IsType<TaskletExitException>(t.Exception);
    }

    [Fact]
    public void Kill_Self_ThrowsNow()
    {
        using var s = new Scheduler();
        bool after = false;
        Tasklet t = s.Go(() =>
        {
            Tasklet.Current!.Kill();
            after = true;
            return Task.CompletedTask;
        });
        s.Run();
        Assert.False(after);
        Assert.IsType<TaskletExitException>(t.Exception);
    }

    [Fact]
    public void Kill_CaughtExit_IsRaisedAgainAtEveryBlockingPoint()
    {
        using var s = new Scheduler();
        int caught = 0;
        bool finallyRan = false;
        s.Go(async () =>
        {
            Tasklet stubborn = Tasklet.Go(async () =>
            {
                try
                {
                    for (int i = 0; i < 3; i++)
                    {
                        try
                        {
                            await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                        }
                        catch (Exception)
                        {
                            caught++;
                        }
                    }

                    await Tasklet.Yield(); // still killed
                }
                finally
                {
                    finallyRan = true;
                }
            });
            await Tasklet.Yield();
            stubborn.Kill();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await stubborn);
        });
        s.Run();
        Assert.Equal(3, caught);
        Assert.True(finallyRan);
    }

    [Fact]
    public void Kill_FromAnotherThread_AppliedByScheduler()
    {
        var started = new Channel<int>(1); // outside: the OS thread uses it
        using var s = new Scheduler();
        bool finallyRan = false;
        Tasklet t = s.Go(async () =>
        {
            try
            {
                started.TrySend(1);
                await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
            }
            finally
            {
                finallyRan = true;
            }
        });
        IDisposable hold = s.KeepAlive();
        var killer = new Thread(() => { started.Receive(); t.Kill(); hold.Dispose(); }) { IsBackground = true };
        killer.Start();
        s.Run(); // not a failure: kills are cancellations
        Assert.True(killer.Join(TimeSpan.FromSeconds(30)));
        Assert.True(finallyRan);
        Assert.IsType<TaskletExitException>(t.Exception);
    }

    [Fact]
    public void KillAndJoinAsync_ReturnsWhenDead()
    {
        using var s = new Scheduler();
        var order = new OrderRecorder();
        s.Go(async () =>
        {
            Tasklet worker = Tasklet.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                finally
                {
                    order.Expect(2);
                    await Record.ExceptionAsync(async () => await Tasklet.Yield()); // sticky: throws again
                }
            });
            await Tasklet.Yield();
            order.Expect(1);
            await worker.KillAndJoinAsync();
            order.Expect(3);
            Assert.False(worker.IsAlive);
        });
        s.Run();
    }

    [Fact]
    public void Throw_RaisesGivenExceptionOnceNotSticky()
    {
        using var s = new Scheduler();
        var log = new List<string>();
        s.Go(async () =>
        {
            Tasklet t = Tasklet.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                catch (FormatException e)
                {
                    log.Add(e.Message);
                }

                await Tasklet.Yield(); // not sticky: this works
                log.Add("continued");
            });
            await Tasklet.Yield();
            t.Throw(new FormatException("thrown"));
            await t;
            Assert.Throws<InvalidOperationException>(() => t.Throw(new FormatException()));
        });
        s.Run();
        Assert.Equal(["thrown", "continued"], log);
    }

    [Fact]
    public void Kill_BlockedInSelect_WithdrawsAllCases()
    {
        using var s = new Scheduler();
        s.Go(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>();
            Tasklet t = Tasklet.Go(async () => await Select.WaitAsync(a.ReceiveCase(), b.ReceiveCase()));
            await Tasklet.Yield();
            Assert.Equal(-1, a.Balance);
            Assert.Equal(-1, b.Balance);
            t.Kill();
            Assert.Equal(0, a.Balance);
            Assert.Equal(0, b.Balance);
            await Tasklet.Yield();
            Assert.False(a.TrySend(1)); // nobody may receive it
        });
        s.Run();
    }

    [Fact]
    public void KillPreviousUpdate_GameLoopPattern()
    {
        // Each frame spawns an update; one still running from the previous frame is killed first.
        using var s = new Scheduler(new SchedulerOptions { Seed = 1 });
        int completed = 0, killed = 0;
        Tasklet? previous = null;
        for (int frame = 0; frame < 10; frame++)
        {
            previous?.Kill();
            int work = frame % 3 == 0 ? 1 : 5; // some updates take longer than a frame
            previous = s.Go(async () =>
            {
                try
                {
                    for (int i = 0; i < work; i++)
                    {
                        await Tasklet.Yield();
                    }

                    completed++;
                }
                catch (TaskletExitException)
                {
                    killed++;
                    throw;
                }
            });
            s.RunOnce();
            s.RunOnce();
        }

        s.RunUntilIdle();
        Assert.Equal(10, completed + killed);
        Assert.True(killed > 0);
        Assert.True(completed > 0);
    }
}
