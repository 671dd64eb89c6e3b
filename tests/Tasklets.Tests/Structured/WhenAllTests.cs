using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Structured;

public class WhenAllTests
{
    private static readonly SchedulerOptions s_virtual = new() { Seed = 1 };

    // ------------------------------------------------------------------ WhenAll

    [Fact]
    public void WhenAll_WaitsForEveryTasklet()
    {
        var ended = new List<string>();
        Scheduler.Run(async () =>
        {
            Tasklet a = Tasklet.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(2)); ended.Add("a"); });
            Tasklet b = Tasklet.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); ended.Add("b"); });
            await Tasklet.WhenAll(a, b);
            ended.Add("all");
        }, s_virtual);

        Assert.Equal(["b", "a", "all"], ended);
    }

    [Fact]
    public void WhenAll_OneFailure_IsRethrownAsItIs_OnlyAfterEveryTaskletEnded()
    {
        var boom = new InvalidOperationException("boom");
        Scheduler.Run(async () =>
        {
            Tasklet failing = Tasklet.Go(() => throw boom);
            Tasklet slow = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromSeconds(5)));
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Tasklet.WhenAll(failing, slow));
            Assert.Same(boom, ex);
            Assert.False(slow.IsAlive); // as Task.WhenAll: all complete first
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_SeveralFailures_AggregateInArrayOrder_KillsAreNotFailures()
    {
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            Tasklet killed = Tasklet.Go(async () => await never.ReceiveAsync());
            Tasklet second = Tasklet.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); throw new FormatException("second"); });
            Tasklet first = Tasklet.Go(() => throw new InvalidOperationException("first"));
            Tasklet.Go(async () => { await Tasklet.Yield(); killed.Kill(); });
            var ex = await Assert.ThrowsAsync<AggregateException>(async () => await Tasklet.WhenAll(killed, first, second, first));
            Assert.Collection(
                ex.InnerExceptions,
                e => Assert.Equal("first", e.Message),
                e => Assert.Equal("second", e.Message));
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_NoFailureButAKill_ThrowsTheKill()
    {
        Scheduler.Run(async () =>
        {
            Tasklet killed = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)));
            Tasklet fine = Tasklet.Go(() => Task.CompletedTask);
            killed.Kill();
            var ex = await Assert.ThrowsAsync<TaskletExitException>(async () => await Tasklet.WhenAll(fine, killed));
            Assert.Same(killed.Exception, ex);
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_Validation()
    {
        Assert.Throws<ArgumentNullException>(() => Tasklet.WhenAll(null!));
        Assert.Throws<ArgumentException>(() => Tasklet.WhenAll(new Tasklet[] { null! }));
        Assert.True(Tasklet.WhenAll().IsCompletedSuccessfully);
        Scheduler.Run(async () =>
        {
            var ex = Assert.Throws<InvalidOperationException>(() => Tasklet.WhenAll(Tasklet.Current!));
            Assert.Contains("its own end", ex.Message);
            Assert.Throws<InvalidOperationException>(() => Tasklet.WhenAny(Tasklet.Current!));
            await Task.CompletedTask;
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_AllDeadAlready_CompletesSynchronously()
    {
        Scheduler.Run(async () =>
        {
            Tasklet a = Tasklet.Go(() => Task.CompletedTask);
            await a;
            Assert.True(Tasklet.WhenAll(a, a).IsCompletedSuccessfully);
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_FailureIsObserved_RunDoesNotReportIt()
    {
        using var s = new Scheduler(s_virtual);
        s.Go(async () =>
        {
            Tasklet failing = Tasklet.Go(async () => { await Tasklet.Yield(); throw new InvalidOperationException("seen"); });
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await Tasklet.WhenAll(failing));
        });

        s.Run();
    }

    [Fact]
    public void WhenAll_TokenCancelled_ThrowsAndTheTaskletsGoOn()
    {
        Scheduler.Run(async () =>
        {
            using var cts = new CancellationTokenSource();
            Tasklet slow = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromSeconds(1)));
            Tasklet.Go(async () => { await Tasklet.Yield(); cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Tasklet.WhenAll(cts.Token, slow));
            Assert.True(slow.IsAlive);
            await slow;
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_CallerTimesOut_InsideTimeoutScope()
    {
        Scheduler.Run(async () =>
        {
            Tasklet slow = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)));
            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await Tasklet.WhenAll(slow));
            }

            Assert.True(slow.IsAlive);
            slow.Kill();
        }, s_virtual);
    }

    [Fact]
    public void WhenAll_CallerKilled_EndsItsWait()
    {
        using var s = new Scheduler(s_virtual);
        var never = new Channel<int>();
        Tasklet target = s.Go(async () => await never.ReceiveAsync(), "target");
        Tasklet waiter = s.Go(async () => await Tasklet.WhenAll(target), "waiter");
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Blocked, waiter.State);
        waiter.Kill();
        s.RunUntilIdle();
        Assert.IsType<TaskletExitException>(waiter.Exception);
        Assert.True(target.IsAlive);
        never.TrySend(1);
        s.Run();
    }

    // ------------------------------------------------------------------ WhenAny

    [Fact]
    public void WhenAny_ReturnsTheFirstToEnd_WithoutThrowingItsFailure()
    {
        using var s = new Scheduler(s_virtual);
        Tasklet? winner = null;
        Tasklet? failing = null;
        s.Go(async () =>
        {
            Tasklet slow = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromSeconds(5)));
            failing = Tasklet.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); throw new InvalidOperationException("not thrown by WhenAny"); });
            winner = await Tasklet.WhenAny(slow, failing);
            Assert.True(slow.IsAlive);
            await slow;
        });

        // WhenAny did not observe the failure: nobody joined it, so Run reports it.
        var ex = Assert.Throws<AggregateException>(s.Run);
        Assert.Same(failing, winner);
        Assert.Same(failing!.Exception, Assert.Single(ex.InnerExceptions));
    }

    [Fact]
    public void WhenAny_SeveralDeadAlready_ReturnsTheFirstInArrayOrderSynchronously()
    {
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            Tasklet alive = Tasklet.Go(async () => await never.ReceiveAsync());
            Tasklet a = Tasklet.Go(() => Task.CompletedTask);
            Tasklet b = Tasklet.Go(() => Task.CompletedTask);
            await Tasklet.WhenAll(a, b);
            ValueTask<Tasklet> any = Tasklet.WhenAny(alive, b, a);
            Assert.True(any.IsCompletedSuccessfully);
            Assert.Same(b, any.Result);
            alive.Kill();
        }, s_virtual);
    }

    [Fact]
    public void WhenAny_Validation()
    {
        Assert.Throws<ArgumentNullException>(() => Tasklet.WhenAny(null!));
        var ex = Assert.Throws<ArgumentException>(() => Tasklet.WhenAny());
        Assert.Contains("at least one", ex.Message);
        Assert.Throws<ArgumentException>(() => Tasklet.WhenAny(new Tasklet[] { null! }));
    }

    [Fact]
    public void WhenAny_TokenCancelled_ThrowsAndWithdrawsItsCases()
    {
        Scheduler.Run(async () =>
        {
            using var cts = new CancellationTokenSource();
            var never = new Channel<int>();
            Tasklet a = Tasklet.Go(async () => await never.ReceiveAsync());
            Tasklet.Go(async () => { await Tasklet.Yield(); cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Tasklet.WhenAny(cts.Token, a));
            a.Kill();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await a); // its end wakes no stale registration
        }, s_virtual);
    }

    [Fact]
    public void WhenAny_AcrossSchedulers_SeesATaskletOfAnotherThread()
    {
        using var other = new Scheduler();
        var release = new Channel<int>();
        Tasklet remote = other.Go(async () => await release.ReceiveAsync(), "remote");
        var thread = new Thread(other.Run);
        thread.Start();
        Tasklet? winner = null;
        Scheduler.Run(async () =>
        {
            Tasklet local = Tasklet.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)));
            Tasklet.Go(async () => await release.SendAsync(1));
            winner = await Tasklet.WhenAny(local, remote);
            local.Kill();
        });

        Assert.True(thread.Join(TimeSpan.FromSeconds(30)), "the other scheduler did not finish");
        Assert.Same(remote, winner);
    }

    // ------------------------------------------------------------------ JoinCase

    [Fact]
    public void JoinCase_InSelect_FiresWhenTheTaskletDies_WithoutThrowing()
    {
        Scheduler.Run(async () =>
        {
            var jobs = new Channel<int>();
            Tasklet worker = Tasklet.Go(async () =>
            {
                await jobs.SendAsync(1);
                await jobs.SendAsync(2);
                throw new InvalidOperationException("worker failed");
            }, "worker");
            JoinCase done = worker.JoinCase();
            ReceiveCase<int> next = jobs.ReceiveCase();
            var received = new List<int>();
            while (await Select.WaitAsync(done, next) == 1)
            {
                received.Add(next.Value);
            }

            Assert.Equal([1, 2], received);
            Assert.Same(worker, done.Tasklet);
            Assert.Equal(0, Select.Try(done)); // ready in every select once dead: reusable
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await done.Tasklet); // observes the failure
        }, s_virtual);
    }

    [Fact]
    public void JoinCase_SelectTimesOut_CaseIsWithdrawnAndReusable()
    {
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            Tasklet t = Tasklet.Go(async () => await never.ReceiveAsync());
            JoinCase done = t.JoinCase();
            Assert.Equal(-1, Select.Try(done));
            Assert.Equal(-1, await Select.WaitAsync(TimeSpan.FromSeconds(1), done));
            t.Kill();
            Assert.Equal(0, await Select.WaitAsync(done));
        }, s_virtual);
    }

    // ------------------------------------------------------------------ AsTask

    [Fact]
    public async Task AsTask_ForTaskWhenAll_CompletesWithResults()
    {
        using var s = new Scheduler(s_virtual);
        Tasklet<int> a = s.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); return 1; });
        Tasklet<int> b = s.Go(() => Task.FromResult(2));
        Task<int[]> all = Task.WhenAll(a.AsTask(), b.AsTask());
        s.Run();
        int[] results = await all;
        Assert.Equal([1, 2], results);
        Assert.Equal(3, await a.AsTask() + await b.AsTask()); // dead already: completes at once
    }

    [Fact]
    public async Task AsTask_FailedIsFaulted_KilledIsCanceledAndThrowsTheExit()
    {
        using var s = new Scheduler(s_virtual);
        var never = new Channel<int>();
        Tasklet failing = s.Go(async () => { await Tasklet.Yield(); throw new InvalidOperationException("f"); });
        Tasklet killed = s.Go(async () => await never.ReceiveAsync());
        Task failedTask = failing.AsTask();
        Task killedTask = killed.AsTask();
        s.RunUntilIdle();
        killed.Kill();
        s.Run(); // the failure went to the task: Run does not report it
        Assert.Equal("f", (await Assert.ThrowsAsync<InvalidOperationException>(() => failedTask)).Message);
        await Assert.ThrowsAsync<TaskletExitException>(() => killedTask);
        Assert.True(killedTask.IsCanceled);
        Assert.True(failedTask.IsFaulted);
        Assert.True(killed.AsTask().IsCanceled); // dead already: the same outcome
    }
}
