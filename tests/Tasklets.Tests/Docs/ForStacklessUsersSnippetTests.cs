using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Docs;

/// <summary>
/// The snippets of docs/for-stackless-users.md, each run and checked, together with the differences from Stackless
/// and stacklesslib that the page states (the reference is ../shared/reference/stackless-goless.md). Every code span
/// of the page's Tasklets column and every csharp block of the page appears in this file as printed (up to
/// whitespace): <see cref="IdiomPagesTests"/> checks that. Deterministic: a Seed wherever time passes, run-until-idle
/// or exact orders elsewhere.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide; the deadlock idiom is checked here
public class ForStacklessUsersSnippetTests
{
    private static readonly SchedulerOptions s_seeded = new() { Seed = 1 };

    // ---------------------------------------------------------------- tasklets and the scheduler

    [Fact]
    public void TaskletGo_AsTaskletSetup_RunsWhenTheCreatorBlocksOrYields()
    {
        var order = new List<string>();
        using var scheduler = new Scheduler();
        scheduler.Go(async () =>
        {
            Tasklet t = Tasklet.Go(() => Work(42), "work");
            order.Add("created");
            await Tasklet.Yield();
            order.Add($"work is {t.State}");
        }, "main");

        scheduler.Run();

        Assert.Equal(["created", "working on 42", "work is Dead"], order);

        Task Work(int n)
        {
            order.Add($"working on {n}");
            return Task.CompletedTask;
        }
    }

