using Xunit;

namespace Tasklets.Tests.Deadlock;

// Deadlock detection is process-wide state (groups of schedulers), so these tests run alone.
[Collection(NonParallel.Name)]
public class DeadlockTests
{
    [Fact]
    public void Run_ReceiveNobodySendsTo_ThrowsNamingTaskletAndChannel()
    {
        using var s = new Scheduler();
        bool finallyRan = false;
        Tasklet main = s.Go(async () =>
        {
            var results = new Channel<int> { Name = "results" };
            try
            {
                await results.ReceiveAsync();
            }
            finally
            {
                finallyRan = true;
            }
        }, "main");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"tasklet {main.Id} 'main': receive on channel 'results' (unbuffered, 0 buffered)", ex.Message);
        Assert.Equal([main], ex.Blocked);
        Assert.True(finallyRan, "KillOnDeadlock runs the finally blocks of the blocked tasklets");
        Assert.False(main.IsAlive);
        Assert.IsType<TaskletExitException>(main.Exception);
    }

    [Fact]
    public void Run_TwoTaskletsWaitingOnEachOther_ListsBoth()
    {
        using var s = new Scheduler();
        Tasklet? a = null, b = null;
        s.Go(async () =>
        {
            var ab = new Channel<int> { Name = "a->b" };
            var ba = new Channel<int> { Name = "b->a" };
            a = Tasklet.Go(async () => { await ba.ReceiveAsync(); await ab.SendAsync(1); }, "a");
            b = Tasklet.Go(async () => { await ab.ReceiveAsync(); await ba.SendAsync(1); }, "b");
        });

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Equal(2, ex.Blocked.Count);
        Assert.Contains($"tasklet {a!.Id} 'a': receive on channel 'b->a'", ex.Message);
        Assert.Contains($"tasklet {b!.Id} 'b': receive on channel 'a->b'", ex.Message);
    }

    [Fact]
    public void Run_JoinCycle_ReportsJoins()
    {
        using var s = new Scheduler();
        Tasklet? first = null, second = null;
        s.Go(async () =>
        {
            var gate = new Channel<Tasklet>();
            first = Tasklet.Go(async () => { Tasklet other = await gate.ReceiveAsync(); await other; }, "first");
            second = Tasklet.Go(async () => { await gate.SendAsync(Tasklet.Current!); await first!; }, "second");
        });

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"'first': join of tasklet {second!.Id} 'second'", ex.Message);
        Assert.Contains($"'second': join of tasklet {first!.Id} 'first'", ex.Message);
    }

    [Fact]
    public void Run_BlockedSelect_DescribesEveryCase()
    {
        using var s = new Scheduler();
        s.Go(async () =>
        {
            var x = new Channel<int> { Name = "x" };
            var y = new Channel<string>(3) { Name = "y" };
            await Select.WaitAsync(x.ReceiveCase(), y.ReceiveCase(), x.SendCase(1));
        }, "selector");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains("'selector': select over 3 case(s): receive on channel 'x' (unbuffered, 0 buffered); receive on channel 'y' (capacity 3, 0 buffered); send on channel 'x'", ex.Message);
    }

    [Fact]
    public void Run_KillOnDeadlockOff_LeavesTaskletsBlocked()
    {
        using var s = new Scheduler(new SchedulerOptions { KillOnDeadlock = false });
        bool finallyRan = false;
        Tasklet t = s.Go(async () =>
        {
            try
            {
                await new Channel<int>().ReceiveAsync();
            }
            finally
            {
                finallyRan = true;
            }
        });

        Assert.Throws<DeadlockException>(s.Run);
        Assert.False(finallyRan);
        Assert.Equal(TaskletState.Blocked, t.State);
    }

    [Fact]
    public void Run_SenderEndsWhileReceiverWaits_Throws()
    {
        using var s = new Scheduler();
        s.Go(async () =>
        {
            var c = new Channel<int> { Name = "c" };
            Tasklet.Go(async () => await c.SendAsync(1));
            await c.ReceiveAsync();
            await c.ReceiveAsync(); // the only sender is gone
        }, "main");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains("'main': receive on channel 'c'", ex.Message);
    }

    [Fact]
    public void Run_ForeignAwaitPending_IsNotDeadlock()
    {
        using var s = new Scheduler();
        var tcs = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        int got = 0;
        s.Go(async () =>
        {
            var thread = new Thread(() => tcs.SetResult(5)) { IsBackground = true };
            thread.Start();
            got = await tcs.Task;
        });

        s.Run();
        Assert.Equal(5, got);
    }

    [Fact]
    public void Run_ForeignDelay_IsNotDeadlock()
    {
        using var s = new Scheduler();
        bool done = false;
        s.Go(async () =>
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20));
            done = true;
        });

        s.Run();
        Assert.True(done);
    }

    [Fact]
    public void Run_TimerPending_IsNotDeadlock()
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = 3 });
        string trace = string.Empty;
        s.Go(async () =>
        {
            var c = new Channel<string>();
            Tasklet.Go(async () => { await Tasklet.Sleep(TimeSpan.FromMinutes(5)); await c.SendAsync("late"); });
            trace = await c.ReceiveAsync();
        });

        s.Run();
        Assert.Equal("late", trace);
    }

    [Fact]
    public void Run_ChannelFedByOsThread_IsNotDeadlock()
    {
        var c = new Channel<int>(); // made outside any tasklet: reachable from anywhere
        using var s = new Scheduler();
        int sum = 0;
        s.Go(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                sum += await c.ReceiveAsync();
            }
        });

        var thread = new Thread(() =>
        {
            for (int i = 1; i <= 100; i++)
            {
                c.Send(i);
            }
        })
        { IsBackground = true };
        thread.Start();
        s.Run();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(5050, sum);
    }

    [Fact]
    public void Run_KeepAliveHold_WaitsForExternalParty()
    {
        using var s = new Scheduler();
        IDisposable hold = s.KeepAlive();
        Channel<int>? inbox = null;
        var ready = new ManualResetEventSlim();
        int got = 0;
        s.Go(async () =>
        {
            inbox = new Channel<int>();
            ready.Set();
            got = await inbox.ReceiveAsync();
        });

        var thread = new Thread(() =>
        {
            ready.Wait();
            // Spawn the sender on the scheduler, then release the hold: from here on the scheduler can see everything.
            s.Go(async () => await inbox!.SendAsync(42));
            hold.Dispose();
        })
        { IsBackground = true };
        thread.Start();
        s.Run();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(42, got);
    }

    [Fact]
    public void Run_PartnerOnAnotherRunningScheduler_IsNotDeadlock()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        // The channel reaches b through plain code (a task), so b's scheduler has met a's on no primitive until it
        // sends: the documented blind spot. A KeepAlive hold covers it until b has used the channel.
        IDisposable hold = a.KeepAlive();
        var handOver = new TaskCompletionSource<Channel<int>>(TaskCreationOptions.RunContinuationsAsynchronously);
        int got = 0;
        b.Go(async () =>
        {
            Channel<int> c = await handOver.Task; // a foreign await: b keeps running meanwhile
            for (int i = 0; i < 50; i++)
            {
                await Tasklet.Yield();
            }

            await c.SendAsync(7);
            hold.Dispose();
        });
        a.Go(async () =>
        {
            var c = new Channel<int> { Name = "cross" };
            handOver.SetResult(c);
            got = await c.ReceiveAsync();
        });

        var threadB = new Thread(() => b.Run()) { IsBackground = true };
        threadB.Start();
        a.Run();
        Assert.True(threadB.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(7, got);
    }

    [Fact]
    public void Run_TwoSchedulersBothStuck_BothThrow()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        a.Go(async () => await new Channel<int> { Name = "in-a" }.ReceiveAsync(), "ta");
        b.Go(async () => await new Channel<int> { Name = "in-b" }.ReceiveAsync(), "tb");
        Exception? fromB = null;
        var threadB = new Thread(() =>
        {
            try
            {
                b.Run();
            }
            catch (Exception e)
            {
                fromB = e;
            }
        })
        { IsBackground = true };
        threadB.Start();
        var fromA = Assert.Throws<DeadlockException>(a.Run);
        Assert.True(threadB.Join(TimeSpan.FromSeconds(30)));
        Assert.Contains("'ta': receive on channel 'in-a'", fromA.Message);
        var deadlockB = Assert.IsType<DeadlockException>(fromB);
        Assert.Contains("'tb': receive on channel 'in-b'", deadlockB.Message);
    }

    [Fact]
    public void StaticRun_MainDeadlocked_Throws()
    {
        var ex = Assert.Throws<DeadlockException>(() => Scheduler.Run(async () => await new Channel<int> { Name = "never" }.ReceiveAsync()));
        Assert.Contains("'main': receive on channel 'never'", ex.Message);
    }
}
