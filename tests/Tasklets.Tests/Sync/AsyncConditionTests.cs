using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Sync;

// Deadlock detection looks at every scheduler inside Run() in the process: run alone.
[Collection(NonParallel.Name)]
public class AsyncConditionTests
{
    [Fact]
    public void WaitAsync_WithoutHoldingTheLock_ThrowsSayingSo()
    {
        using var s = new Scheduler();
        Exception? error = null;
        Exception? untilError = null;
        s.Go(async () =>
        {
            var l = new AsyncLock { Name = "db" };
            var c = new AsyncCondition(l) { Name = "ready" };
            error = await Record.ExceptionAsync(async () => await c.WaitAsync());
            untilError = await Record.ExceptionAsync(async () => await c.WaitUntilAsync(() => false));
        }, "waiter");
        s.Run();
        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("does not hold lock 'db'", error!.Message);
        Assert.Contains("Acquire the lock first", error.Message);
        Assert.IsType<InvalidOperationException>(untilError);
        Assert.Throws<ArgumentNullException>(() => new AsyncCondition(null!));
    }

    [Fact]
    public void WaitAsync_ReleasesTheLockWhileWaitingAndHoldsItAgainAfterNotify()
    {
        using var s = new Scheduler();
        var order = new OrderRecorder();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        Tasklet? waiter = null;
        s.Go(async () =>
        {
            waiter = Tasklet.Go(async () =>
            {
                using (await l.LockAsync())
                {
                    order.Expect(1);
                    await c.WaitAsync();
                    order.Expect(4);
                    Assert.Same(Tasklet.Current, l.Owner);
                }
            });
            await Tasklet.Yield();
            using (await l.LockAsync()) // free: the wait released it
            {
                order.Expect(2);
                c.Notify();
                await Tasklet.Yield(); // the notified waiter cannot run on: it waits for the lock
                order.Expect(3);
                Assert.NotSame(waiter, l.Owner);
            }
        });
        s.Run();
        order.Finish(5);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void WaitUntilAsync_ProducerConsumer_EveryItemConsumedOnce()
    {
        using var s = SchedulerExtensions.Deterministic();
        var l = new AsyncLock();
        var notEmpty = new AsyncCondition(l);
        var queue = new Queue<int>();
        var consumed = new List<int>();
        for (int k = 0; k < 3; k++)
        {
            s.Go(async () =>
            {
                while (true)
                {
                    int item;
                    using (await l.LockAsync())
                    {
                        await notEmpty.WaitUntilAsync(() => queue.Count > 0);
                        item = queue.Dequeue();
                    }

                    if (item < 0)
                    {
                        return;
                    }

                    consumed.Add(item);
                    await Tasklet.Yield();
                }
            });
        }

        s.Go(async () =>
        {
            for (int i = 0; i < 100; i++)
            {
                using (await l.LockAsync())
                {
                    queue.Enqueue(i);
                    notEmpty.Notify();
                }

                if (i % 7 == 0)
                {
                    await Tasklet.Yield();
                }
            }

            using (await l.LockAsync())
            {
                queue.Enqueue(-1);
                queue.Enqueue(-1);
                queue.Enqueue(-1);
                notEmpty.NotifyAll();
            }
        });
        s.Run();
        consumed.Sort();
        Assert.Equal(Enumerable.Range(0, 100), consumed);
    }

    [Fact]
    public void Notify_WakesWaitersInFifoOrder_AndNotifyAllWakesTheRest()
    {
        using var s = new Scheduler();
        var woken = new List<string>();
        List<string>? afterNotifyTwo = null;
        AsyncCondition? c = null;
        s.Go(async () =>
        {
            var l = new AsyncLock(); // made in a tasklet: a failure here is a reported deadlock, not a hang
            c = new AsyncCondition(l);
            foreach (string name in new[] { "a", "b", "c", "d" })
            {
                Tasklet.Go(async () =>
                {
                    using (await l.LockAsync())
                    {
                        await c.WaitAsync();
                        woken.Add(name);
                    }
                }, name);
            }

            c.Notify(); // nobody waits yet: dropped
            await Tasklet.Yield();
            c.Notify(2);
            for (int i = 0; i < 20; i++)
            {
                await Tasklet.Yield(); // a and b reacquire in turn; c and d are still waiting
            }

            afterNotifyTwo = [.. woken];
            c.NotifyAll();
        });
        s.Run();
        Assert.Equal(["a", "b"], afterNotifyTwo);
        Assert.Equal(["a", "b", "c", "d"], woken);
        Assert.Throws<ArgumentOutOfRangeException>(() => c!.Notify(-1));
    }

    [Fact]
    public void Notify_SkipsAWaiterThatWasKilled_TheNextWaiterGetsTheNotification()
    {
        using var s = new Scheduler();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        bool secondWoke = false;
        Tasklet? first = null;
        s.Go(async () =>
        {
            first = Tasklet.Go(async () => { using (await l.LockAsync()) { await c.WaitAsync(); } }, "first");
            Tasklet.Go(async () => { using (await l.LockAsync()) { await c.WaitAsync(); secondWoke = true; } }, "second");
            await Tasklet.Yield();
            first.Kill();
            c.Notify();
            await Tasklet.Yield();
            await Tasklet.Yield();
        });
        s.Run();
        Assert.True(secondWoke);
        Assert.IsType<TaskletExitException>(first!.Exception);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Kill_WhileWaiting_ReacquiresTheLockBeforeThrowing_UsingReleasesItOnce()
    {
        using var s = new Scheduler();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        bool heldWhenKillSeen = false;
        Tasklet? victim = null;
        bool thirdGotIt = false;
        s.Go(async () =>
        {
            victim = Tasklet.Go(async () =>
            {
                using (await l.LockAsync())
                {
                    try
                    {
                        await c.WaitAsync();
                    }
                    catch (TaskletExitException)
                    {
                        heldWhenKillSeen = ReferenceEquals(l.Owner, Tasklet.Current);
                        throw;
                    }
                }
            }, "victim");
            await Tasklet.Yield();
            AsyncLock.Releaser held = await l.LockAsync(); // the victim's wait released it
            victim.Kill();                                 // its wait ends; its reacquire queues behind us
            Tasklet.Go(async () => { using (await l.LockAsync()) { thirdGotIt = true; } });
            await Tasklet.Yield();
            Assert.True(victim.IsAlive, "the victim waits to reacquire");
            held.Dispose();                                // handed to the victim, then to the third
        });
        s.Run();
        Assert.True(heldWhenKillSeen);
        Assert.True(thirdGotIt);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Kill_DuringTheReacquire_DoesNotAbandonIt()
    {
        using var s = new Scheduler();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        Exception? seen = null;
        bool held = false;
        Tasklet? victim = null;
        s.Go(async () =>
        {
            victim = Tasklet.Go(async () =>
            {
                using (await l.LockAsync())
                {
                    seen = await Record.ExceptionAsync(async () => await c.WaitAsync());
                    held = ReferenceEquals(l.Owner, Tasklet.Current);
                }
            }, "victim");
            await Tasklet.Yield();
            using (await l.LockAsync())
            {
                c.Notify();
                await Tasklet.Yield();   // the victim resumes and queues to reacquire
                victim.Kill();           // ends the reacquire wait: it must wait again
                await Tasklet.Yield();
                Assert.True(victim.IsAlive);
            }
        });
        s.Run();
        Assert.IsType<TaskletExitException>(seen);
        Assert.True(held);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void TimeoutScope_EndsTheWait_LockHeldAgainWhenTheTimeoutIsSeen()
    {
        using var s = SchedulerExtensions.Deterministic();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        Exception? seen = null;
        bool held = false;
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    seen = await Record.ExceptionAsync(async () => await c.WaitAsync());
                    held = ReferenceEquals(l.Owner, Tasklet.Current);
                }
            }
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(seen);
        Assert.True(held);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Cancellation_EndsTheWait_LockHeldAgain_TokenAlreadyCancelledKeepsTheLock()
    {
        using var s = SchedulerExtensions.Deterministic();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        Exception? seen = null;
        Exception? early = null;
        bool held = false;
        using var cts = new CancellationTokenSource();
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                seen = await Record.ExceptionAsync(async () => await c.WaitAsync(cts.Token));
                held = ReferenceEquals(l.Owner, Tasklet.Current);
                early = await Record.ExceptionAsync(async () => await c.WaitAsync(cts.Token));
                Assert.Same(Tasklet.Current, l.Owner);
            }
        });
        s.Go(async () =>
        {
            await Tasklet.Yield();
            cts.Cancel();
            await Tasklet.Sleep(TimeSpan.FromSeconds(1));
        });
        s.Run();
        Assert.IsAssignableFrom<OperationCanceledException>(seen);
        Assert.IsAssignableFrom<OperationCanceledException>(early);
        Assert.True(held);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void WaitAsync_ReentrantLockHeldTwice_ReleasedCompletelyAndHeldTwiceAgain()
    {
        using var s = new Scheduler();
        var l = new AsyncLock(reentrant: true);
        var c = new AsyncCondition(l);
        bool otherGotIt = false;
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                using (await l.LockAsync())
                {
                    await c.WaitAsync();
                }

                Assert.True(l.IsLocked); // the outer acquisition is still held: the inner releaser was valid
                Assert.Same(Tasklet.Current, l.Owner);
            }

            Assert.False(l.IsLocked);
        });
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                otherGotIt = true;
                c.Notify();
            }
        });
        s.Run();
        Assert.True(otherGotIt);
    }

    [Fact]
    public void Dump_ShowsTheConditionAndItsLock()
    {
        using var s = new Scheduler();
        var l = new AsyncLock { Name = "db" };
        var c = new AsyncCondition(l) { Name = "ready" };
        Tasklet waiter = s.Go(async () => { using (await l.LockAsync()) { await c.WaitAsync(); } }, "waiter");
        s.RunUntilIdle();
        Assert.Contains($"{waiter.Id} 'waiter' Blocked: wait on condition 'ready' of lock 'db' (free)", s.Dump());
        c.Notify();
        s.RunUntilIdle();
        Assert.DoesNotContain("'waiter'", s.Dump());
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Run_NobodyNotifies_DeadlockNamesTheConditionAndTheKillReleasesTheLock()
    {
        using var s = new Scheduler();
        AsyncLock? l = null;
        Tasklet waiter = s.Go(async () =>
        {
            l = new AsyncLock { Name = "db" };
            var c = new AsyncCondition(l) { Name = "ready" };
            using (await l.LockAsync())
            {
                await c.WaitAsync();
            }
        }, "waiter");
        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"tasklet {waiter.Id} 'waiter': wait on condition 'ready' of lock 'db'", ex.Message);
        Assert.False(l!.IsLocked);
        Assert.IsType<TaskletExitException>(waiter.Exception);
    }

    [Fact]
    public async Task PlainAsyncCode_WaitsAndIsNotifiedAcrossThreads_HoldsTheLockAgain()
    {
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        bool ready = false;
        Task<bool> waiter = Task.Run(async () =>
        {
            using (await l.LockAsync())
            {
                await c.WaitUntilAsync(() => ready);
                return l.IsLocked && l.Owner is null;
            }
        });
        while (!waiter.IsCompleted)
        {
            using (await l.LockAsync())
            {
                ready = true;
                c.NotifyAll();
            }

            await Task.Yield();
        }

        Assert.True(await waiter.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.False(l.IsLocked);
    }
}
