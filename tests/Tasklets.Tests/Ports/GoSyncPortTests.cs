using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Ports;

/// <summary>
/// Ports of the behaviours golang/go <c>src/sync/waitgroup_test.go</c> checks: TestWaitGroup (two groups, a
/// round that must not release early, repeated to prove the group resets), TestWaitGroupMisuse (a negative counter
/// panics; here it throws and the count is unchanged), TestWaitGroupRace (Add/Done/Wait across parallel parties),
/// and reuse of a group while the waiters of the previous round have not resumed yet (which Go reports as misuse;
/// here it is safe by construction, and the test proves it).
/// </summary>
/// <remarks>
/// A goroutine is a tasklet. Where Go relies on GOMAXPROCS &gt; 1 the parties are tasklets of two schedulers, each
/// on its own thread, and an OS thread using the blocking <c>Wait</c>. Counts are scaled down from Go's where said.
/// Every join has a hang guard; assertions are invariants, never timings. Non-parallel: the races need the cores.
/// </remarks>
[Collection(NonParallel.Name)]
public class GoSyncPortTests
{
    private static readonly TimeSpan s_hangGuard = TimeSpan.FromSeconds(30);

    /// <summary>TestWaitGroup: n tasklets Done on the first group and Wait on the second; the second must not release early.</summary>
    [Fact]
    public void WaitGroup_TwoGroups_NoEarlyRelease_ResetsAcrossRounds()
    {
        using var s = SchedulerExtensions.Deterministic();
        s.Go(async () =>
        {
            var first = new WaitGroup();
            var second = new WaitGroup();
            for (int round = 0; round < 8; round++)
            {
                const int n = 16;
                first.Add(n);
                second.Add(n);
                var exited = new Channel<bool>(n);
                for (int i = 0; i < n; i++)
                {
                    Tasklet.Go(async () =>
                    {
                        first.Done();
                        await second.WaitAsync();
                        await exited.SendAsync(true);
                    });
                }

                await first.WaitAsync();
                for (int i = 0; i < n; i++)
                {
                    await Tasklet.Yield(); // give any wrongly released tasklet the chance to report
                    Assert.False(exited.TryReceive(out _), $"round {round}: the second group released a tasklet early");
                    second.Done();
                }

                for (int i = 0; i < n; i++)
                {
                    await exited.ReceiveAsync(); // a tasklet never released would make this a deadlock
                }

                Assert.Equal(0, first.Count);
                Assert.Equal(0, second.Count);
            }
        });
        s.Run();
    }

    /// <summary>TestWaitGroupMisuse: Add(1), Done(), Done() is a negative counter; Go panics, here it throws.</summary>
    [Fact]
    public void WaitGroup_Misuse_NegativeCounterThrowsAndChangesNothing()
    {
        var group = new WaitGroup();
        group.Add(1);
        group.Done();
        var ex = Assert.Throws<InvalidOperationException>(group.Done);
        Assert.Contains("would go negative", ex.Message);
        Assert.Equal(0, group.Count);
        group.Add(1); // still usable
        Assert.Equal(1, group.Count);
    }

    /// <summary>
    /// Reuse before the previous Wait has returned (Go's TestWaitGroupMisuse2 scenario): the waiter of round 1 is
    /// woken, the next round starts before it runs; it still returns from round 1, and round 2 waits for its own count.
    /// </summary>
    [Fact]
    public void WaitGroup_ReusedBeforeThePreviousWaiterResumed_BothRoundsAreExact()
    {
        using var s = new Scheduler();
        var group = new WaitGroup();
        bool firstReturned = false, secondReturned = false;
        group.Add(1);
        s.Go(async () => { await group.WaitAsync(); firstReturned = true; });
        s.RunUntilIdle();
        group.Done();   // round 1 ends: the waiter is claimed, not yet run
        group.Add(1);   // round 2 starts at once
        s.Go(async () => { await group.WaitAsync(); secondReturned = true; });
        s.RunUntilIdle();
        Assert.True(firstReturned);
        Assert.False(secondReturned);
        group.Done();
        s.RunUntilIdle();
        Assert.True(secondReturned);
    }

    /// <summary>
    /// TestWaitGroupRace: each round adds 2, two parallel parties (tasklets of two schedulers on two threads)
    /// increment a counter and call Done, and an OS thread's blocking Wait must see both increments. Go runs 1000
    /// rounds; so does this.
    /// </summary>
    [Fact]
    public void WaitGroup_AddDoneWaitRace_WaiterSeesEveryDone()
    {
        const int rounds = 1000;
        var group = new WaitGroup();
        var toA = new Channel<int>(1);
        var toB = new Channel<int>(1);
        int n = 0;
        using var a = new Scheduler();
        using var b = new Scheduler();
        foreach ((Scheduler scheduler, Channel<int> starts) in new[] { (a, toA), (b, toB) })
        {
            scheduler.Go(async () =>
            {
                await foreach (int _ in starts)
                {
                    Interlocked.Increment(ref n);
                    group.Done();
                }
            });
        }

        Exception? failure = null;
        var threads = new[] { a, b }.Select(scheduler => new Thread(() =>
        {
            try
            {
                scheduler.Run();
            }
            catch (Exception e)
            {
                failure = e;
            }
        })
        { IsBackground = true }).ToArray();
        foreach (Thread t in threads)
        {
            t.Start();
        }

        for (int round = 0; round < rounds; round++)
        {
            group.Add(2);
            toA.Send(round);
            toB.Send(round);
            group.Wait();
            int seen = Volatile.Read(ref n);
            Assert.True(seen == 2 * (round + 1), $"round {round}: Wait returned after {seen - (2 * round)} of 2 Done calls");
        }

        toA.Close();
        toB.Close();
        foreach (Thread t in threads)
        {
            Assert.True(t.Join(s_hangGuard), "hang guard: a scheduler's Run() did not return");
        }

        Assert.Null(failure);
        Assert.Equal(0, group.Count);
    }
}
