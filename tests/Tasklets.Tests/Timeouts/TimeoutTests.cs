using System.Text;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Timeouts;

public class TimeoutTests
{
    [Fact]
    public void Timeout_BlockedReceive_ThrowsAndTakesNothing()
    {
        using var s = SchedulerExtensions.Deterministic();
        var log = new List<string>();
        s.Go(async () =>
        {
            var c = new Channel<int>(1);
            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                var ex = await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await c.ReceiveAsync());
                log.Add("timed out");
                Assert.Equal(0, c.Balance);
                await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await Tasklet.Yield()); // later ops too
            }

            c.TrySend(7);
            log.Add($"got {await c.ReceiveAsync()}"); // scope left: the item is still there
        });
        s.Run();
        Assert.Equal(["timed out", "got 7"], log);
    }

    [Fact]
    public void Timeout_Nested_EarliestWinsAndIsNamed()
    {
        using var s = SchedulerExtensions.Deterministic();
        TimeoutScope? outer = null, inner = null;
        TaskletTimeoutException? caught = null;
        s.Go(async () =>
        {
            using (outer = Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            using (inner = Tasklet.Timeout(TimeSpan.FromSeconds(10)))
            {
                caught = await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await Tasklet.Sleep(TimeSpan.FromMinutes(1)));
            }
        });
        s.Run();
        Assert.Same(outer, caught!.Scope);
        Assert.True(outer!.IsExpired);
        Assert.False(inner!.IsExpired);
    }

    [Fact]
    public void Timeout_NotReached_NoEffect()
    {
        using var s = SchedulerExtensions.Deterministic();
        int got = 0;
        s.Go(async () =>
        {
            var c = new Channel<int>();
            Tasklet.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); await c.SendAsync(3); });
            using (Tasklet.Timeout(TimeSpan.FromSeconds(5)))
            {
                got = await c.ReceiveAsync();
            }

            await Tasklet.Sleep(TimeSpan.FromSeconds(10)); // the old deadline passes outside the scope
        });
        s.Run();
        Assert.Equal(3, got);
    }

    [Fact]
    public void Timeout_SenderTimesOut_ItemNotDelivered()
    {
        using var s = SchedulerExtensions.Deterministic();
        var received = new List<int>();
        s.Go(async () =>
        {
            var c = new Channel<int>();
            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await c.SendAsync(1));
            }

            Tasklet.Go(async () => received.Add(await c.ReceiveAsync()));
            await c.SendAsync(2);
        });
        s.Run();
        Assert.Equal([2], received);
    }

    [Fact]
    public void Heartbeat_WatchdogPattern_RestartsStalledWorker()
    {
        // stacklesslib's timeout: a supervisor waits for heartbeats; a silent worker is killed and replaced.
        using var s = SchedulerExtensions.Deterministic();
        var log = new StringBuilder();
        s.Go(async () =>
        {
            var heartbeat = new Channel<int>();
            int generation = 0;
            Tasklet Start(int stallAfter) => Tasklet.Go(async () =>
            {
                int gen = ++generation;
                for (int beat = 0; ; beat++)
                {
                    await Tasklet.Sleep(TimeSpan.FromMilliseconds(100));
                    if (beat == stallAfter)
                    {
                        await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                    }

                    await heartbeat.SendAsync(gen);
                }
            });

            Tasklet worker = Start(stallAfter: 2);
            int restarts = 0, beats = 0;
            while (beats < 6)
            {
                try
                {
                    using (Tasklet.Timeout(TimeSpan.FromMilliseconds(500)))
                    {
                        await heartbeat.ReceiveAsync();
                        beats++;
                    }
                }
                catch (TaskletTimeoutException)
                {
                    restarts++;
                    log.Append("restart after ").Append(beats).Append(" beats;");
                    await worker.KillAndJoinAsync();
                    worker = Start(stallAfter: 100);
                }
            }

            worker.Kill();
            Assert.Equal(1, restarts);
        });
        s.Run();
        Assert.Equal("restart after 2 beats;", log.ToString());
    }
}

public class AtomicAndWatchdogTests
{
    [Fact]
    public void Atomic_YieldDoesNotSwitch()
    {
        using var s = new Scheduler();
        var trace = new StringBuilder();
        s.Go(async () =>
        {
            using (Tasklet.Atomic())
            {
                for (int i = 0; i < 3; i++)
                {
                    trace.Append('A');
                    await Tasklet.Yield();
                    await Tasklet.Checkpoint();
                }
            }

            await Tasklet.Yield();
            trace.Append('a');
        });
        s.Go(() => { trace.Append('B'); return Task.CompletedTask; });
        s.Run();
        Assert.Equal("AAABa", trace.ToString());
    }

    [Fact]
    public void Atomic_BlockingStillBlocks()
    {
        using var s = new Scheduler();
        var trace = new StringBuilder();
        s.Go(async () =>
        {
            var c = new Channel<int>();
            Tasklet.Go(async () => { trace.Append('S'); await c.SendAsync(1); });
            using (Tasklet.Atomic())
            {
                trace.Append('R');
                await c.ReceiveAsync();
                trace.Append('r');
            }
        });
        s.Run();
        Assert.Equal("RSr", trace.ToString());
    }

    [Fact]
    public void Checkpoint_TinySlice_Yields()
    {
        using var s = new Scheduler(new SchedulerOptions { TimeSlice = TimeSpan.FromTicks(1) });
        var trace = new StringBuilder();
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                trace.Append('A');
                Thread.SpinWait(1000); // spend the (tiny) slice
                await Tasklet.Checkpoint();
                Thread.SpinWait(1000);
                await Tasklet.Checkpoint();
            }
        });
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                trace.Append('B');
                await Tasklet.Yield();
            }
        });
        s.Run();
        Assert.Equal("ABABAB", trace.ToString());
    }

    [Fact]
    public void Checkpoint_HugeSlice_NeverYields()
    {
        using var s = new Scheduler(new SchedulerOptions { TimeSlice = TimeSpan.FromDays(1) });
        var trace = new StringBuilder();
        s.Go(async () =>
        {
            for (int i = 0; i < 1000; i++)
            {
                await Tasklet.Checkpoint();
            }

            trace.Append('A');
        });
        s.Go(() => { trace.Append('B'); return Task.CompletedTask; });
        s.Run();
        Assert.Equal("AB", trace.ToString());
    }

    [Fact]
    public void Checkpoint_Deterministic_YieldsEvery64()
    {
        using var s = SchedulerExtensions.Deterministic();
        int before = -1;
        int counter = 0;
        s.Go(async () =>
        {
            for (int i = 0; i < 200; i++)
            {
                counter++;
                await Tasklet.Checkpoint();
            }
        });
        s.Go(() => { before = counter; return Task.CompletedTask; });
        s.Run();
        Assert.Equal(64, before);
    }

    [Fact]
    public void RunFor_CheckpointLoop_ReturnsWithWorkRemaining()
    {
        using var s = new Scheduler();
        long spins = 0;
        Tasklet t = s.Go(async () =>
        {
            while (true)
            {
                spins++;
                await Tasklet.Checkpoint();
            }
        });
        Assert.True(s.RunFor(TimeSpan.FromMilliseconds(1)));
        Assert.True(spins > 0);
        Assert.True(t.IsAlive);
        t.Kill();
        Assert.False(s.RunFor(TimeSpan.FromSeconds(10)));
        Assert.False(t.IsAlive);
    }
}
