using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// I/O priority (issue 13, seeds 002 and 004): a timer due, or a wake-up from another thread, runs before a tasklet
/// that gives way at a checkpoint resumes; timers fire at every switch.
/// </summary>
public class IoPriorityTests
{
    [Fact]
    public void Checkpoint_TimerDueWhileCpuTaskletRuns_FiresAtItsNextCheckpoint()
    {
        var time = new ManualTime();
        using var s = new Scheduler(new SchedulerOptions { Time = time });
        var order = new List<string>();
        SpawnSleeper(s, order, TimeSpan.FromMilliseconds(1));
        s.Go(async () =>
        {
            for (int i = 0; i < 8; i++)
            {
                time.Advance(TimeSpan.FromMilliseconds(0.3)); // CPU work that takes 0.3 ms of the scheduler's clock
                order.Add($"cpu {i}");
                await Tasklet.Checkpoint();
            }
        });
        s.RunUntilIdle();
        // Due at 1 ms: the checkpoint after "cpu 3" (1.2 ms) gives way, and the sleeper runs before "cpu 4".
        Assert.Equal(["cpu 0", "cpu 1", "cpu 2", "cpu 3", "timer", "cpu 4", "cpu 5", "cpu 6", "cpu 7"], order);
    }

    [Fact]
    public void Checkpoint_WakeUpPostedFromAnotherThread_RunsBeforeTheCheckpointingTaskletResumes()
    {
        using Scheduler s = SchedulerExtensions.Deterministic(); // a slice is 64 checkpoints: only the wake-up yields
        var ch = new Channel<int>();
        var order = new List<string>();
        s.Go(async () => order.Add($"received {await ch.ReceiveAsync()}"));
        s.Go(async () =>
        {
            var other = new Thread(() => Assert.True(ch.TrySend(7))); // wakes the receiver through the inbox
            other.Start();
            Assert.True(other.Join(TimeSpan.FromSeconds(30)), "hang guard");
            order.Add("cpu before checkpoint");
            await Tasklet.Checkpoint();
            order.Add("cpu after checkpoint");
        });
        s.RunUntilIdle();
        Assert.Equal(["cpu before checkpoint", "received 7", "cpu after checkpoint"], order);
    }

    [Fact]
    public void Checkpoint_IoCompletionTakenInBeforeTheCpuStep_StillRunsFirst()
    {
        // The loop takes the inbox in between steps, so an I/O completion (a foreign continuation, posted to the back)
        // that arrives while another tasklet runs is queued behind the CPU tasklet; the CPU tasklet's next checkpoint
        // must give way to it rather than run out its slice.
        using Scheduler s = SchedulerExtensions.Deterministic(); // a slice is 64 checkpoints
        var io = new TaskCompletionSource<int>();
        var order = new List<string>();
        s.Go(async () => order.Add($"read {await io.Task}"), "reader"); // a foreign await, as a socket read
        s.Go(() =>
        {
            var other = new Thread(() => io.SetResult(7)); // completes it: the continuation is posted to the inbox
            other.Start();
            Assert.True(other.Join(TimeSpan.FromSeconds(30)), "hang guard");
            return Task.CompletedTask; // ends: the loop takes the completion in behind the CPU tasklet
        }, "completer");
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                order.Add($"cpu {i}");
                await Tasklet.Checkpoint();
            }
        }, "cpu");
        s.Run(); // not RunOnce passes: Run takes the inbox in between steps, as a server's loop does
        Assert.Equal(["cpu 0", "read 7", "cpu 1", "cpu 2"], order);
    }

    [Fact]
    public void Checkpoint_TimerFiredByTheLoopBehindTheCpuTasklet_RunsFirst()
    {
        var time = new ManualTime();
        using var s = new Scheduler(new SchedulerOptions { Time = time });
        var order = new List<string>();
        SpawnSleeper(s, order, TimeSpan.FromMilliseconds(1));
        s.Go(() =>
        {
            time.Advance(TimeSpan.FromMilliseconds(2)); // the timer is due when this step ends: the loop fires it
            return Task.CompletedTask;
        }, "clock");
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                order.Add($"cpu {i}");
                await Tasklet.Checkpoint();
            }
        }, "cpu");
        s.RunUntilIdle();
        Assert.Equal(["cpu 0", "timer", "cpu 1", "cpu 2"], order);
    }

    [Theory]
    [InlineData(1, 100, 20_000, 64)]     // checkpoints far apart on the clock's scale: read it every 64 at most
    [InlineData(1, 20_000, 20_000, 1)]   // one checkpoint takes the whole interval: read at every one
    [InlineData(8, 20_000, 20_000, 8)]   // the rate held: the stride stays
    [InlineData(8, 40_000, 20_000, 4)]   // checkpoints got slower: fewer before the next read
    [InlineData(8, 10_000, 20_000, 16)]  // faster: more
    [InlineData(64, 10_000_000, 20_000, 1)] // a sudden long chunk: back to every checkpoint at once
    [InlineData(4, 0, 20_000, 64)]       // no tick elapsed (a coarse clock): the cap, no division by zero
    public void CheckpointStride_FollowsTheRateOfTheLastCheckpoints(int stride, long elapsed, long interval, int expected)
        => Assert.Equal(expected, Scheduler.NextCheckpointStride(stride, elapsed, interval));

    [Fact]
    public void Loop_TimerDue_FiresAtTheNextSwitch_NotAfter64Steps()
    {
        var time = new ManualTime();
        using var s = new Scheduler(new SchedulerOptions { Time = time });
        var order = new List<string>();
        SpawnSleeper(s, order, TimeSpan.FromMilliseconds(1));
        s.Go(async () =>
        {
            for (int i = 0; i < 4; i++)
            {
                if (i == 1)
                {
                    time.Advance(TimeSpan.FromMilliseconds(2));
                }

                order.Add($"yield {i}");
                await Tasklet.Yield(); // a switch: the due timer fires before the next pick
            }
        });
        s.Run(); // Run, not RunOnce: each RunOnce pass fires due timers at its start anyway
        // The timer fires at the switch after "yield 1" and queues the sleeper behind the yielder (a plain Yield keeps
        // FIFO order; only a checkpoint gives way to wake-ups). Before, timers waited for 64 steps or an empty queue:
        // "timer" came last.
        Assert.Equal(["yield 0", "yield 1", "yield 2", "timer", "yield 3"], order);
    }

    [Fact]
    public void RunFor_NothingReady_ReturnsAtOnceInsteadOfWaitingOutTheBudget()
    {
        // A tasklet asleep for an hour of real time: RunFor(1 h) used to wait out its budget. The join is a hang guard.
        using var s = new Scheduler();
        s.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)));
        bool alive = false;
        var runner = new Thread(() => alive = s.RunFor(TimeSpan.FromHours(1)));
        runner.Start();
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)), "hang guard: RunFor waited instead of returning");
        Assert.True(alive); // work remains: the sleeper
    }

    // A tasklet that sleeps on the scheduler's clock, then records "timer".
    private static void SpawnSleeper(Scheduler s, List<string> order, TimeSpan delay)
        => s.Go(async () =>
        {
            await Tasklet.Sleep(delay);
            order.Add("timer");
        });

    /// <summary>A clock the test moves by hand (only timestamps; the tests never let the scheduler idle on it).</summary>
    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Volatile.Read(ref _ticks);

        public void Advance(TimeSpan by) => Interlocked.Add(ref _ticks, by.Ticks);
    }
}
