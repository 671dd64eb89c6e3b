using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Boundary;

/// <summary>
/// Dispose stops a running scheduler (issue 16: Run used to keep going): from another thread it kills every tasklet,
/// waits until the Run method has returned and their finally blocks ran; from a tasklet it kills and returns at once.
/// </summary>
[Collection(NonParallel.Name)] // schedulers inside Run on other threads: process-wide deadlock state
public class DisposeTests
{
    // Tasklets that would block forever: two on a channel nobody sends to, one in an infinite sleep; a KeepAlive hold
    // keeps Run inside even once they are dead, so only the dispose can end the run.
    private static (Scheduler Scheduler, Tasklet[] Blocked, IDisposable Hold, Func<int> Finallies) BlockedForever(SchedulerOptions? options = null)
    {
        var s = new Scheduler(options);
        var ch = new Channel<int>();
        int finallies = 0;
        var blocked = new Tasklet[3];
        for (int i = 0; i < blocked.Length; i++)
        {
            bool sleeper = i == 2;
            blocked[i] = s.Go(async () =>
            {
                try
                {
                    if (sleeper)
                    {
                        await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                    }
                    else
                    {
                        await ch.ReceiveAsync();
                    }
                }
                finally
                {
                    Interlocked.Increment(ref finallies);
                }
            }, "blocked " + i);
        }

        return (s, blocked, s.KeepAlive(), () => Volatile.Read(ref finallies));
    }

    private static void WaitUntilAllBlocked(Tasklet[] tasklets)
        => RunningScheduler.WaitUntil(() => tasklets.All(t => t.State == TaskletState.Blocked), "the tasklets never blocked");

    [Fact]
    public void Dispose_FromAnotherThreadWhileRunRuns_KillsEveryTaskletAndReturnsAfterRunReturned()
    {
        (Scheduler s, Tasklet[] blocked, IDisposable hold, Func<int> finallies) = BlockedForever();
        RunningScheduler running = RunningScheduler.Start(s);
        WaitUntilAllBlocked(blocked);

        using (HangWatch.Start(hold.Dispose))
        {
            s.Dispose();
        }

        // Everything below held when Dispose returned: no wait here.
        Assert.Equal(3, finallies());
        Assert.All(blocked, t => Assert.IsType<TaskletExitException>(t.Exception));
        Assert.DoesNotContain(s, Scheduler.Running); // Run had left (its thread may still be finishing: not checked)
        Assert.Null(running.Join()); // Run returned normally, as if its tasklets had ended
        Assert.Empty(s.Tasklets);
        Assert.Throws<ObjectDisposedException>(() => s.Go(() => Task.CompletedTask));
        Assert.Throws<ObjectDisposedException>(s.Run);
        Assert.Throws<ObjectDisposedException>(() => s.InvokeAsync(() => { }));
        s.Dispose(); // idempotent
        hold.Dispose();
    }

    [Fact]
    public async Task Dispose_WhileRunAsyncRuns_TheRunsTaskCompletesAndTheTaskletsAreDead()
    {
        (Scheduler s, Tasklet[] blocked, IDisposable hold, Func<int> finallies) = BlockedForever();
        Task run = s.RunAsync();
        WaitUntilAllBlocked(blocked);

        using (HangWatch.Start(hold.Dispose))
        {
            s.Dispose();
        }

        Assert.Equal(3, finallies());
        await run.WaitAsync(RunningScheduler.Guard);
        Assert.True(run.IsCompletedSuccessfully);
        hold.Dispose();
    }

    [Fact]
    public void Dispose_FromATaskletOfTheScheduler_KillsEveryoneTheCallerAtItsNextOperationAndRunReturns()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using IDisposable hold = s.KeepAlive(); // the dispose's stop must end Run despite the hold
        var ch = new Channel<int>();
        Tasklet other = s.Go(async () => await ch.ReceiveAsync(), "other");
        bool returned = false;
        Exception? atNext = null;
        bool spawnedLaterRan = false;
        Tasklet disposer = s.Go(async () =>
        {
            await Tasklet.Yield();
            s.Dispose();
            returned = true; // Dispose returned at once: it cannot wait for its own caller
            Tasklet.Go(() =>
            {
                spawnedLaterRan = true; // spawned after the stop: killed before it runs
                return Task.CompletedTask;
            });
            atNext = await Record.ExceptionAsync(async () => await Tasklet.Yield());
        }, "disposer");

        using (HangWatch.Start(() =>
        {
            s.KillAll();
            hold.Dispose();
        }))
        {
            s.Run();
        }

