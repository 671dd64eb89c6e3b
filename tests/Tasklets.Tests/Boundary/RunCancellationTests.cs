using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Boundary;

/// <summary>Scheduler.Run(CancellationToken), RunAsync and KillAll (issue 16).</summary>
[Collection(NonParallel.Name)] // schedulers inside Run on other threads, waiting on holds: process-wide deadlock state
public class RunCancellationTests
{
    private static readonly TimeSpan HangGuard = RunningScheduler.Guard;

    [Fact]
    public void Run_TokenCancelled_KillsEveryTaskletWaitsForTheirFinallyThenThrows()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        var ch = new Channel<int>();
        int finallies = 0;
        using IDisposable hold = s.KeepAlive(); // cancellation must end Run despite the hold
        for (int i = 0; i < 3; i++)
        {
            s.Go(async () =>
            {
                try
                {
                    await ch.ReceiveAsync();
                }
                finally
                {
                    finallies++;
                }
            });
        }

        s.Go(async () =>
        {
            await Tasklet.Yield();
            cts.Cancel(); // from a tasklet: the stop is taken in before the next step
            Tasklet.Go(() => throw new InvalidOperationException("spawned before the stop was taken in: killed before it ran"));
            await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
        });

        OperationCanceledException e;
        using (HangWatch.Start(() =>
        {
            s.KillAll();
            hold.Dispose();
        }))
        {
            e = Assert.Throws<OperationCanceledException>(() => s.Run(cts.Token));
        }

        Assert.Equal(cts.Token, e.CancellationToken);
        Assert.Equal(3, finallies);
        Assert.Empty(s.Tasklets);
    }

    [Fact]
    public void Run_TokenAlreadyCancelled_KillsBeforeAnyStepAndThrows()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        bool ran = false;
        Tasklet t = s.Go(() =>
        {
            ran = true;
            return Task.CompletedTask;
        });
        Assert.Throws<OperationCanceledException>(() => s.Run(new CancellationToken(canceled: true)));
        Assert.False(ran);
        Assert.IsType<TaskletExitException>(t.Exception);
    }

    [Fact]
    public void Run_TokenNotCancelled_ReturnsWhenTaskletsEndAndALaterCancelChangesNothing()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        int done = 0;
        s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromSeconds(5));
            done++;
        });
        s.Run(cts.Token);
        Assert.Equal(1, done);
        cts.Cancel(); // after the run: its request (none was posted: unregistered) cannot stop a later run
        bool laterRan = false;
        s.Go(() =>
        {
            laterRan = true;
            return Task.CompletedTask;
        });
        s.Run();
        Assert.True(laterRan);
    }

    [Fact]
    public void Run_CancelledWhileAnotherThreadRunsIt_RefusesWithoutStoppingTheOwner()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Exception? nested = null;
        bool secondRan = false;
        s.Go(() =>
        {
            // Refused (a nested Run), and its cancelled token's stop request must not stop the run in progress.
            nested = Record.Exception(() => s.Run(new CancellationToken(canceled: true)));
            return Task.CompletedTask;
        });
        s.Go(async () =>
        {
            await Tasklet.Yield();
            secondRan = true;
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(nested);
        Assert.True(secondRan);
    }

    [Fact]
    public async Task RunAsync_CompletesWhenRunWouldReturn_OnADedicatedThread()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        bool? onPool = null;
        s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromSeconds(1));
            onPool = Thread.CurrentThread.IsThreadPoolThread;
        });
        Task run = s.RunAsync();
        await run.WaitAsync(HangGuard);
        Assert.False(onPool);
    }

    [Fact]
    public async Task RunAsync_Failure_FaultsTheTaskWithRunsException()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        s.Go(() => throw new InvalidOperationException("boom"));
        Task run = s.RunAsync();
        await Assert.ThrowsAsync<AggregateException>(() => run.WaitAsync(HangGuard));
        Assert.True(run.IsFaulted);
        var unobserved = Assert.IsType<AggregateException>(run.Exception!.InnerException);
        Assert.IsType<InvalidOperationException>(unobserved.InnerException);
    }

    [Fact]
    public async Task RunAsync_TokenCancelled_TaskIsCancelledAfterTheTaskletsDied()
    {
        using var s = new Scheduler();
        using var cts = new CancellationTokenSource();
        var started = new ManualResetEventSlim();
        bool finallyRan = false;
        s.Go(async () =>
        {
            try
            {
                started.Set();
                await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
            }
            finally
            {
                finallyRan = true;
            }
        });
        using IDisposable hold = s.KeepAlive(); // no deadlock report while the sleeper waits for the cancel
        Task run = s.RunAsync(cts.Token);
        Assert.True(started.Wait(HangGuard));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(HangGuard));
        Assert.True(run.IsCanceled);
        Assert.True(finallyRan);
    }

    [Fact]
    public async Task KillAll_FromAnotherThread_KillsEveryTaskletOfTheRunningScheduler()
    {
        using var s = new Scheduler();
        var ready = new CountdownEvent(2);
        int finallies = 0;
        for (int i = 0; i < 2; i++)
        {
            s.Go(async () =>
            {
                try
                {
                    ready.Signal();
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                finally
                {
                    Interlocked.Increment(ref finallies);
                }
            });
        }

        IDisposable hold = s.KeepAlive(); // the sleepers are no deadlock while the test thread still acts
        Task run = s.RunAsync();
        Assert.True(ready.Wait(HangGuard));
        s.KillAll();
        hold.Dispose(); // after the kill's post: the owner takes the kill in before it can find itself idle
        await run.WaitAsync(HangGuard);
        Assert.Equal(2, finallies);
    }

    [Fact]
    public void KillAll_FromATasklet_KillsTheOthersAtOnceAndItselfAtItsNextOperation()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Tasklet other = s.Go(async () => await ch.ReceiveAsync());
        Exception? self = null;
        s.Go(async () =>
        {
            await Tasklet.Yield();
            s.KillAll();
            self = await Record.ExceptionAsync(async () => await Tasklet.Yield());
        });
        s.RunUntilIdle();
        Assert.IsType<TaskletExitException>(self);
        Assert.IsType<TaskletExitException>(other.Exception);
    }
}
