using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Sync;

public class AsyncManualResetEventTests
{
    [Fact]
    public void Set_WakesEveryWaiterInOrder_AndLaterWaitsCompleteAtOnce()
    {
        using var s = new Scheduler();
        var order = new List<int>();
        bool laterSynchronous = false;
        s.Go(async () =>
        {
            var ev = new AsyncManualResetEvent();
            for (int i = 1; i <= 3; i++)
            {
                int id = i;
                Tasklet.Go(async () => { await ev.WaitAsync(); order.Add(id); });
            }

            await Tasklet.Yield();
            Assert.Empty(order);
            ev.Set();
            ev.Set(); // idempotent
            Assert.True(ev.IsSet);
            await Tasklet.Yield();
            Assert.Equal([1, 2, 3], order);
            ValueTask later = ev.WaitAsync();
            laterSynchronous = later.IsCompletedSuccessfully;
            await later;
        });
        s.Run();
        Assert.Equal([1, 2, 3], order);
        Assert.True(laterSynchronous);
    }

    [Fact]
    public void Reset_LaterWaitsBlockUntilTheNextSet()
    {
        using var s = new Scheduler();
        var ev = new AsyncManualResetEvent(initialState: true);
        bool woken = false;
        ev.Reset();
        Assert.False(ev.IsSet);
        s.Go(async () => { await ev.WaitAsync(); woken = true; });
        s.RunUntilIdle();
        Assert.False(woken);
        ev.Set();
        s.RunUntilIdle();
        Assert.True(woken);
    }

    [Fact]
    public void SetThenResetAtOnce_WaitersParkedAtTheSetStillWake()
    {
        using var s = new Scheduler();
        var ev = new AsyncManualResetEvent();
        int woken = 0;
        for (int i = 0; i < 3; i++)
        {
            s.Go(async () => { await ev.WaitAsync(); woken++; });
        }

        s.RunUntilIdle();
        ev.Set();
        ev.Reset();
        s.RunUntilIdle();
        Assert.Equal(3, woken);
        Assert.False(ev.IsSet);
    }

    [Fact]
    public void Select_OverChannelAndEvent_FiresTheEventCaseAndTakesNothingFromTheChannel()
    {
        using var s = new Scheduler();
        int fired = -2;
        int afterwards = -1;
        var jobs = new Channel<int> { Name = "jobs" };
        var stop = new AsyncManualResetEvent { Name = "stop" };
        s.Go(async () =>
        {
            ReceiveCase<int> job = jobs.ReceiveCase();
            SelectCase stopped = stop.WaitCase();
            fired = await Select.WaitAsync(job, stopped);
            Assert.Equal(0, jobs.Balance); // the losing receive case was withdrawn
            afterwards = await Select.WaitAsync(job, stopped); // the event stays set: ready at once, reusable case
        });
        s.RunUntilIdle();
        Assert.Equal(-2, fired);
        stop.Set();
        s.RunUntilIdle();
        Assert.Equal(1, fired);
        Assert.Equal(1, afterwards);
        Assert.False(jobs.TrySend(5)); // nobody receives any more: no stale case of the select is left to take it
    }

    [Fact]
    public void Select_OverChannelAndEvent_ChannelFiresWhileTheEventIsNotSet()
    {
        using var s = new Scheduler();
        var results = new List<int>();
        s.Go(async () =>
        {
            var jobs = new Channel<int>();
            var stop = new AsyncManualResetEvent();
            Tasklet.Go(async () => { await jobs.SendAsync(7); await jobs.SendAsync(8); stop.Set(); });
            ReceiveCase<int> job = jobs.ReceiveCase();
            SelectCase stopped = stop.WaitCase();
            while (await Select.WaitAsync(stopped, job) == 1)
            {
                results.Add(job.Value);
            }
        });
        s.Run();
        Assert.Equal([7, 8], results);
    }