    [Fact]
    public void FuncOfTask_AsBind_StartsOnlyWhenGoIsCalled()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            Func<Task> bound = () => WorkAsync(42);
            order.Add("bound");
            await Tasklet.Yield();
            Tasklet t = Tasklet.Go(bound, "bound");
            await t;
        });

        Assert.Equal(["bound", "working on 42"], order);

        async Task WorkAsync(int n)
        {
            order.Add($"working on {n}");
            await Tasklet.Yield();
        }
    }

    [Fact]
    public void TaskletYield_AsSchedule_GoesToTheBackOfTheQueue()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(() => { order.Add("b"); return Task.CompletedTask; });
            order.Add("a1");
            await Tasklet.Yield();
            order.Add("a2");
        });

        Assert.Equal(["a1", "b", "a2"], order);
    }

    [Fact]
    public void CurrentAndRunnableCount_AsGetcurrentAndGetruncount()
    {
        using var scheduler = new Scheduler();
        Tasklet? seen = null;
        int readyBesideTheRunningOne = -1;
        Tasklet first = scheduler.Go(() =>
        {
            seen = Tasklet.Current;
            readyBesideTheRunningOne = Scheduler.Current!.RunnableCount;
            return Task.CompletedTask;
        });
        scheduler.Go(() => Task.CompletedTask);

        Assert.Equal(2, scheduler.RunnableCount);       // spawned, not run yet
        scheduler.Run();

        Assert.Same(first, seen);
        Assert.Equal(1, readyBesideTheRunningOne);      // the running one is not counted (Stackless's runcount is)
        Assert.Equal(0, scheduler.RunnableCount);
    }

    [Fact]
    public void RunFor_AsTheWatchdog_ReturnsWhetherTaskletsAreStillAlive()
    {
        using var scheduler = new Scheduler();
        var input = new Channel<int> { Name = "input" };
        int got = 0;
        scheduler.Go(async () => got = await input.ReceiveAsync(), "reader");

        bool alive = scheduler.RunFor(TimeSpan.FromMilliseconds(4));
        Assert.True(alive);                              // the reader waits: RunFor returns at once, it never waits
        Assert.True(input.TrySend(5));                   // the host loop feeds it between frames
        alive = scheduler.RunFor(TimeSpan.FromMilliseconds(4));

        Assert.False(alive);
        Assert.Equal(5, got);
    }

    [Fact]
    public void StateAndIsAlive_AsBlockedAndAlive()
    {
        using var scheduler = new Scheduler();
        var ch = new Channel<int>();
        Tasklet t = scheduler.Go(async () => await ch.ReceiveAsync());
        scheduler.RunUntilIdle();

        bool blocked = t.State == TaskletState.Blocked;
        Assert.True(blocked);
        Assert.True(t.IsAlive);
        Assert.True(ch.TrySend(1));
        scheduler.RunUntilIdle();
        Assert.False(t.IsAlive);
    }

    // ---------------------------------------------------------------- channels

    [Fact]
    public void Channel_SendAndReceive_AsStacklessChannel()
    {
        string got = "";
        Scheduler.Run(async () =>
        {
            var ch = new Channel<string>();
            _ = Tasklet.Go(async () => { await ch.SendAsync("ping"); });
            string s = await ch.ReceiveAsync();
            got = s;
        });

        Assert.Equal("ping", got);
    }

    [Fact]
    public void Preference_Receiver_SwitchesToTheReceiverAtOnce_DefaultNeitherLetsTheSenderContinue()
    {
        Assert.Equal(["received", "sender continues"], OrderAfterASend(ChannelPreference.Receiver));
        Assert.Equal(["sender continues", "received"], OrderAfterASend(ChannelPreference.Neither));
        Assert.Equal(ChannelPreference.Neither, new Channel<int>().Preference); // Stackless's default is -1, Receiver

        static List<string> OrderAfterASend(ChannelPreference preference)
        {
            var order = new List<string>();
            Scheduler.Run(async () =>
            {
                var ch = new Channel<string>();
                ch.Preference = preference;
                Tasklet receiver = Tasklet.Go(async () => { await ch.ReceiveAsync(); order.Add("received"); });
                await Tasklet.Yield();                   // the receiver blocks
                await ch.SendAsync("ping");
                order.Add("sender continues");
                await receiver;
            });
            return order;
        }
    }

    [Fact]
    public void PreferenceReceiver_AsSnippet_Compiles()
    {
        var ch = new Channel<string>();
        ch.Preference = ChannelPreference.Receiver;
        Assert.Equal(ChannelPreference.Receiver, ch.Preference);
    }

    [Fact]
    public void Balance_CountsBlockedSendersMinusBlockedReceivers()
    {
        using var scheduler = new Scheduler();
        var ch = new Channel<int>();
        scheduler.Go(async () => await ch.SendAsync(1));
        scheduler.Go(async () => await ch.SendAsync(2));
        scheduler.RunUntilIdle();
        int balance = ch.Balance;
        Assert.Equal(2, balance);                        // two senders blocked

        Assert.True(ch.TryReceive(out _));
        Assert.True(ch.TryReceive(out _));
        scheduler.RunUntilIdle();
        scheduler.Go(async () => await ch.ReceiveAsync());
        scheduler.RunUntilIdle();
        Assert.Equal(-1, ch.Balance);                    // one receiver blocked
        Assert.True(ch.TrySend(3));
        scheduler.RunUntilIdle();
    }

    [Fact]
    public void SendException_TheNextReceiverGetsItThrown_AndTheSenderNeverBlocks()
    {
        string message = "";
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            ch.SendException(new ArgumentException("bad input"));    // nobody receives yet: it does not block
            try { await ch.ReceiveAsync(); } catch (ArgumentException e) { message = e.Message; }
        });

        Assert.Equal("bad input", message);
    }

    [Fact]
    public void Close_WakesBlockedSendersWithChannelClosedException()
    {
        Exception? senderGot = null;
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            Tasklet sender = Tasklet.Go(async () =>
            {
                try { await ch.SendAsync(1); } catch (ChannelClosedException e) { senderGot = e; }
            });
            await Tasklet.Yield();                       // the sender blocks
            ch.Close();                                  // Stackless leaves it blocked; here it is woken
            await sender;
        });

        Assert.IsType<ChannelClosedException>(senderGot);
    }

    [Fact]
    public void AwaitForeach_AsIteratingAChannel_EndsOnClose()
    {
        var got = new List<string>();
        Scheduler.Run(async () =>
        {
            var ch = new Channel<string>(capacity: 2);
            await ch.SendAsync("a");
            await ch.SendAsync("b");
            ch.Close();
            await foreach (string s in ch) { got.Add(s); }
        });

        Assert.Equal(["a", "b"], got);
    }

    // ---------------------------------------------------------------- atomic, kill, throw

    [Fact]
    public void Atomic_YieldInsideDoesNotSwitch_UnlikeStacklessSchedule()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(() => { order.Add("b"); return Task.CompletedTask; });
            using (Tasklet.Atomic()) { order.Add("a1"); await Tasklet.Yield(); order.Add("a2"); }
            await Tasklet.Yield();
        });

        Assert.Equal(["a1", "a2", "b"], order);
    }

    [Fact]
    public void Atomic_BlockingInsideStillSwitches()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            _ = Tasklet.Go(async () => { order.Add("b"); await ch.SendAsync(1); });
            using (Tasklet.Atomic())
            {
                order.Add("a1");
                await ch.ReceiveAsync();                 // blocks: b runs
                order.Add("a2");
            }
        });

        Assert.Equal(["a1", "b", "a2"], order);
    }

    [Fact]
    public void Kill_IsARequest_TheVictimRunsFirstWhenTheKillerNextAwaits()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            Tasklet t = Tasklet.Go(async () =>
            {
                try { await ch.ReceiveAsync(); }
                finally { order.Add("victim's finally"); }
            }, "victim");
            await Tasklet.Yield();                       // the victim blocks

            t.Kill();
            order.Add("Kill returned");                  // Stackless's kill() has run the victim's finally by now
            await Tasklet.Yield();
            order.Add("killer resumed");
            Assert.IsType<TaskletExitException>(t.Exception);
            Assert.Equal(0, ch.Balance);
        });

        Assert.Equal(["Kill returned", "victim's finally", "killer resumed"], order);
    }

    [Fact]
    public void KillAndJoinAsync_ReturnsOnceTheVictimIsDead()
    {
        bool finallyRan = false;
        Scheduler.Run(async () =>
        {
            Tasklet t = Tasklet.Go(async () =>
            {
                try { await Tasklet.Sleep(Timeout.InfiniteTimeSpan); }
                finally { finallyRan = true; }
            });
            await Tasklet.Yield();
            await t.KillAndJoinAsync();
            Assert.False(t.IsAlive);
            Assert.True(finallyRan);
            t.Kill();                                    // a dead tasklet: nothing (Stackless: the same)
        });
    }

    [Fact]
    public void Throw_RaisesInTheBlockedTasklet_AndThrowToADeadOneIsAnError()
    {
        string caught = "";
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            Tasklet t = Tasklet.Go(async () =>
            {
                try { await ch.ReceiveAsync(); } catch (InvalidOperationException e) { caught = e.Message; }
            });
            await Tasklet.Yield();

            t.Throw(new InvalidOperationException("stop"));
            await t;

            Assert.Equal(0, ch.Balance);
            Assert.Throws<InvalidOperationException>(() => t.Throw(new InvalidOperationException("too late")));
        });

        Assert.Equal("stop", caught);
    }

    // ---------------------------------------------------------------- errors, deadlocks, threads

    [Fact]
    public void OnUnobservedFailure_AsSetErrorHandler_IsCalled_AndRunStillThrows()
    {
        var handled = new List<string>();
        var options = new SchedulerOptions { OnUnobservedFailure = (t, e) => handled.Add($"{t.Name}: {e.Message}") };

        AggregateException failures = Assert.Throws<AggregateException>(() =>
            Scheduler.Run(async () =>
            {
                _ = Tasklet.Go(() => throw new InvalidOperationException("oops"), "worker");
                await Tasklet.Yield();
            }, options));

        Assert.Equal(["worker: oops"], handled);         // Stackless's handler swallows it; here Run still reports it
        Assert.Equal("oops", Assert.Single(failures.InnerExceptions).Message);
    }

    [Fact]
    public void DeadlockException_AsTheLastRunnableTaskletCannotBeBlocked()
    {
        string message = "";

        try { Scheduler.Run(async () => await new Channel<int> { Name = "lonely" }.ReceiveAsync()); } catch (DeadlockException e) { message = e.Message; }

        Assert.Contains("receive on channel 'lonely' (unbuffered, 0 buffered)", message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RunAsync_ASchedulerPerThread_ChannelsWorkAcrossThem()
    {
        var echo = new Channel<string>();
        var got = new List<string>();
        using var master = new Scheduler();
        using var slave = new Scheduler();
        master.Go(async () =>
        {
            foreach (string m in new[] { "ECHO 1", "ECHO 2", "QUIT" })
            {
                await echo.SendAsync(m);
            }
        });
        slave.Go(async () =>
        {
            string m;
            while ((m = await echo.ReceiveAsync()) != "QUIT")
            {
                got.Add(m);
            }
        });

        Task running = master.RunAsync();
        slave.Run();
        await running.WaitAsync(TimeSpan.FromSeconds(60)); // a hang guard only

        Assert.Equal(["ECHO 1", "ECHO 2"], got);
    }

    [Fact]
    public void RunInThread_AsCallOnThread_TheTaskletWaitsWhileOthersRun()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(() => { order.Add("other ran"); return Task.CompletedTask; });
            int answer = await Tasklet.RunInThread(token => 6 * 7);
            order.Add($"answer {answer}");
        });

        Assert.Equal(["other ran", "answer 42"], order);
    }

    // ---------------------------------------------------------------- stacklesslib: sleep, timeout, locks

    [Fact]
    public void Sleep_OnTheSchedulersClock_NeedsNoEventLoop()
    {
        TimeSpan slept = TimeSpan.Zero;
        Scheduler.Run(async () =>
        {
            long start = Scheduler.Current!.Time.GetTimestamp();
            await Tasklet.Sleep(TimeSpan.FromSeconds(1));
            slept = Scheduler.Current!.Time.GetElapsedTime(start);
        }, s_seeded);

        Assert.Equal(TimeSpan.FromSeconds(1), slept);
    }

    [Fact]
    public void Timeout_AsUtilTimeout_ThrowsAndTakesNothing()
    {
        Scheduler.Run(async () =>
        {
            var replies = new Channel<int>();
            int reply = -1;
            await Assert.ThrowsAsync<TaskletTimeoutException>(async () =>
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1))) { reply = await replies.ReceiveAsync(); }
            });
            Assert.Equal(-1, reply);
            Assert.Equal(0, replies.Balance);
        }, s_seeded);
    }

    [Fact]
    public void Timeout_BodyIsNotAtomic_OtherTaskletsRunInside()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(() => { order.Add("other"); return Task.CompletedTask; });
            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                await Tasklet.Yield();                   // stacklesslib runs the body atomically; this yields
                order.Add("body");
            }
        }, s_seeded);

        Assert.Equal(["other", "body"], order);
    }

    [Fact]
    public void AsyncLock_AsLock_HandsOffFifo_NoBarging()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            var lk = new AsyncLock();
            AsyncLock.Releaser held = await lk.LockAsync();
            Tasklet waiter = Tasklet.Go(async () =>
            {
                using (await lk.LockAsync()) { order.Add("waiter has it"); }
            });
            await Tasklet.Yield();                       // the waiter queues

            held.Dispose();
            order.Add(lk.TryLock(out _) ? "releaser took it back" : "handed to the waiter");
            await waiter;
            Assert.Throws<InvalidOperationException>(held.Dispose); // released twice: an error (stacklesslib: count 2)
        });

        Assert.Equal(["handed to the waiter", "waiter has it"], order);
    }

    [Fact]
    public void AsyncLock_Reentrant_AsRLock_CountsTheOwnersAcquisitions()
    {
        int depth = 0;
        Scheduler.Run(async () =>
        {
            var rlock = new AsyncLock(reentrant: true);
            using (await rlock.LockAsync())
            {
                using (await rlock.LockAsync()) { depth = 2; }
                Assert.True(rlock.IsLocked);
            }

            Assert.False(rlock.IsLocked);
        });

        Assert.Equal(2, depth);
    }

    [Fact]
    public void AsyncSemaphore_AsSemaphore()
    {
        int peak = 0, inside = 0;
        Scheduler.Run(async () =>
        {
            var pool = new AsyncSemaphore(initialCount: 2);
            Tasklet[] users = Enumerable.Range(0, 5).Select(_ => Tasklet.Go(async () =>
            {
                await pool.WaitAsync();
                try
                {
                    peak = Math.Max(peak, ++inside);
                    await Tasklet.Sleep(TimeSpan.FromMilliseconds(10));
                    inside--;
                }
                finally
                {
                    pool.Release();
                }
            })).ToArray();
            await Tasklet.WhenAll(users);
        }, s_seeded);

        Assert.Equal(2, peak);
    }

    [Fact]
    public void AsyncManualResetEvent_AsEvent_WaitWithATimeoutReturnsTheFlag()
    {
        var results = new List<bool>();
        Scheduler.Run(async () =>
        {
            var ready = new AsyncManualResetEvent();
            bool set = await Select.WaitAsync(TimeSpan.FromSeconds(1), ready.WaitCase()) == 0;
            results.Add(set);                            // timed out: false, as stacklesslib's wait(timeout)

            Tasklet waiter = Tasklet.Go(async () => { await ready.WaitAsync(); results.Add(ready.IsSet); });
            await Tasklet.Yield();
            ready.Set();
            await waiter;
        }, s_seeded);

        Assert.Equal([false, true], results);
    }

    [Fact]
    public void AsyncCondition_AsCondition_WaitUntilAndNotify()
    {
        var queue = new Queue<int>();
        int item = 0;
        Scheduler.Run(async () =>
        {
            var gate = new AsyncLock();
            var notEmpty = new AsyncCondition(gate);
            Tasklet consumer = Tasklet.Go(async () =>
            {
                using (await gate.LockAsync())
                {
                    await notEmpty.WaitUntilAsync(() => queue.Count > 0);
                    item = queue.Dequeue();
                }
            });
            await Tasklet.Yield();                       // the consumer waits

            using (await gate.LockAsync())
            {
                queue.Enqueue(9);
                notEmpty.Notify();
            }

            await consumer;
        });

        Assert.Equal(9, item);
    }

    [Fact]
    public void AsyncBarrier_AsBarrier_EveryoneLeavesEachPhaseTogether()
    {
        var arrivals = new List<int>();
        Scheduler.Run(async () =>
        {
            var step = new AsyncBarrier(participants: 3);
            Tasklet[] parties = Enumerable.Range(0, 3).Select(_ => Tasklet.Go(async () =>
            {
                arrivals.Add(await step.SignalAndWaitAsync());
            })).ToArray();
            await Tasklet.WhenAll(parties);
        });

        Assert.Equal([0, 1, 2], arrivals.Order());
    }

    // ---------------------------------------------------------------- goless

    [Fact]
    public void SelectTry_AsGolessDcase_ReturnsMinusOneWhenNothingIsReady()
    {
        Scheduler.Run(async () =>
        {
            var idle = new Channel<int>();
            int fired = Select.Try(idle.ReceiveCase(), idle.SendCase(1));
            Assert.Equal(-1, fired);
            await Tasklet.Yield();
        });
    }
}
