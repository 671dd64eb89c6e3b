using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Sync;

public class WaitGroupTests
{
    [Fact]
    public void WaitAsync_WakesOnlyWhenTheCountReachesZero()
    {
        using var s = new Scheduler();
        var group = new WaitGroup { Name = "workers" };
        bool woken = false;
        group.Add(3);
        s.Go(async () => { await group.WaitAsync(); woken = true; });
        s.RunUntilIdle();
        for (int i = 0; i < 2; i++)
        {
            group.Done();
            s.RunUntilIdle();
            Assert.False(woken, $"woken at count {group.Count}");
        }

        group.Done();
        s.RunUntilIdle();
        Assert.True(woken);
        Assert.Equal(0, group.Count);
    }

    [Fact]
    public void WaitAsync_ZeroCount_CompletesSynchronously()
    {
        var group = new WaitGroup();
        Assert.True(group.WaitAsync().IsCompletedSuccessfully);
    }

    [Fact]
    public void AddThenTaskletsDone_EveryWaiterWakesAfterTheLast()
    {
        using var s = new Scheduler();
        int done = 0;
        int waitersWoken = 0;
        s.Go(async () =>
        {
            var group = new WaitGroup();
            for (int w = 0; w < 3; w++)
            {
                Tasklet.Go(async () => { await group.WaitAsync(); Assert.Equal(10, done); waitersWoken++; });
            }

            for (int i = 0; i < 10; i++)
            {
                group.Add();
                Tasklet.Go(async () => { await Tasklet.Yield(); done++; group.Done(); });
            }

            await group.WaitAsync();
            Assert.Equal(10, done);
        });
        s.Run();
        Assert.Equal(3, waitersWoken);
    }

    [Fact]
    public void Done_BelowZero_ThrowsAndLeavesTheCountUnchanged()
    {
        var group = new WaitGroup { Name = "g" };
        var ex = Assert.Throws<InvalidOperationException>(group.Done);
        Assert.Contains("negative", ex.Message);
        Assert.Equal(0, group.Count);
        group.Add(2);
        Assert.Throws<InvalidOperationException>(() => group.Add(-3));
        Assert.Equal(2, group.Count);
        group.Add(int.MaxValue - 2);
        Assert.Throws<InvalidOperationException>(() => group.Add(1));
        Assert.Equal(int.MaxValue, group.Count);
    }

    [Fact]
    public void BadDone_WithWaiters_WakesNobody()
    {
        using var s = new Scheduler();
        var group = new WaitGroup();
        bool woken = false;
        group.Add(1);
        s.Go(async () => { await group.WaitAsync(); woken = true; });
        s.RunUntilIdle();
        Assert.Throws<InvalidOperationException>(() => group.Add(-2));
        s.RunUntilIdle();
        Assert.False(woken);
        group.Done();
        s.RunUntilIdle();
        Assert.True(woken);
    }

    [Fact]
    public void Reuse_AfterZero_ANewRoundWaitsForItsOwnCount()
    {
        using var s = new Scheduler();
        var rounds = new List<string>();
        s.Go(async () =>
        {
            var group = new WaitGroup();
            for (int round = 0; round < 3; round++)
            {
                int finished = 0;
                group.Add(4);
                for (int i = 0; i < 4; i++)
                {
                    Tasklet.Go(async () => { await Tasklet.Yield(); finished++; group.Done(); });
                }

                await group.WaitAsync();
                rounds.Add($"round {round}: {finished}");
            }
        });
        s.Run();
        Assert.Equal(["round 0: 4", "round 1: 4", "round 2: 4"], rounds);
    }

    [Fact]
    public void Kill_Timeout_Cancel_OfWaiters_LeaveTheCountAndOtherWaitersAlone()
    {
        using var s = SchedulerExtensions.Deterministic();
        Exception? timedOut = null, cancelled = null;
        bool woken = false;
        s.Go(async () =>
        {
            var group = new WaitGroup(); // made inside: a wait left hanging is reported as a deadlock
            group.Add(1);
            using var cts = new CancellationTokenSource();
            Tasklet victim = Tasklet.Go(async () => await group.WaitAsync());
            Tasklet.Go(async () =>
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    timedOut = await Record.ExceptionAsync(async () => await group.WaitAsync());
                }
            });
            Tasklet.Go(async () => cancelled = await Record.ExceptionAsync(async () => await group.WaitAsync(cts.Token)));
            Tasklet.Go(async () => { await group.WaitAsync(); woken = true; });
            await Tasklet.Yield();
            victim.Kill();
            cts.Cancel();
            await Tasklet.Sleep(TimeSpan.FromSeconds(2));
            Assert.Equal(1, group.Count);
            Assert.False(woken);
            group.Done();
            await Tasklet.Yield();
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(timedOut);
        Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
        Assert.True(woken);
    }

    [Fact]
    public void Wait_Blocking_InsideTasklet_Throws_OsThreadWokenAtZero()
    {
        using var s = new Scheduler();
        var group = new WaitGroup();
        group.Add(1);
        InvalidOperationException? ex = null;
        s.Go(() =>
        {
            ex = Assert.Throws<InvalidOperationException>(() => group.Wait());
            return Task.CompletedTask;
        });
        s.Run();
        Assert.Contains("WaitAsync", ex!.Message);

        int countSeen = -1;
        var waiter = new Thread(() => { group.Wait(); countSeen = group.Count; }) { IsBackground = true };
        waiter.Start();
        group.Done();
        Assert.True(waiter.Join(TimeSpan.FromSeconds(30)), "hang guard: the blocked thread was not woken");
        Assert.Equal(0, countSeen);
    }

    [Fact]
    public void Dump_NamesTheWaitGroupAndItsCount()
    {
        using var s = new Scheduler();
        var group = new WaitGroup { Name = "workers" };
        group.Add(3);
        Tasklet t = s.Go(async () => await group.WaitAsync(), "boss");
        s.RunUntilIdle();
        Assert.Contains($"{t.Id} 'boss' Blocked: wait on wait group 'workers' (count 3)", s.Dump());
        group.Add(-3);
        s.RunUntilIdle();
        Assert.False(t.IsAlive);
    }
}

// Deadlock detection waits until every scheduler inside Run() in the process is stuck, so these run alone.
[Collection(NonParallel.Name)]
public class WaitGroupDeadlockTests
{
    [Fact]
    public void Run_WaitForWorkersThatNeverFinish_ReportsTheWaitGroupAndTheWorkers()
    {
        using var s = new Scheduler();
        Tasklet? boss = null, worker = null;
        s.Go(async () =>
        {
            var group = new WaitGroup { Name = "workers" };
            var never = new Channel<int> { Name = "never" };
            group.Add(3);
            worker = Tasklet.Go(async () => { await never.ReceiveAsync(); group.Done(); }, "worker");
            boss = Tasklet.Go(async () => await group.WaitAsync(), "boss");
        });

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"tasklet {boss!.Id} 'boss': wait on wait group 'workers' (count 3)", ex.Message);
        Assert.Contains($"tasklet {worker!.Id} 'worker': receive on channel 'never'", ex.Message);
    }
}
