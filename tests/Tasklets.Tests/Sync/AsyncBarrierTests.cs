using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Sync;

public class AsyncBarrierTests
{
    [Fact]
    public void SignalAndWaitAsync_AllPassTogether_EachPhase_WithDistinctArrivalIndexes()
    {
        using var s = new Scheduler();
        var log = new List<string>();
        var indexes = new List<int>();
        var barrier = new AsyncBarrier(3) { Name = "step" };
        for (int p = 0; p < 3; p++)
        {
            int id = p;
            s.Go(async () =>
            {
                for (int round = 0; round < 4; round++)
                {
                    log.Add($"{round}");
                    int index = await barrier.SignalAndWaitAsync();
                    lock (indexes)
                    {
                        indexes.Add(index);
                    }
                }
            });
        }

        s.RunToEnd();

        // Nobody starts round r+1 before everyone has finished round r.
        Assert.Equal(["0", "0", "0", "1", "1", "1", "2", "2", "2", "3", "3", "3"], log);
        for (int round = 0; round < 4; round++)
        {
            Assert.Equal([0, 1, 2], indexes.Skip(round * 3).Take(3).Order());
        }

        Assert.Equal(4, barrier.Phase);
        Assert.False(barrier.IsBroken);
    }

    [Fact]
    public async Task SignalAndWaitAsync_OneParticipant_PassesAtOnce()
    {
        var barrier = new AsyncBarrier(1);
        ValueTask<int> pass = barrier.SignalAndWaitAsync();
        Assert.True(pass.IsCompletedSuccessfully);
        Assert.Equal(0, await pass);
        Assert.Equal(1, barrier.Phase);
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncBarrier(0));
    }

    [Fact]
    public void Kill_OfAWaitingParticipant_BreaksTheBarrierForEveryone_UntilReset()
    {
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(3) { Name = "step" };
        Exception? other = null, late = null;
        Tasklet? victim = null;
        s.Go(async () =>
        {
            victim = Tasklet.Go(async () => await barrier.SignalAndWaitAsync(), "victim");
            Tasklet.Go(async () => other = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync()), "other");
            await Tasklet.Yield(); // both wait: 2 of 3 arrived
            victim.Kill();
            await Tasklet.Yield(); // the victim withdraws: the barrier breaks
            Assert.True(barrier.IsBroken);
            late = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync());
            barrier.Reset();
            Assert.False(barrier.IsBroken);
        });
        s.RunToEnd();
        Assert.IsType<TaskletExitException>(victim!.Exception);
        var broken = Assert.IsType<BrokenBarrierException>(other);
        Assert.Contains("'step' is broken", broken.Message);
        Assert.IsType<BrokenBarrierException>(late);
        Assert.Equal(0, barrier.Phase);
    }

    [Fact]
    public void Kill_BeforeTheLastArrival_IsSeenByTheTrip_WhichBreaksInstead()
    {
        // The victim's wait is claimed by the kill, and the last participant arrives before the victim has run to
        // withdraw: the arrival that would complete the phase sees the participant gone and breaks the barrier.
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(3);
        Exception? other = null, last = null;
        s.Go(async () =>
        {
            Tasklet victim = Tasklet.Go(async () => await barrier.SignalAndWaitAsync());
            Tasklet.Go(async () => other = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync()));
            await Tasklet.Yield();
            victim.Kill();
            last = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync());
        });
        s.RunToEnd();
        Assert.IsType<BrokenBarrierException>(other);
        Assert.IsType<BrokenBarrierException>(last);
        Assert.Equal(0, barrier.Phase);
    }

    [Fact]
    public void Kill_AfterTheTrip_ParticipantCountsAsArrived_AndRaisesItsKillLater()
    {
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(2);
        int passedWith = -1;
        Exception? atNext = null;
        s.Go(async () =>
        {
            Tasklet first = Tasklet.Go(async () =>
            {
                passedWith = await barrier.SignalAndWaitAsync();
                atNext = await Record.ExceptionAsync(async () => await Tasklet.Yield());
            });
            await Tasklet.Yield();
            Assert.Equal(1, await barrier.SignalAndWaitAsync()); // the trip: first is claimed and passes
            first.Kill();                                       // too late for that wait
        });
        s.RunToEnd();
        Assert.Equal(0, passedWith);
        Assert.IsType<TaskletExitException>(atNext);
        Assert.Equal(1, barrier.Phase);
        Assert.False(barrier.IsBroken);
    }

    [Fact]
    public void Timeout_OfAWaitingParticipant_BreaksTheBarrier()
    {
        using var s = SchedulerExtensions.Deterministic();
        AsyncBarrier? barrier = null;
        Exception? timedOut = null, other = null;
        s.Go(async () =>
        {
            barrier = new AsyncBarrier(3); // made inside: a wait left hanging is reported as a deadlock
            Tasklet.Go(async () =>
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    timedOut = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync());
                }
            });
            Tasklet.Go(async () => other = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync()));
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(timedOut);
        Assert.IsType<BrokenBarrierException>(other);
        Assert.True(barrier!.IsBroken);
    }

    [Fact]
    public void Cancel_BeforeSignalling_LeavesTheBarrierAlone_WhileParked_BreaksIt()
    {
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(2);
        ValueTask<int> precancelled = barrier.SignalAndWaitAsync(new CancellationToken(canceled: true));
        Assert.True(precancelled.IsCanceled);
        Assert.Contains("(0 of 2 arrived)", barrier.Describe());

        Exception? cancelled = null;
        using var cts = new CancellationTokenSource();
        s.Go(async () => cancelled = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync(cts.Token)));
        s.RunUntilIdle();
        cts.Cancel();
        s.RunUntilIdle();
        Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
        Assert.True(barrier.IsBroken);
    }

    [Fact]
    public void Reset_WhileParticipantsWait_TheyGetBrokenBarrier_ThenItWorksAgain()
    {
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(2);
        Exception? waiting = null;
        s.Go(async () => waiting = await Record.ExceptionAsync(async () => await barrier.SignalAndWaitAsync()));
        s.RunUntilIdle();
        barrier.Reset();
        s.RunUntilIdle();
        Assert.IsType<BrokenBarrierException>(waiting);
        Assert.False(barrier.IsBroken);

        int[] got = new int[2];
        s.Go(async () => got[0] = await barrier.SignalAndWaitAsync());
        s.Go(async () => got[1] = await barrier.SignalAndWaitAsync());
        s.RunUntilIdle();
        Assert.Equal([0, 1], got);
    }

    [Fact]
    public void SignalAndWait_Blocking_InsideTaskletThrows_OsThreadsMeetTasklets()
    {
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(3);
        InvalidOperationException? ex = null;
        s.Go(() =>
        {
            ex = Assert.Throws<InvalidOperationException>(() => barrier.SignalAndWait());
            return Task.CompletedTask;
        });
        s.Run();
        Assert.Contains("SignalAndWaitAsync", ex!.Message);

        var threads = new Thread[2];
        var seen = new int[2];
        for (int i = 0; i < 2; i++)
        {
            int k = i;
            threads[i] = new Thread(() => seen[k] = barrier.SignalAndWait()) { IsBackground = true };
            threads[i].Start();
        }

        int mine = barrier.SignalAndWait();
        foreach (Thread t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(30)), "hang guard");
        }

        Assert.Equal([0, 1, 2], new[] { seen[0], seen[1], mine }.Order());
    }

    [Fact]
    public void Dump_NamesTheBarrierAndTheArrivals()
    {
        using var s = new Scheduler();
        var barrier = new AsyncBarrier(3) { Name = "step" };
        Tasklet a = s.Go(async () => await barrier.SignalAndWaitAsync(), "a");
        Tasklet b = s.Go(async () => await barrier.SignalAndWaitAsync(), "b");
        s.RunUntilIdle();
        string dump = s.Dump();
        Assert.Contains($"{a.Id} 'a' Blocked: wait on barrier 'step' (2 of 3 arrived)", dump);
        Assert.Contains($"{b.Id} 'b' Blocked: wait on barrier 'step' (2 of 3 arrived)", dump);
        s.Go(async () => await barrier.SignalAndWaitAsync());
        s.RunUntilIdle();
        Assert.False(a.IsAlive);
        Assert.False(b.IsAlive);
    }
}

// Deadlock detection waits until every scheduler inside Run() in the process is stuck, so these run alone.
[Collection(NonParallel.Name)]
public class AsyncBarrierDeadlockTests
{
    [Fact]
    public void Run_AParticipantNeverArrives_ReportsTheWaitingParticipants()
    {
        using var s = new Scheduler();
        Tasklet? a = null, b = null;
        s.Go(async () =>
        {
            var barrier = new AsyncBarrier(3) { Name = "step" };
            a = Tasklet.Go(async () => await barrier.SignalAndWaitAsync(), "a");
            b = Tasklet.Go(async () => await barrier.SignalAndWaitAsync(), "b");
        });

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Equal(2, ex.Blocked.Count);
        Assert.Contains($"tasklet {a!.Id} 'a': wait on barrier 'step' (2 of 3 arrived)", ex.Message);
        Assert.Contains($"tasklet {b!.Id} 'b': wait on barrier 'step' (2 of 3 arrived)", ex.Message);
    }
}

