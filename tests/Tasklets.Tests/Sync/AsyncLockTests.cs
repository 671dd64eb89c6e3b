using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Sync;

// Deadlock detection looks at every scheduler inside Run() in the process: run alone.
[Collection(NonParallel.Name)]
public class AsyncLockTests
{
    // ------------------------------------------------------------------ basics

    [Fact]
    public void LockAsync_Free_CompletesSynchronouslyAndOwnerIsTheTasklet()
    {
        using var s = new Scheduler();
        s.Go(async () =>
        {
            var l = new AsyncLock { Name = "db" };
            ValueTask<AsyncLock.Releaser> pending = l.LockAsync();
            Assert.True(pending.IsCompletedSuccessfully);
            using (await pending)
            {
                Assert.True(l.IsLocked);
                Assert.Same(Tasklet.Current, l.Owner);
            }

            Assert.False(l.IsLocked);
            Assert.Null(l.Owner);
        });
        s.Run();
    }

    [Fact]
    public void TryLock_HeldByAnother_ReturnsFalseAndDefaultReleaserIsHarmless()
    {
        var l = new AsyncLock();
        using var s = new Scheduler();
        bool second = true;
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                await Tasklet.Yield();
            }
        });
        s.Go(() =>
        {
            second = l.TryLock(out AsyncLock.Releaser r);
            r.Dispose(); // default: nothing
            return Task.CompletedTask;
        });
        s.Run();
        Assert.False(second);
        Assert.False(l.IsLocked);
        Assert.True(l.TryLock(out AsyncLock.Releaser outside));
        Assert.Null(l.Owner); // held by a party that is not a tasklet
        Assert.True(l.IsLocked);
        outside.Dispose();
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Release_Twice_ThrowsAndLeavesTheNextAcquisitionAlone()
    {
        var l = new AsyncLock { Name = "db" };
        Assert.True(l.TryLock(out AsyncLock.Releaser first));
        first.Dispose();
        var unlocked = Assert.Throws<InvalidOperationException>(first.Dispose);
        Assert.Contains("not locked", unlocked.Message);

        Assert.True(l.TryLock(out AsyncLock.Releaser second));
        var stale = Assert.Throws<InvalidOperationException>(first.Dispose); // a stale releaser cannot release acquisition 2
        Assert.Contains("released already", stale.Message);
        Assert.True(l.IsLocked);
        second.Dispose();
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Release_ByAnotherTasklet_ThrowsSayingOnlyTheOwnerMay()
    {
        using var s = new Scheduler();
        var l = new AsyncLock { Name = "db" };
        AsyncLock.Releaser shared = default;
        Exception? foreign = null;
        Exception? fromThread = null;
        Tasklet? owner = null;
        owner = s.Go(async () =>
        {
            shared = await l.LockAsync();
            await Tasklet.Yield();
            await Tasklet.Yield();
            shared.Dispose();
        }, "writer");
        s.Go(async () =>
        {
            await Tasklet.Yield();
            foreign = Record.Exception(shared.Dispose);
            fromThread = await Task.Run(() => Record.Exception(shared.Dispose));
        }, "intruder");
        s.Run();
        Assert.IsType<InvalidOperationException>(foreign);
        Assert.Contains($"lock 'db' held by tasklet {owner.Id} 'writer'", foreign!.Message);
        Assert.Contains("only the owner may release", foreign.Message);
        Assert.IsType<InvalidOperationException>(fromThread);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void LockAsync_NonReentrant_ReacquiredByOwner_ThrowsWouldDeadlock()
    {
        using var s = new Scheduler();
        Exception? error = null;
        bool tryAgain = true;
        s.Go(async () =>
        {
            var l = new AsyncLock { Name = "db" };
            using (await l.LockAsync())
            {
                error = await Record.ExceptionAsync(async () => await l.LockAsync());
                tryAgain = l.TryLock(out _);
            }
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("would wait for itself", error!.Message);
        Assert.Contains("reentrant: true", error.Message);
        Assert.False(tryAgain);
    }

    [Fact]
    public void LockAsync_Reentrant_CountsNestedAcquisitionsAndReleasesInnermostFirst()
    {
        using var s = new Scheduler();
        var l = new AsyncLock(reentrant: true);
        Exception? outOfOrder = null;
        bool otherGotItWhileNested = false;
        s.Go(async () =>
        {
            AsyncLock.Releaser outer = await l.LockAsync();
            AsyncLock.Releaser inner = await l.LockAsync();
            Assert.True(l.TryLock(out AsyncLock.Releaser third));
            third.Dispose();
            outOfOrder = Record.Exception(outer.Dispose);
            inner.Dispose();
            Assert.True(l.IsLocked);
            await Tasklet.Yield(); // the other tasklet tries while the outer acquisition is still held
            outer.Dispose();
            Assert.False(l.IsLocked);
        });
        s.Go(() =>
        {
            otherGotItWhileNested = l.TryLock(out _);
            return Task.CompletedTask;
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(outOfOrder);
        Assert.Contains("innermost first", outOfOrder!.Message);
        Assert.False(otherGotItWhileNested);
    }

    [Fact]
    public void LockAsync_ArgumentsAndTokens_CancelledTokenTakesNothing()
    {
        using var s = new Scheduler();
        var l = new AsyncLock();
        Exception? error = null;
        s.Go(async () =>
        {
            using var cts = new CancellationTokenSource();
            cts.Cancel();
            error = await Record.ExceptionAsync(async () => await l.LockAsync(cts.Token));
        });
        s.Run();
        Assert.IsAssignableFrom<OperationCanceledException>(error);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Lock_InsideTasklet_ThrowsSayingUseLockAsync()
    {
        using var s = new Scheduler();
        Exception? error = null;
        s.Go(() =>
        {
            error = Record.Exception(() => new AsyncLock().Lock());
            return Task.CompletedTask;
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("LockAsync", error!.Message);
    }

    [Fact]
    public async Task Lock_OsThread_WaitsForTaskletAndIsHandedTheLock()
    {
        var l = new AsyncLock { Name = "shared" };
        using var s = new Scheduler();
        var held = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                held.SetResult();
                await release.Task; // a foreign await: the scheduler idles, the lock stays held
            }
        });
        var runner = new Thread(s.Run) { IsBackground = true };
        runner.Start();
        await held.Task;
        Task<bool> blocked = Task.Factory.StartNew(
            () =>
            {
                using (l.Lock())
                {
                    return l.IsLocked && l.Owner is null;
                }
            },
            CancellationToken.None,
            TaskCreationOptions.LongRunning,
            TaskScheduler.Default);
        release.SetResult();
        Assert.True(await blocked.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)));
        Assert.False(l.IsLocked);
    }

    // ------------------------------------------------------------------ FIFO handoff, no barging (Go's Mutex)

    [Fact]
    public void Release_HandsToWaitersInFifoOrder_NoBargingByNewcomer()
    {
        using var s = new Scheduler();
        var order = new List<string>();
        bool bargerGotIt = true;
        s.Go(async () =>
        {
            var l = new AsyncLock();
            AsyncLock.Releaser held = await l.LockAsync();
            foreach (string name in new[] { "a", "b", "c" })
            {
                Tasklet.Go(async () =>
                {
                    using (await l.LockAsync())
                    {
                        order.Add(name);
                        await Tasklet.Yield();
                    }
                }, name);
            }

            await Tasklet.Yield(); // a, b, c queue in that order
            held.Dispose();        // handed to a: not free
            Assert.True(l.IsLocked);
            bargerGotIt = l.TryLock(out _);
            Assert.Equal("a", l.Owner!.Name); // owned by a before it even ran
        });
        s.Run();
        Assert.False(bargerGotIt);
        Assert.Equal(["a", "b", "c"], order);
    }

    [Fact]
    public void Release_UnderContentionAcrossManyRounds_ServesEveryWaiterInArrivalOrder()
    {
        // Go's starvation mode: a waiter is never overtaken. Each tasklet re-queues after its turn, so the service
        // order must be round-robin.
        using var s = Scheduler_Deterministic();
        var served = new List<int>();
        s.Go(async () =>
        {
            var l = new AsyncLock();
            for (int i = 0; i < 4; i++)
            {
                int id = i;
                Tasklet.Go(async () =>
                {
                    for (int round = 0; round < 5; round++)
                    {
                        using (await l.LockAsync())
                        {
                            served.Add(id);
                            await Tasklet.Yield();
                        }
                    }
                });
            }

            await Task.CompletedTask;
        });
        s.Run();
        int[] expected = [.. Enumerable.Range(0, 20).Select(k => k % 4)];
        Assert.Equal(expected, served);
    }

    // ------------------------------------------------------------------ kill, timeout, cancellation take nothing

    [Fact]
    public void Kill_OfWaiter_TakesNothingAndTheNextWaiterGetsTheLock()
    {
        using var s = new Scheduler();
        var got = new List<string>();
        Tasklet? victim = null;
        s.Go(async () =>
        {
            var l = new AsyncLock();
            AsyncLock.Releaser held = await l.LockAsync();
            victim = Tasklet.Go(async () => { using (await l.LockAsync()) { got.Add("victim"); } }, "victim");
            Tasklet.Go(async () => { using (await l.LockAsync()) { got.Add("next"); } }, "next");
            await Tasklet.Yield();
            victim.Kill();
            await Tasklet.Yield();
            held.Dispose();
            Assert.Equal("next", l.Owner!.Name);
        });
        s.Run();
        Assert.Equal(["next"], got);
        Assert.IsType<TaskletExitException>(victim!.Exception);
    }

    [Fact]
    public void Kill_AfterHandoff_VictimOwnsTheLockUntilItsUsingReleasesIt()
    {
        using var s = new Scheduler();
        Tasklet? victim = null;
        bool ownedWhenResumed = false;
        bool nextGotIt = false;
        var l = new AsyncLock();
        s.Go(async () =>
        {
            AsyncLock.Releaser held = await l.LockAsync();
            victim = Tasklet.Go(async () =>
            {
                using (await l.LockAsync())
                {
                    ownedWhenResumed = ReferenceEquals(l.Owner, Tasklet.Current);
                    await Tasklet.Yield(); // the kill is raised here; using releases
                }
            }, "victim");
            Tasklet.Go(async () => { using (await l.LockAsync()) { nextGotIt = true; } }, "next");
            await Tasklet.Yield();
            held.Dispose();  // handed to the victim (claimed), then...
            victim.Kill();   // ...too late for that wait
            Assert.Same(victim, l.Owner);
        });
        s.Run();
        Assert.True(ownedWhenResumed);
        Assert.True(nextGotIt);
        Assert.IsType<TaskletExitException>(victim!.Exception);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Timeout_OfWaiter_TakesNothingAndTheLockGoesToTheNext()
    {
        using var s = Scheduler_Deterministic();
        Exception? timedOut = null;
        var got = new List<string>();
        var l = new AsyncLock();
        s.Go(async () =>
        {
            AsyncLock.Releaser held = await l.LockAsync();
            Tasklet.Go(async () =>
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    timedOut = await Record.ExceptionAsync(async () => { using (await l.LockAsync()) { got.Add("timed"); } });
                }
            });
            Tasklet.Go(async () => { using (await l.LockAsync()) { got.Add("patient"); } });
            await Tasklet.Sleep(TimeSpan.FromSeconds(5));
            held.Dispose();
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(timedOut);
        Assert.Equal(["patient"], got);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Cancellation_OfWaiter_TakesNothingAndWithdrawsItsNode()
    {
        using var s = Scheduler_Deterministic();
        Exception? cancelled = null;
        var got = new List<string>();
        var l = new AsyncLock();
        using var cts = new CancellationTokenSource();
        s.Go(async () =>
        {
            AsyncLock.Releaser held = await l.LockAsync();
            Tasklet.Go(async () =>
            {
                cancelled = await Record.ExceptionAsync(async () => { using (await l.LockAsync(cts.Token)) { got.Add("cancelled"); } });
            });
            Tasklet.Go(async () => { using (await l.LockAsync()) { got.Add("patient"); } });
            await Tasklet.Yield();
            cts.Cancel();
            await Tasklet.Sleep(TimeSpan.FromSeconds(1)); // the cancellation's wake-up arrives
            held.Dispose();
        });
        s.Run();
        Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
        Assert.Equal(["patient"], got);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void KillOfEveryWaiter_ThenRelease_LeavesTheLockFree()
    {
        using var s = new Scheduler();
        var l = new AsyncLock();
        s.Go(async () =>
        {
            AsyncLock.Releaser held = await l.LockAsync();
            var waiters = Enumerable.Range(0, 3).Select(_ => Tasklet.Go(async () => { using (await l.LockAsync()) { } })).ToList();
            await Tasklet.Yield();
            waiters.ForEach(w => w.Kill());
            await Tasklet.Yield();
            held.Dispose();
            Assert.False(l.IsLocked);
            Assert.True(l.TryLock(out AsyncLock.Releaser again)); // no stale node kept it
            again.Dispose();
        });
        s.Run();
        Assert.False(l.IsLocked);
    }

    // ------------------------------------------------------------------ select

    [Fact]
    public void Select_OverChannelAndLock_FiresTheLockWhenReleasedAndTheChannelOtherwise()
    {
        using var s = new Scheduler();
        var results = new List<string>();
        var l = new AsyncLock { Name = "db" };
        s.Go(async () =>
        {
            var jobs = new Channel<int> { Name = "jobs" };
            AsyncLock.Releaser held = await l.LockAsync();
            Tasklet.Go(async () =>
            {
                ReceiveCase<int> job = jobs.ReceiveCase();
                LockCase locked = l.LockCase();
                for (int i = 0; i < 2; i++)
                {
                    int fired = await Select.WaitAsync(job, locked);
                    if (fired == 0)
                    {
                        results.Add($"job {job.Value}");
                    }
                    else
                    {
                        Assert.Same(Tasklet.Current, l.Owner);
                        results.Add("lock");
                        locked.Releaser.Dispose();
                    }
                }
            }, "selector");
            await Tasklet.Yield();
            await jobs.SendAsync(7);  // the select takes the job; its lock node is withdrawn
            await Tasklet.Yield();
            held.Dispose();           // handed to the parked select
        });
        s.Run();
        Assert.Equal(["job 7", "lock"], results);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void SelectTry_FreeLock_AcquiresAndHeldLock_ReportsNotReady()
    {
        var l = new AsyncLock();
        LockCase c = l.LockCase();
        Assert.Equal(0, Select.Try(c));
        Assert.True(l.IsLocked);
        Assert.Equal(-1, Select.Try(l.LockCase()));
        c.Releaser.Dispose();
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Select_WithTimeout_OnHeldLock_ReturnsMinusOneAndTakesNothing()
    {
        using var s = Scheduler_Deterministic();
        var l = new AsyncLock();
        int fired = 0;
        s.Go(async () =>
        {
            AsyncLock.Releaser held = await l.LockAsync();
            Tasklet.Go(async () => fired = await Select.WaitAsync(TimeSpan.FromSeconds(1), l.LockCase()));
            await Tasklet.Sleep(TimeSpan.FromSeconds(2));
            held.Dispose();
            Assert.False(l.IsLocked);
        });
        s.Run();
        Assert.Equal(-1, fired);
    }

    // ------------------------------------------------------------------ deadlock and Dump

    [Fact]
    public void Run_CycleThroughTwoLocks_ReportsBothTaskletsAndBothLocks_AndTheKillsFreeThem()
    {
        using var s = new Scheduler();
        Tasklet? a = null, b = null;
        AsyncLock? accounts = null, ledger = null;
        s.Go(async () =>
        {
            accounts = new AsyncLock { Name = "accounts" };
            ledger = new AsyncLock { Name = "ledger" };
            a = Tasklet.Go(async () =>
            {
                using (await accounts.LockAsync())
                {
                    await Tasklet.Yield();
                    using (await ledger.LockAsync())
                    {
                    }
                }
            }, "a");
            b = Tasklet.Go(async () =>
            {
                using (await ledger.LockAsync())
                {
                    await Tasklet.Yield();
                    using (await accounts.LockAsync())
                    {
                    }
                }
            }, "b");
            await Task.CompletedTask;
        });

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Equal(2, ex.Blocked.Count);
        Assert.Contains($"tasklet {a!.Id} 'a': acquire of lock 'ledger' held by tasklet {b!.Id} 'b'", ex.Message);
        Assert.Contains($"tasklet {b.Id} 'b': acquire of lock 'accounts' held by tasklet {a.Id} 'a'", ex.Message);
        Assert.False(accounts!.IsLocked, "KillOnDeadlock ran the using blocks");
        Assert.False(ledger!.IsLocked);
    }

    [Fact]
    public void Dump_ShowsAcquireOfLockHeldByTheWriter()
    {
        using var s = new Scheduler();
        var l = new AsyncLock { Name = "db" };
        var release = new Channel<int>();
        Tasklet writer = s.Go(async () => { using (await l.LockAsync()) { await release.ReceiveAsync(); } }, "writer");
        Tasklet reader = s.Go(async () => { using (await l.LockAsync()) { } }, "reader");
        s.RunUntilIdle();
        string dump = s.Dump();
        Assert.Contains($"{reader.Id} 'reader' Blocked: acquire of lock 'db' held by tasklet {writer.Id} 'writer'", dump);
        release.TrySend(1);
        s.RunUntilIdle();
        Assert.DoesNotContain("'reader'", s.Dump());
        Assert.False(l.IsLocked);
        Assert.Equal("lock 'db' (free)", l.Describe());
    }

    // ------------------------------------------------------------------ threads

    [Fact]
    public async Task PlainAsyncCode_WaitsAndIsHandedTheLockAcrossThreads()
    {
        var l = new AsyncLock();
        AsyncLock.Releaser first = await l.LockAsync();
        Task second = Task.Run(async () =>
        {
            using (await l.LockAsync())
            {
                Assert.Null(l.Owner);
            }
        });
        Assert.False(second.IsCompleted && l.IsLocked, "the second party cannot hold the lock while the first does");
        first.Dispose();
        await second.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.False(l.IsLocked);
    }

    private static Scheduler Scheduler_Deterministic() => SchedulerExtensions.Deterministic();
}
