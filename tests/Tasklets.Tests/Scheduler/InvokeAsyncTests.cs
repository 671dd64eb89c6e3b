using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>Scheduler.InvokeAsync: a delegate run as a step of the scheduler, never in parallel with its tasklets.</summary>
public class InvokeAsyncTests
{
    [Fact]
    public async Task InvokeAsync_FromAnotherThread_RunsAsAStepOutsideAnyTasklet()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Scheduler? schedulerInside = null;
        Tasklet? taskletInside = null;
        ValueTask<int> result = default;
        var caller = new Thread(() =>
        {
            result = s.InvokeAsync(() =>
            {
                schedulerInside = Scheduler.Current;
                taskletInside = Tasklet.Current;
                return 42;
            });
        });
        caller.Start();
        Assert.True(caller.Join(TimeSpan.FromSeconds(30)), "hang guard");
        Assert.False(result.IsCompleted); // queued: nothing runs the scheduler yet
        s.RunUntilIdle();
        Assert.True(result.IsCompletedSuccessfully); // the step ran in RunUntilIdle
        Assert.Equal(42, await result);
        Assert.Same(s, schedulerInside);
        Assert.Null(taskletInside);
    }

    [Fact]
    public void InvokeAsync_Exception_GoesToTheCaller_AndTheSchedulerGoesOn()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        ValueTask failing = s.InvokeAsync(() => throw new InvalidOperationException("from the step"));
        int after = 0;
        s.Go(() =>
        {
            after++;
            return Task.CompletedTask;
        });
        s.RunUntilIdle();
        var thrown = Assert.Throws<InvalidOperationException>(() => failing.AsTask().GetAwaiter().GetResult());
        Assert.Equal("from the step", thrown.Message);
        Assert.Equal(1, after);
    }

    [Fact]
    public async Task InvokeAsync_NeverOverlapsAStep_BetweenStepsOfATaskletThatYields()
    {
        // The invocations run between the tasklet's steps: each sees a state a step left, in queue order.
        int a = 0, b = 0;
        using Scheduler s = SchedulerExtensions.Deterministic();
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                a++;
                await Tasklet.Yield(); // never awaits between the two writes
                b++;
                await Tasklet.Yield();
            }
        });
        ValueTask<(int, int)> first = s.InvokeAsync(() => (a, b));
        s.RunOnce(); // the tasklet's first step (a = 1), then the invocation, queued before its yield
        ValueTask<(int, int)> second = s.InvokeAsync(() => (a, b));
        s.RunUntilIdle();
        Assert.Equal((1, 0), await first);
        Assert.Equal((1, 1), await second); // queued behind the tasklet's yield of its first step: after its second
        Assert.Equal(3, a);
        Assert.Equal(3, b);
    }

    [Fact]
    public void InvokeAsync_RealThreads_AllRunOnTheSchedulersThread()
    {
        const int Calls = 2_000;
        using var s = new Scheduler();
        int schedulerThread = 0;
        int counter = 0; // touched only inside invocations: no lock, since they never run in parallel
        using IDisposable hold = s.KeepAlive();
        var runner = new Thread(() =>
        {
            schedulerThread = Environment.CurrentManagedThreadId;
            s.Run();
        });
        runner.Start();
        var callers = new Thread[2];
        var wrongThread = 0;
        for (int c = 0; c < callers.Length; c++)
        {
            callers[c] = new Thread(() =>
            {
                for (int i = 0; i < Calls; i++)
                {
                    s.InvokeAsync(() =>
                    {
                        if (Environment.CurrentManagedThreadId != Volatile.Read(ref schedulerThread))
                        {
                            Interlocked.Increment(ref wrongThread);
                        }

                        counter++;
                    }).AsTask().GetAwaiter().GetResult();
                }
            });
            callers[c].Start();
        }

        foreach (Thread caller in callers)
        {
            Assert.True(caller.Join(TimeSpan.FromSeconds(60)), "hang guard");
        }

        hold.Dispose();
        Assert.True(runner.Join(TimeSpan.FromSeconds(60)), "hang guard");
        Assert.Equal(0, wrongThread);
        Assert.Equal(2 * Calls, counter);
    }

    [Fact]
    public void RunFor_BudgetSpentWithOnlyAnInvocationQueued_ReportsWorkLeft()
    {
        // A step's InvokeAsync goes straight to the run queue; with no tasklet alive, a RunFor that ran out of budget
        // before it must still say that work is left, or a host that trusts the answer stops pumping (review finding).
        using Scheduler s = SchedulerExtensions.Deterministic();
        bool ran = false;
        s.Go(() =>
        {
            _ = s.InvokeAsync(() => ran = true);
            return Task.CompletedTask;
        });
        Assert.True(s.RunFor(TimeSpan.Zero)); // a zero budget: back after the tasklet's step
        Assert.False(ran);
        Assert.Empty(s.Tasklets);
        Assert.False(s.RunFor(TimeSpan.FromSeconds(30)));
        Assert.True(ran);
    }
}