    [Fact]
    public void SelectTry_EventCase_ReadyOnlyWhileSet()
    {
        var ev = new AsyncManualResetEvent();
        var c = new Channel<int>(1);
        SelectCase evCase = ev.WaitCase();
        Assert.Equal(-1, Select.Try(c.ReceiveCase(), evCase));
        ev.Set();
        Assert.Equal(1, Select.Try(c.ReceiveCase(), evCase));
        ev.Reset();
        Assert.Equal(-1, Select.Try(evCase));
    }

    [Fact]
    public void Kill_Timeout_Cancel_OfWaiters_LeaveNothingBehind()
    {
        using var s = SchedulerExtensions.Deterministic();
        Exception? timedOut = null, cancelled = null;
        int woken = 0;
        s.Go(async () =>
        {
            var ev = new AsyncManualResetEvent(); // made inside: a wait left hanging is reported as a deadlock
            using var cts = new CancellationTokenSource();
            Tasklet victim = Tasklet.Go(async () => { await ev.WaitAsync(); woken += 100; });
            Tasklet.Go(async () =>
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    timedOut = await Record.ExceptionAsync(async () => await ev.WaitAsync());
                }
            });
            Tasklet.Go(async () => cancelled = await Record.ExceptionAsync(async () => await ev.WaitAsync(cts.Token)));
            Tasklet.Go(async () => { await ev.WaitAsync(); woken++; });
            await Tasklet.Yield();
            victim.Kill();
            cts.Cancel();
            await Tasklet.Sleep(TimeSpan.FromSeconds(2)); // virtual: the timeout fires first
            ev.Set();
            await Tasklet.Yield();
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(timedOut);
        Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
        Assert.Equal(1, woken);
    }

    [Fact]
    public void Wait_Blocking_InsideTasklet_Throws_OsThreadIsWoken()
    {
        using var s = new Scheduler();
        var ev = new AsyncManualResetEvent();
        InvalidOperationException? ex = null;
        s.Go(() =>
        {
            ex = Assert.Throws<InvalidOperationException>(() => ev.Wait());
            return Task.CompletedTask;
        });
        s.Run();
        Assert.Contains("WaitAsync", ex!.Message);

        var waiter = new Thread(() => ev.Wait()) { IsBackground = true };
        waiter.Start();
        ev.Set(); // before or after the park: either way the thread returns
        Assert.True(waiter.Join(TimeSpan.FromSeconds(30)), "hang guard: the blocked thread was not woken");
    }

    [Fact]
    public void Dump_NamesTheEventAndItsState()
    {
        using var s = new Scheduler();
        var ev = new AsyncManualResetEvent { Name = "ready" };
        var c = new Channel<int> { Name = "c" };
        Tasklet t = s.Go(async () => await ev.WaitAsync(), "waiter");
        Tasklet sel = s.Go(async () => await Select.WaitAsync(c.ReceiveCase(), ev.WaitCase()), "selector");
        s.RunUntilIdle();
        string dump = s.Dump();
        Assert.Contains($"{t.Id} 'waiter' Blocked: wait on event 'ready' (not set)", dump);
        Assert.Contains($"{sel.Id} 'selector' Blocked: select over 2 case(s): receive on channel 'c' (unbuffered, 0 buffered); wait on event 'ready' (not set)", dump);
        ev.Set();
        s.RunUntilIdle();
        Assert.False(t.IsAlive);
        Assert.False(sel.IsAlive);
        Assert.Equal(0, c.Balance);
    }
}

// Deadlock detection waits until every scheduler inside Run() in the process is stuck, so these run alone.
[Collection(NonParallel.Name)]
public class AsyncManualResetEventDeadlockTests
{
    [Fact]
    public void Run_WaitOnAnEventNobodySets_ReportsTheTaskletAndTheEvent()
    {
        using var s = new Scheduler();
        Tasklet? waiter = null;
        s.Go(async () =>
        {
            var ev = new AsyncManualResetEvent { Name = "ready" };
            waiter = Tasklet.Go(async () => await ev.WaitAsync(), "waiter");
            await ev.WaitAsync();
        }, "main");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Equal(2, ex.Blocked.Count);
        Assert.Contains($"tasklet {waiter!.Id} 'waiter': wait on event 'ready' (not set)", ex.Message);
    }
}
