using Tasklets.Internal;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>Tasklet.RunInThread: work on a thread-pool thread while the tasklet waits as a library wait.</summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class RunInThreadTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    [Fact]
    public void RunInThread_ReturnsTheResult_FromAnotherThread_WhileOtherTaskletsRun()
    {
        // The work waits until another tasklet of the scheduler has run three steps: that can only happen if the
        // scheduler runs its tasklets while the caller waits on the thread.
        using var otherDone = new ManualResetEventSlim();
        int schedulerThread = 0;
        int workThread = 0;
        int otherSteps = 0;
        int result = Scheduler.Run(async () =>
        {
            schedulerThread = Environment.CurrentManagedThreadId;
            Tasklet other = Tasklet.Go(async () =>
            {
                for (int i = 0; i < 3; i++)
                {
                    otherSteps++;
                    await Tasklet.Yield();
                }

                otherDone.Set();
            });
            int value = await Tasklet.RunInThread(token =>
            {
                workThread = Environment.CurrentManagedThreadId;
                Assert.True(otherDone.Wait(s_guard, token), "hang guard: the other tasklet did not run meanwhile");
                return 6 * 7;
            });
            await other;
            return value;
        });
        Assert.Equal(42, result);
        Assert.NotEqual(schedulerThread, workThread);
        Assert.Equal(3, otherSteps);
    }

    [Fact]
    public void RunInThread_WorkThrows_TheExceptionIsRethrown()
    {
        Scheduler.Run(async () =>
        {
            var thrown = await Assert.ThrowsAsync<InvalidOperationException>(
                async () => await Tasklet.RunInThread(new Action<CancellationToken>(_ => throw new InvalidOperationException("from the work"))));
            Assert.Equal("from the work", thrown.Message);
        });
    }

    [Fact]
    public void RunInThread_Kill_WakesTheTaskletAtOnce_AndCancelsTheWorksToken()
    {
        using var started = new ManualResetEventSlim();
        using var sawCancellation = new ManualResetEventSlim();
        Scheduler.Run(async () =>
        {
            Tasklet worker = Tasklet.Go(async () =>
            {
                await Tasklet.RunInThread(token =>
                {
                    started.Set();
                    token.WaitHandle.WaitOne(); // blocks until the wait is abandoned
                    sawCancellation.Set();
                });
            });
            await Tasklet.RunInThread(token => Assert.True(started.Wait(s_guard, token), "hang guard: work started"));
            Assert.Contains("running in a thread", worker.Scheduler.Dump());
            worker.Kill();
            await Assert.ThrowsAsync<TaskletExitException>(async () => await worker); // before the work returned
            Assert.True(sawCancellation.Wait(s_guard), "hang guard: the work's token was not cancelled");
        });
    }

    [Fact]
    public void RunInThread_CancellationToken_EndsTheWaitAndCancelsTheWork()
    {
        using var sawCancellation = new ManualResetEventSlim();
        using var cts = new CancellationTokenSource();
        Scheduler.Run(async () =>
        {
            ValueTask waiting = Tasklet.RunInThread(token =>
            {
                cts.Cancel(); // the caller's token, cancelled while the work runs
                token.WaitHandle.WaitOne();
                sawCancellation.Set();
            }, cts.Token);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await waiting);
            Assert.True(sawCancellation.Wait(s_guard), "hang guard: the work's token was not cancelled");
        });
    }

    [Fact]
    public void RunInThread_SchedulerIdleMeanwhile_IsNotADeadlock()
    {
        // The only tasklet waits on a thread for work that blocks until the test thread, having seen the wait in Dump,
        // releases it: the scheduler is idle all that time and must not declare a deadlock.
        using var release = new ManualResetEventSlim();
        using var scheduler = new Scheduler();
        scheduler.Go(async () => await Tasklet.RunInThread(token => Assert.True(release.Wait(s_guard, token), "hang guard: release")));
        Exception? failure = null;
        Thread runner = StartRun(scheduler, e => failure = e);
        var spinner = default(SpinWait);
        int polls = 0;
        while (!scheduler.Dump().Contains("running in a thread", StringComparison.Ordinal) && polls++ < 1_000_000 && runner.IsAlive)
        {
            spinner.SpinOnce();
        }

        release.Set();
        Assert.True(runner.Join(s_guard), "hang guard: scheduler");
        Assert.Null(failure);
    }

    [Fact]
    public void RunInThread_KillsRacingCompletions_EachCallReturnsItsResultOrEndsKilled()
    {
        // Bounded cross-thread conservation: 300 tasklets each run one piece of work on the pool while an OS thread
        // kills them as they go. Every tasklet either got exactly its own result or was killed; nothing else, no
        // result delivered twice or to the wrong tasklet, no hang.
        const int Count = 300;
        var results = new int[Count];
        var outcomes = new string?[Count];
        var tasklets = new Tasklet[Count];
        int published = 0;
        using var scheduler = new Scheduler();
        IDisposable hold = scheduler.KeepAlive();
        for (int i = 0; i < Count; i++)
        {
            int index = i;
            tasklets[i] = scheduler.Go(async () =>
            {
                try
                {
                    results[index] = await Tasklet.RunInThread(_ => index + 1);
                    outcomes[index] = "result";
                }
                catch (TaskletExitException)
                {
                    outcomes[index] = "killed";
                    throw;
                }
            });
            published = i + 1;
        }

        var killer = new Thread(() =>
        {
            for (int i = 0; i < Count; i += 2)
            {
                Thread.SpinWait(i % 200);
                tasklets[i].Kill();
            }

            hold.Dispose();
        });
        Exception? failure = null;
        Thread runner = StartRun(scheduler, e => failure = e);
        killer.Start();
        Assert.True(killer.Join(s_guard), "hang guard: killer");
        Assert.True(runner.Join(s_guard), "hang guard: scheduler");
        Assert.Null(failure);
        Assert.Equal(Count, published);
        for (int i = 0; i < Count; i++)
        {
            Assert.False(tasklets[i].IsAlive);
            if (outcomes[i] == "result")
            {
                Assert.Equal(i + 1, results[i]);
                Assert.Null(tasklets[i].Exception);
            }
            else
            {
                Assert.True(i % 2 == 0, $"tasklet {i} was never killed but did not get its result ({outcomes[i] ?? "no outcome"})");
                Assert.IsType<TaskletExitException>(tasklets[i].Exception);
                Assert.Equal(0, results[i]);
            }
        }
    }

    [Fact]
    public void RunInThread_ManyAtOnce_RunInParallel_OnThreadsApartFromThePool()
    {
        // Eight works that can only finish together: they must all run at once. The thread pool starts with one
        // thread per core, and its threads deliver I/O completions; RunInThread's work must not take them.
        const int Works = 8;
        using var together = new Barrier(Works);
        var onPool = new bool[Works];
        Scheduler.Run(async () =>
        {
            var tasklets = new Tasklet[Works];
            for (int i = 0; i < Works; i++)
            {
                int index = i;
                tasklets[i] = Tasklet.Go(() => Tasklet.RunInThread(token =>
                {
                    onPool[index] = Thread.CurrentThread.IsThreadPoolThread;
                    Assert.True(together.SignalAndWait(s_guard, token), "hang guard: the works did not run at once");
                }).AsTask());
            }

            await Tasklet.WhenAll(tasklets);
        });
        Assert.All(onPool, Assert.False);
    }

    [Fact]
    public void RunInThread_FlowsTheCallersExecutionContext()
    {
        var requestId = new AsyncLocal<string?>();
        string? seen = null;
        Scheduler.Run(async () =>
        {
            requestId.Value = "request 7";
            await Tasklet.RunInThread(_ => seen = requestId.Value);
        });
        Assert.Equal("request 7", seen);
    }

    [Fact]
    public void WorkerThreads_BurstsRacingRetirement_EveryItemRunsOnce()
    {
        // Idle workers retire as soon as they find no work here, so bursts queued from several threads race workers
        // that time out, take back their idle unit, or find it claimed and wait for the release on its way.
        TimeSpan saved = WorkerThreads.IdleTimeout;
        WorkerThreads.IdleTimeout = TimeSpan.Zero;
        try
        {
            const int Producers = 3, Bursts = 40, PerBurst = 5;
            var runs = new int[Producers * Bursts * PerBurst];
            using var allDone = new CountdownEvent(runs.Length);
            var producers = new Thread[Producers];
            for (int p = 0; p < Producers; p++)
            {
                int producer = p;
                producers[p] = new Thread(() =>
                {
                    for (int b = 0; b < Bursts; b++)
                    {
                        for (int k = 0; k < PerBurst; k++)
                        {
                            int index = (((producer * Bursts) + b) * PerBurst) + k;
                            WorkerThreads.Queue(new CountingItem(runs, index, allDone));
                        }

                        Thread.Yield(); // between bursts, workers drain, go idle and retire
                    }
                });
                producers[p].Start();
            }

            foreach (Thread producer in producers)
            {
                Assert.True(producer.Join(s_guard), "hang guard: a producer");
            }

            Assert.True(allDone.Wait(s_guard), $"hang guard: {allDone.CurrentCount} items never ran");
            Assert.All(runs, count => Assert.Equal(1, count));
        }
        finally
        {
            WorkerThreads.IdleTimeout = saved;
        }
    }

    private sealed class CountingItem(int[] runs, int index, CountdownEvent done) : IThreadWorkItem
    {
        public void Execute()
        {
            Interlocked.Increment(ref runs[index]);
            done.Signal();
        }
    }

    // Runs the scheduler on a thread of its own; its failure, if any, goes to onFailure.
    private static Thread StartRun(Scheduler scheduler, Action<Exception> onFailure)
    {
        var runner = new Thread(() =>
        {
            try
            {
                scheduler.Run();
            }
            catch (Exception e)
            {
                onFailure(e);
            }
        });
        runner.Start();
        return runner;
    }
}
