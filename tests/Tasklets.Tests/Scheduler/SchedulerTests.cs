using System.Text;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

public class SchedulerTests
{
    [Fact]
    public void Go_SpawnOrder_RunsFifo()
    {
        using var s = new Scheduler();
        var order = new List<int>();
        for (int i = 0; i < 5; i++)
        {
            int id = i;
            s.Go(() => { order.Add(id); return Task.CompletedTask; });
        }

        s.Run();
        Assert.Equal([0, 1, 2, 3, 4], order);
    }

    [Fact]
    public void Yield_ThreeTasklets_RoundRobin()
    {
        using var s = new Scheduler();
        var trace = new StringBuilder();
        foreach (char name in "ABC")
        {
            s.Go(async () =>
            {
                for (int i = 0; i < 3; i++)
                {
                    trace.Append(name);
                    await Tasklet.Yield();
                }
            });
        }

        s.Run();
        Assert.Equal("ABCABCABC", trace.ToString());
    }

    [Fact]
    public void Go_NestedSpawn_RunsAfterTaskletsAlreadyQueued()
    {
        using var s = new Scheduler();
        var trace = new StringBuilder();
        s.Go(() =>
        {
            trace.Append('A');
            Tasklet.Go(() => { trace.Append('C'); return Task.CompletedTask; });
            return Task.CompletedTask;
        });
        s.Go(() => { trace.Append('B'); return Task.CompletedTask; });
        s.Run();
        Assert.Equal("ABC", trace.ToString());
    }

