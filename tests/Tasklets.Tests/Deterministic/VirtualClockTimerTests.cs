using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Deterministic;

/// <summary>
/// Issue 15: the virtual clock is a complete TimeProvider. Its CreateTimer threw NotSupportedException, so
/// Task.Delay(d, scheduler.Time), new CancellationTokenSource(d, scheduler.Time) and PeriodicTimer failed under Seed
/// (and PeriodicTimer's finalizer then crashed the process). Each test fails on that build.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class VirtualClockTimerTests
{
    private static readonly SchedulerOptions s_seeded = new() { Seed = 7 };

    [Fact]
    public void TaskDelay_OnTheVirtualClock_WaitsAnHourOfVirtualTime_AtOnce()
    {
        TimeSpan waited = Scheduler.Run(async () =>
        {
            TimeProvider time = Scheduler.Current!.Time;
            DateTimeOffset start = time.GetUtcNow();
            await Task.Delay(TimeSpan.FromHours(1), time);
            return time.GetUtcNow() - start;
        }, s_seeded);
        Assert.Equal(TimeSpan.FromHours(1), waited);
    }

    [Fact]
    public void CancellationTokenSource_OnTheVirtualClock_CancelsABlockedReceive_AtItsVirtualDeadline()
    {
        (Type Failure, TimeSpan At) outcome = Scheduler.Run(async () =>
        {
            TimeProvider time = Scheduler.Current!.Time;
            var silent = new Channel<int> { Name = "silent" };
            using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5), time);
            long start = time.GetTimestamp();
            Exception e = await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await silent.ReceiveAsync(cts.Token));
            return (e.GetType(), time.GetElapsedTime(start));
        }, s_seeded);
        Assert.True(typeof(OperationCanceledException).IsAssignableFrom(outcome.Failure));
        Assert.Equal(TimeSpan.FromMinutes(5), outcome.At);
    }

    [Fact]
    public void PeriodicTimer_OnTheVirtualClock_TicksOncePerPeriod()
    {
        List<TimeSpan> ticks = Scheduler.Run(async () =>
        {
            TimeProvider time = Scheduler.Current!.Time;
            long start = time.GetTimestamp();
            var seen = new List<TimeSpan>();
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(2), time);
            for (int i = 0; i < 3; i++)
            {
                Assert.True(await timer.WaitForNextTickAsync());
                seen.Add(time.GetElapsedTime(start));
            }

            return seen;
        }, s_seeded);
        Assert.Equal([TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(6)], ticks);
    }

    [Fact]
    public void CreateTimer_ChangedOrDisposed_OldScheduleNeverFires()
    {
        var fired = new List<string>();
        using var s = new Scheduler(s_seeded);
        s.Go(async () =>
        {
            TimeProvider time = Scheduler.Current!.Time;
            ITimer moved = time.CreateTimer(_ => fired.Add($"moved at {time.GetUtcNow():mm:ss}"), null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
            ITimer disposed = time.CreateTimer(_ => fired.Add("disposed"), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
            ITimer stopped = time.CreateTimer(_ => fired.Add("stopped"), null, TimeSpan.FromSeconds(5), Timeout.InfiniteTimeSpan);
            Assert.True(moved.Change(TimeSpan.FromSeconds(20), Timeout.InfiniteTimeSpan));
            disposed.Dispose();
            Assert.False(disposed.Change(TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan));
            Assert.True(stopped.Change(Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan));
            await Tasklet.Sleep(TimeSpan.FromMinutes(1));
            moved.Dispose();
            stopped.Dispose();
        });
        s.Run();
        Assert.Equal(["moved at 00:20"], fired);
    }

    [Fact]
    public void CreateTimer_ChangedToTheSameDueTime_FiresOnce()
    {
        // The replaced schedule and the new one are due in the same pass: only the current one may fire (found by
        // the cross-thread stress below: a changed timer fired twice).
        int fired = 0;
        using var s = new Scheduler(s_seeded);
        s.Go(async () =>
        {
            using ITimer timer = Scheduler.Current!.Time.CreateTimer(_ => fired++, null, TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan);
            Assert.True(timer.Change(TimeSpan.FromSeconds(10), Timeout.InfiniteTimeSpan));
            await Tasklet.Sleep(TimeSpan.FromMinutes(1));
        });
        s.Run();
        Assert.Equal(1, fired);
    }

    [Fact]
    public void CreateTimer_FromOutsideTheScheduler_FiresOnItsThread_OutsideEveryTasklet()
    {
        using var s = new Scheduler(s_seeded);
        int schedulerThread = 0;
        int callbackThread = 0;
        Tasklet? currentInCallback = null;
        var flow = new AsyncLocal<string?> { Value = "creator's context" };
        string? flowed = null;
        using ITimer timer = s.Time.CreateTimer(_ =>
        {
            callbackThread = Environment.CurrentManagedThreadId;
            currentInCallback = Tasklet.Current;
            flowed = flow.Value;
        }, null, TimeSpan.FromSeconds(30), Timeout.InfiniteTimeSpan); // created before Run: armed through the inbox
        s.Go(async () =>
        {
            schedulerThread = Environment.CurrentManagedThreadId;
            await Tasklet.Sleep(TimeSpan.FromMinutes(1));
        });
        s.Run();
        Assert.Equal(schedulerThread, callbackThread);
        Assert.Null(currentInCallback);
        Assert.Equal("creator's context", flowed);
    }

    [Fact]
    public void CreateTimer_CallbackThrows_RunReportsIt()
    {
        using var s = new Scheduler(s_seeded);
        s.Go(async () =>
        {
            using ITimer timer = Scheduler.Current!.Time.CreateTimer(_ => throw new InvalidOperationException("timer callback"), null, TimeSpan.FromSeconds(1), Timeout.InfiniteTimeSpan);
            await Tasklet.Sleep(TimeSpan.FromSeconds(2));
        });
        AggregateException failures = Assert.Throws<AggregateException>(s.Run);
        Assert.Contains(failures.InnerExceptions, e => e.InnerException is InvalidOperationException { Message: "timer callback" });
    }

    [Fact]
    public void CreateTimer_ChangedAndDisposedFromAnotherThreadWhileRunning_LiveOnesFireOnce_NoneTwice()
    {
        // Bounded cross-thread stress: an OS thread creates, changes and disposes timers while the scheduler runs on
        // another; their schedules reach the heap through the inbox. Each live timer fires exactly once, a timer
        // disposed right after its creation at most once (the scheduler may fire it first), none twice.
        const int Timers = 300;
        var fired = new int[Timers];
        using var s = new Scheduler(s_seeded);
        IDisposable hold = s.KeepAlive(); // Run idles (and moves virtual time to the timers) instead of returning
        var runner = new Thread(s.Run) { IsBackground = true };
        runner.Start();
        var creator = new Thread(() =>
        {
            for (int i = 0; i < Timers; i++)
            {
                int k = i;
                // A timer to be changed is created unarmed and armed by the change. Armed at creation, it could fire
                // before the change reached the scheduler (virtual time jumps to it once the scheduler idles), and
                // the change would then rightly arm it again: twice, as a System.Threading.Timer changed after firing.
                TimeSpan due = i % 3 == 1 ? Timeout.InfiniteTimeSpan : TimeSpan.FromSeconds(1 + (i % 7));
                ITimer timer = s.Time.CreateTimer(_ => Interlocked.Increment(ref fired[k]), null, due, Timeout.InfiniteTimeSpan);
                if (i % 3 == 0)
                {
                    timer.Dispose();
                }
                else if (i % 3 == 1)
                {
                    timer.Change(TimeSpan.FromSeconds(2), Timeout.InfiniteTimeSpan);
                }
            }
        });
        creator.Start();
        Assert.True(creator.Join(TimeSpan.FromSeconds(30)), "hang guard: the creator");
        var guard = System.Diagnostics.Stopwatch.StartNew();
        var spinner = default(SpinWait);
        while (Enumerable.Range(0, Timers).Any(i => i % 3 != 0 && Volatile.Read(ref fired[i]) == 0) && guard.Elapsed < TimeSpan.FromSeconds(30))
        {
            spinner.SpinOnce(); // until every live timer has fired (a state to reach, not a time to wait)
        }

        hold.Dispose();
        _ = s.InvokeAsync(() => { }); // wakes Run, which then finds nothing alive and no hold, and returns
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)), "hang guard: Run");
        for (int i = 0; i < Timers; i++)
        {
            Assert.True(i % 3 == 0 ? fired[i] <= 1 : fired[i] == 1, $"timer {i} fired {fired[i]} times");
        }
    }
}