        Assert.True(returned);
        Assert.IsType<TaskletExitException>(atNext);
        Assert.False(spawnedLaterRan);
        Assert.IsType<TaskletExitException>(other.Exception);
        Assert.False(disposer.IsAlive);
        Assert.Throws<ObjectDisposedException>(s.Run); // the run completed the dispose
        Assert.Throws<ObjectDisposedException>(() => s.Go(() => Task.CompletedTask));
    }

    [Fact]
    public void Dispose_WhileAHostPumpsRunFor_TheNextRunForThrowsObjectDisposedAndTheTaskletsAreDead()
    {
        (Scheduler s, Tasklet[] blocked, IDisposable hold, Func<int> finallies) = BlockedForever();
        Exception? pumpEnded = null;
        int frames = 0;
        var pump = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    s.RunFor(TimeSpan.FromMilliseconds(1));
                    Interlocked.Increment(ref frames);
                }
            }
            catch (Exception e)
            {
                pumpEnded = e;
            }
        })
        { IsBackground = true };
        pump.Start();
        WaitUntilAllBlocked(blocked);
        RunningScheduler.WaitUntil(() => Volatile.Read(ref frames) > 0, "the host never pumped a frame");

        using (HangWatch.Start(hold.Dispose))
        {
            s.Dispose();
        }

        Assert.Equal(3, finallies());
        Assert.True(pump.Join(RunningScheduler.Guard));
        Assert.IsType<ObjectDisposedException>(pumpEnded);
        Assert.Empty(s.Tasklets);
        hold.Dispose();
    }

    [Fact]
    public void Dispose_FromSeveralThreadsAtOnce_EachReturnsOnlyAfterTheTaskletsAreDead()
    {
        (Scheduler s, Tasklet[] blocked, IDisposable hold, Func<int> finallies) = BlockedForever();
        RunningScheduler running = RunningScheduler.Start(s);
        WaitUntilAllBlocked(blocked);

        var seen = new int[4];
        using var start = new Barrier(seen.Length);
        var threads = Enumerable.Range(0, seen.Length).Select(i => new Thread(() =>
        {
            start.SignalAndWait();
            s.Dispose();
            seen[i] = finallies(); // every caller returns after the whole dispose, not only the one that did it
        })
        { IsBackground = true }).ToArray();
        using (HangWatch.Start(hold.Dispose))
        {
            foreach (Thread t in threads)
            {
                t.Start();
            }

            foreach (Thread t in threads)
            {
                Assert.True(t.Join(RunningScheduler.Guard));
            }
        }

        Assert.All(seen, n => Assert.Equal(3, n));
        Assert.Null(running.Join());
        hold.Dispose();
    }

    [Fact]
    public void Dispose_TaskletAwaitingSomethingForeign_IsAbandonedAndDisposeReturns()
    {
        (Scheduler s, Tasklet[] blocked, IDisposable hold, Func<int> finallies) = BlockedForever();
        var never = new TaskCompletionSource(); // a kill cannot end another library's await
        Tasklet foreign = s.Go(async () => await never.Task, "foreign");
        RunningScheduler running = RunningScheduler.Start(s);
        WaitUntilAllBlocked(blocked);
        RunningScheduler.WaitUntil(() => foreign.State != TaskletState.Runnable && foreign.IsAlive, "the foreign wait never began");

        using (HangWatch.Start(() =>
        {
            hold.Dispose();
            never.TrySetResult();
        }))
        {
            s.Dispose();
        }

        Assert.Equal(3, finallies());
        Assert.Null(running.Join());
        Assert.True(foreign.IsAlive); // abandoned, as by a cancelled Run: nothing on this scheduler will resume it
        hold.Dispose();
    }

    [Fact]
    public async Task Dispose_RacingSpawnsAndInvocationsFromOtherThreads_NothingIsLeftWaitingForever()
    {
        // Conservation: each Go either throws ObjectDisposedException or gives a tasklet that is dead once Dispose has
        // returned (it ran, or was killed before it ran); each InvokeAsync either throws or completes. A post that
        // landed after the final shutdown's last look at the inbox would leave its joiner or awaiter waiting forever.
        for (int round = 0; round < 20; round++)
        {
            (Scheduler s, Tasklet[] blocked, IDisposable hold, Func<int> finallies) = BlockedForever();
            RunningScheduler running = RunningScheduler.Start(s);
            WaitUntilAllBlocked(blocked);

            var spawned = new System.Collections.Concurrent.ConcurrentBag<Tasklet>();
            var invoked = new System.Collections.Concurrent.ConcurrentBag<Task>();
            int refused = 0;
            int go = 0;
            var posters = Enumerable.Range(0, 2).Select(p => new Thread(() =>
            {
                while (Volatile.Read(ref go) == 0)
                {
                    Thread.SpinWait(10);
                }

                for (int i = 0; i < 200; i++)
                {
                    try
                    {
                        if (i % 2 == 0)
                        {
                            spawned.Add(s.Go(() => Task.CompletedTask));
                        }
                        else
                        {
                            invoked.Add(s.InvokeAsync(() => { }).AsTask());
                        }
                    }
                    catch (ObjectDisposedException)
                    {
                        Interlocked.Increment(ref refused);
                    }
                }
            })
            { IsBackground = true }).ToArray();
            foreach (Thread t in posters)
            {
                t.Start();
            }

            Volatile.Write(ref go, 1);
            using (HangWatch.Start(hold.Dispose))
            {
                s.Dispose();
            }

            foreach (Thread t in posters)
            {
                Assert.True(t.Join(RunningScheduler.Guard));
            }

            Assert.Equal(3, finallies());
            Assert.Equal(400, spawned.Count + invoked.Count + refused);
            Assert.All(spawned, t => Assert.False(t.IsAlive));
            await Task.WhenAll(invoked).WaitAsync(RunningScheduler.Guard);
            Assert.Null(running.Join());
            hold.Dispose();
        }
    }

    [Fact]
    public void Dispose_AfterRunOnceLeftAnInvocationQueued_TheInvocationRuns()
    {
        // An invocation made from a step is queued on the run queue, not the inbox, and nothing is alive: the final
        // shutdown must still run it, or its awaiter waits forever (it was accepted before the dispose began).
        var s = new Scheduler();
        ValueTask inner = default;
        bool innerRan = false;
        ValueTask outer = s.InvokeAsync(() => { inner = s.InvokeAsync(() => { innerRan = true; }); });
        Assert.True(s.RunOnce()); // the pass ran outer only: inner, queued by it, is for the next pass
        Assert.True(outer.IsCompletedSuccessfully);
        Assert.False(inner.IsCompleted);

        s.Dispose();

        Assert.True(innerRan);
        Assert.True(inner.IsCompletedSuccessfully);
    }
}