    [Fact]
    public void Sleep_VirtualClock_WakesInDueOrder()
    {
        using var s = SchedulerExtensions.Deterministic();
        var order = new List<string>();
        s.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(3)); order.Add("3s"); });
        s.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); order.Add("1s"); });
        s.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(2)); order.Add("2s"); });
        s.Run();
        Assert.Equal(["1s", "2s", "3s"], order);
    }

    [Fact]
    public void StaticRun_ReturnsMainResultAndKillsLeftovers()
    {
        bool leftoverFinallyRan = false;
        int result = Scheduler.Run(async () =>
        {
            Tasklet.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                finally
                {
                    leftoverFinallyRan = true;
                }
            });
            await Tasklet.Yield();
            return 42;
        });
        Assert.Equal(42, result);
        Assert.True(leftoverFinallyRan);
    }

    [Fact]
    public void StaticRun_MainFails_RethrowsItsException()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => Scheduler.Run(async () =>
        {
            await Tasklet.Yield();
            throw new InvalidOperationException("boom");
        }));
        Assert.Equal("boom", ex.Message);
    }

    [Fact]
    public void ForeignAwait_ResumesOnSchedulerThreadAsSameTasklet()
    {
        using var s = new Scheduler();
        int schedulerThread = Environment.CurrentManagedThreadId;
        var seen = new List<(int Thread, Tasklet? Current)>();
        Tasklet? self = null;
        s.Go(async () =>
        {
            self = Tasklet.Current;
            await Task.Delay(1);
            seen.Add((Environment.CurrentManagedThreadId, Tasklet.Current));
            await Task.Run(() => Thread.SpinWait(10));
            seen.Add((Environment.CurrentManagedThreadId, Tasklet.Current));
            await Task.Yield();
            seen.Add((Environment.CurrentManagedThreadId, Tasklet.Current));
        });
        s.Run();
        Assert.Equal(3, seen.Count);
        Assert.All(seen, x => Assert.Equal(schedulerThread, x.Thread));
        Assert.All(seen, x => Assert.Same(self, x.Current));
    }

    [Fact]
    public void Join_FailedTasklet_JoinerGetsException()
    {
        using var s = new Scheduler();
        Exception? caught = null;
        s.Go(async () =>
        {
            Tasklet worker = Tasklet.Go(async () => { await Tasklet.Yield(); throw new FormatException("bad"); });
            try
            {
                await worker;
            }
            catch (FormatException e)
            {
                caught = e;
            }
        });
        s.Run(); // observed by the joiner: not rethrown
        Assert.Equal("bad", caught?.Message);
    }

    [Fact]
    public void Run_UnobservedFailure_RethrownAsAggregate()
    {
        using var s = new Scheduler();
        s.Go(() => throw new FormatException("sync"));
        s.Go(async () => { await Tasklet.Yield(); throw new ArgumentException("async"); });
        var ex = Assert.Throws<AggregateException>(s.Run);
        Assert.Equal(2, ex.InnerExceptions.Count);
        Assert.Contains(ex.InnerExceptions, e => e is FormatException);
        Assert.Contains(ex.InnerExceptions, e => e is ArgumentException);
    }

    [Fact]
    public void Await_TypedTasklet_GivesResult()
    {
        int result = Scheduler.Run(async () =>
        {
            Tasklet<int> t = Tasklet.Go(async () => { await Tasklet.Yield(); return 7; });
            return await t * 6;
        });
        Assert.Equal(42, result);
    }

    [Fact]
    public void RunFor_ZeroBudget_ReturnsWithWorkRemaining()
    {
        using var s = new Scheduler();
        int steps = 0;
        s.Go(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                steps++;
                await Tasklet.Yield();
            }
        });
        Assert.True(s.RunFor(TimeSpan.Zero));
        Assert.True(steps < 100);
        while (s.RunFor(TimeSpan.FromSeconds(10)))
        {
        }

        Assert.Equal(100, steps);
    }

    [Fact]
    public void RunOnce_RunsOnlyWhatWasReady()
    {
        using var s = new Scheduler();
        var trace = new StringBuilder();
        s.Go(async () => { trace.Append('a'); await Tasklet.Yield(); trace.Append('b'); });
        Assert.True(s.RunOnce());
        Assert.Equal("a", trace.ToString());
        Assert.False(s.RunOnce());
        Assert.Equal("ab", trace.ToString());
    }

    [Fact]
    public void WakeUp_FromOsThread_ResumesTaskletOnScheduler()
    {
        var c = new Channel<int>(); // outside a tasklet: externally reachable, so Run waits
        using var s = new Scheduler();
        int got = 0, thread = 0;
        s.Go(async () => { got = await c.ReceiveAsync(); thread = Environment.CurrentManagedThreadId; });
        var sender = new Thread(() => c.Send(99)) { IsBackground = true };
        sender.Start();
        s.Run();
        Assert.True(sender.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(99, got);
        Assert.Equal(Environment.CurrentManagedThreadId, thread);
    }

    [Fact]
    public void Go_FromOtherThreadWhileRunning_Runs()
    {
        using var s = new Scheduler();
        IDisposable hold = s.KeepAlive();
        bool ran = false;
        var spawner = new Thread(() => { s.Go(() => { ran = true; return Task.CompletedTask; }); hold.Dispose(); }) { IsBackground = true };
        s.Go(() => { spawner.Start(); return Task.CompletedTask; });
        s.Run();
        Assert.True(spawner.Join(TimeSpan.FromSeconds(30)));
        Assert.True(ran);
    }

    [Fact]
    public void Misuse_OutsideTasklet_ClearInvalidOperation()
    {
        Assert.Null(Tasklet.Current);
        Assert.Null(Scheduler.Current);
        var yield = Assert.Throws<InvalidOperationException>(() => { _ = Tasklet.Yield(); });
        Assert.Contains("inside a tasklet", yield.Message);
        Assert.Throws<InvalidOperationException>(() => { _ = Tasklet.Sleep(TimeSpan.FromSeconds(1)); });
        Assert.Throws<InvalidOperationException>(() => Tasklet.Go(() => Task.CompletedTask));
        Assert.Throws<InvalidOperationException>(() => Tasklet.Timeout(TimeSpan.FromSeconds(1)));
        Assert.Throws<InvalidOperationException>(() => Tasklet.Atomic());
    }

    [Fact]
    public void Misuse_RunFromOwnTasklet_Throws()
    {
        using var s = new Scheduler();
        Exception? caught = null;
        s.Go(() =>
        {
            caught = Record.Exception(() => s.Run());
            return Task.CompletedTask;
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(caught);
    }

    [Fact]
    public void Misuse_BlockingReceiveInTasklet_NamesAsyncMethod()
    {
        using var s = new Scheduler();
        Exception? caught = null;
        s.Go(() =>
        {
            caught = Record.Exception(() => new Channel<int>(1).Receive());
            return Task.CompletedTask;
        });
        s.Run();
        var ex = Assert.IsType<InvalidOperationException>(caught);
        Assert.Contains("ReceiveAsync", ex.Message);
    }

    [Fact]
    public void State_Transitions()
    {
        using var s = new Scheduler();
        TaskletState inside = default;
        var c = new Channel<int>(1);
        Tasklet t = s.Go(async () => { inside = Tasklet.Current!.State; await c.ReceiveAsync(); }, "worker");
        Assert.Equal(TaskletState.Created, t.State);
        Assert.Equal("worker", t.Name);
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Running, inside);
        Assert.Equal(TaskletState.Blocked, t.State);
        c.TrySend(1);
        Assert.Equal(TaskletState.Runnable, t.State);
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Dead, t.State);
        Assert.False(t.IsAlive);
        Assert.Null(t.Exception);
    }

    [Fact]
    public void Go_AfterDispose_Throws()
    {
        var s = new Scheduler();
        s.Dispose();
        Assert.Throws<ObjectDisposedException>(() => s.Go(() => Task.CompletedTask));
    }

    [Fact]
    public void Dispose_KillsLeftoversSoFinallyRuns()
    {
        bool finallyRan = false;
        var s = new Scheduler();
        s.Go(async () =>
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
        s.RunUntilIdle();
        s.Dispose();
        Assert.True(finallyRan);
    }
}
