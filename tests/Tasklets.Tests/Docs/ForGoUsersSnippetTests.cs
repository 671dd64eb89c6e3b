using Xunit;

namespace Tasklets.Tests.Docs;

/// <summary>
/// The snippets of docs/for-go-users.md, each run and checked. Every code span of the page's Tasklets column and every
/// csharp block of the page appears in this file as printed (up to whitespace): <see cref="IdiomPagesTests"/> checks
/// that, so the page and this file change together. Deterministic: virtual time (a Seed) wherever time passes; the
/// one test with threads (several schedulers) waits on them with a hang guard only.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide; the deadlock idiom is checked here
public class ForGoUsersSnippetTests
{
    private static readonly SchedulerOptions s_seeded = new() { Seed = 1 };

    // ---------------------------------------------------------------- go f(), func main

    [Fact]
    public void Go_SpawnedTasklet_RunsOnceTheSpawnerAwaits()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            var results = new Channel<int>();
            _ = Tasklet.Go(() => WorkAsync(results, 21), "worker");
            order.Add("spawned");
            order.Add($"received {await results.ReceiveAsync()}");
        });

        Assert.Equal(["spawned", "worked", "received 42"], order);

        async Task WorkAsync(Channel<int> results, int x)
        {
            order.Add("worked");
            await results.SendAsync(x * 2);
        }
    }

    [Fact]
    public void SchedulerRun_MainReturns_TheOtherTaskletsAreKilled()
    {
        bool leftoverFinallyRan = false;

        Scheduler.Run(MainAsync);

        Assert.True(leftoverFinallyRan, "Run(main) kills what is left when main returns, and runs its finally blocks");

        async Task MainAsync()
        {
            _ = Tasklet.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                finally
                {
                    leftoverFinallyRan = true;
                }
            }, "leftover");
            await Tasklet.Yield();
        }
    }

    // ---------------------------------------------------------------- make(chan T[, n]), send, receive, close

    [Fact]
    public void Channel_UnbufferedAndBuffered_AsMake()
    {
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            var jobs = new Channel<int>(capacity: 10);
            var log = Channel<string>.CreateUnbounded();

            Assert.False(ch.TrySend(1));                  // unbuffered: nobody receives, so a send would wait
            for (int i = 0; i < 10; i++)
            {
                Assert.True(jobs.TrySend(i));             // buffered: room for 10
            }

            Assert.False(jobs.TrySend(10));
            Assert.Equal(-1, log.Capacity);
            Assert.True(log.TrySend("never blocks"));
            await Tasklet.Yield();
        });
    }

    [Fact]
    public void SendAsyncReceiveAsync_Rendezvous_HandsTheItemOver()
    {
        int received = 0;
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            int v = 7;
            _ = Tasklet.Go(async () => { await ch.SendAsync(v); });
            received = await ReceiveAsync(ch);
        });

        Assert.Equal(7, received);

        static async Task<int> ReceiveAsync(Channel<int> ch)
        {
            int v = await ch.ReceiveAsync();
            return v;
        }
    }

    [Fact]
    public void Close_Buffered_ReceiversDrainThenThrow_SendsThrow_SecondCloseIsANoOp()
    {
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>(capacity: 2);
            await ch.SendAsync(1);
            ch.Close();
            ch.Close();                                   // Go panics on the second close; here it does nothing
            Assert.Equal(1, await ch.ReceiveAsync());     // the buffer drains first
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await ch.ReceiveAsync());
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await ch.SendAsync(2));
        });
    }

    [Fact]
    public void ReceiveCase_CommaOk_TellsAnItemFromAClosedChannel()
    {
        var seen = new List<(bool Ok, int V)>();
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>(capacity: 1);
            await ch.SendAsync(5);
            ch.Close();
            for (int round = 0; round < 2; round++)
            {
                ReceiveCase<int> next = ch.ReceiveCase(); await Select.WaitAsync(next); bool ok = !next.IsClosed; int v = ok ? next.Value : 0;
                seen.Add((ok, v));
            }

            Assert.False(ch.TryReceive(out int _));       // the non-blocking form: false when empty or closed
        });

        Assert.Equal([(true, 5), (false, 0)], seen);
    }

    [Fact]
    public void AwaitForeach_AsRange_EndsWhenClosedAndDrained()
    {
        int sum = 0;
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>(capacity: 3);
            _ = Tasklet.Go(async () =>
            {
                for (int i = 1; i <= 5; i++)
                {
                    await ch.SendAsync(i);
                }

                ch.Close();
            });
            await foreach (int v in ch) { sum += v; }
        });

        Assert.Equal(15, sum);
    }

    // ---------------------------------------------------------------- select: default, time.After, nil channels

    [Fact]
    public void SelectTry_AsDefault_ReturnsMinusOneWhenNothingIsReady()
    {
        var results = new List<int>();
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>(capacity: 1);
            var b = new Channel<int>(capacity: 1);
            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            for (int round = 0; round < 2; round++)
            {
                int fired = Select.Try(fromA, fromB);
                results.Add(fired);
                await b.SendAsync(3);
            }

            Assert.Equal(3, fromB.Value);
        });

        Assert.Equal([-1, 1], results);
    }

    [Fact]
    public void SelectWaitAsync_WithTimeout_AsTimeAfter_ReturnsMinusOneAtTheDeadline()
    {
        TimeSpan waited = TimeSpan.Zero;
        int result = 0;
        Scheduler.Run(async () =>
        {
            ReceiveCase<int> fromA = new Channel<int>().ReceiveCase();
            ReceiveCase<int> fromB = new Channel<int>().ReceiveCase();
            long start = Scheduler.Current!.Time.GetTimestamp();
            int fired = await Select.WaitAsync(TimeSpan.FromSeconds(1), fromA, fromB);
            result = fired;
            waited = Scheduler.Current!.Time.GetElapsedTime(start);
        }, s_seeded);

        Assert.Equal(-1, result);
        Assert.Equal(TimeSpan.FromSeconds(1), waited); // virtual time: the deadline exactly
    }

    [Fact]
    public void SelectCaseIsEnabled_AsNilChannel_MergesTwoChannelsUntilBothAreClosed()
    {
        var merged = new List<int>();
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>();
            _ = Tasklet.Go(() => ProduceAsync(a, 1, 3), "a");
            _ = Tasklet.Go(() => ProduceAsync(b, 10, 12), "b");

            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            SelectCase[] cases = [fromA, fromB];
            for (int open = 2; open > 0;)
            {
                int fired = await Select.WaitAsync(cases);
                ReceiveCase<int> from = fired == 0 ? fromA : fromB;
                if (from.IsClosed)
                {
                    from.IsEnabled = false;   // Go: a = nil
                    open--;
                }
                else
                {
                    merged.Add(from.Value);
                }
            }
        }, s_seeded);

        Assert.Equal([1, 2, 3, 10, 11, 12], merged.Order());

        static async Task ProduceAsync(Channel<int> ch, int from, int to)
        {
            for (int i = from; i <= to; i++)
            {
                await ch.SendAsync(i);
            }

            ch.Close();
        }
    }

    [Fact]
    public void SelectCaseIsEnabled_Disabled_NeverFires()
    {
        Scheduler.Run(async () =>
        {
            var ready = new Channel<int>(capacity: 1);
            await ready.SendAsync(1);
            ReceiveCase<int> fromA = ready.ReceiveCase();
            fromA.IsEnabled = false;
            Assert.Equal(-1, Select.Try(fromA));          // ready, but switched off
            Assert.Equal(1, ready.Count);
        });
    }

    [Fact]
    public void SelectWaitAsync_EveryCaseDisabled_NoTimeoutNorToken_Throws_WithATimeoutWaits()
    {
        Scheduler.Run(async () =>
        {
            ReceiveCase<int> fromA = new Channel<int>().ReceiveCase();
            fromA.IsEnabled = false;
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await Select.WaitAsync(fromA));
            Assert.Equal(-1, await Select.WaitAsync(TimeSpan.FromSeconds(1), fromA));
        }, s_seeded);
    }

    [Fact]
    public void SendCase_InASelect_SendsWhenAReceiverWaits()
    {
        int received = 0;
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            Tasklet receiver = Tasklet.Go(async () => received = await ch.ReceiveAsync());
            await Tasklet.Yield();
            SendCase<int> toCh = ch.SendCase(42);
            Assert.Equal(0, await Select.WaitAsync(toCh));
            await receiver;
        });

        Assert.Equal(42, received);
    }

    // ---------------------------------------------------------------- sync, errgroup

    [Fact]
    public void WaitGroup_AsSyncWaitGroup_WaitsForEveryDone()
    {
        int done = 0;
        Scheduler.Run(async () =>
        {
            var wg = new WaitGroup();
            wg.Add(3);
            for (int i = 0; i < 3; i++)
            {
                _ = Tasklet.Go(async () =>
                {
                    await Tasklet.Sleep(TimeSpan.FromMilliseconds(10));
                    done++;
                    wg.Done();
                });
            }

            await wg.WaitAsync();
            Assert.Equal(3, done);
        }, s_seeded);
    }

    [Fact]
    public void AsyncLock_AsSyncMutex_KeepsAReadModifyWriteAcrossAnAwaitWhole()
    {
        int balance = 0;
        Scheduler.Run(async () =>
        {
            var mu = new AsyncLock();
            Tasklet[] adders = Enumerable.Range(0, 4).Select(_ => Tasklet.Go(async () =>
            {
                for (int i = 0; i < 10; i++)
                {
                    using (await mu.LockAsync()) { int read = balance; await Tasklet.Yield(); balance = read + 1; }
                }
            })).ToArray();
            await Tasklet.WhenAll(adders);
        });

        Assert.Equal(40, balance); // without the lock, the yield between read and write loses updates
    }

    [Fact]
    public void TaskletGroup_AsErrgroup_FirstFailureKillsTheRestAndIsRethrown()
    {
        bool siblingKilled = false;
        Scheduler.Run(async () =>
        {
            var ex = await Assert.ThrowsAsync<InvalidOperationException>(async () =>
            {
                await using (var group = new TaskletGroup("fetch"))
                {
                    _ = group.Go(async () =>
                    {
                        try { await Tasklet.Sleep(TimeSpan.FromHours(1)); }
                        catch (TaskletExitException) { siblingKilled = true; throw; }
                    });
                    _ = group.Go(() => throw new InvalidOperationException("fetch failed"));
                }
            });
            Assert.Equal("fetch failed", ex.Message);
        }, s_seeded);

        Assert.True(siblingKilled);
    }

    // ---------------------------------------------------------------- context: cancel, timeout

    [Fact]
    public void CancellationToken_AsContextWithCancel_KillsTheTaskletAndEndsWaits()
    {
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            using var cts = new CancellationTokenSource();
            Tasklet worker = Tasklet.Go(WorkAsync, "worker", cts.Token);
            Tasklet sender = Tasklet.Go(async () => await ch.SendAsync(1, cts.Token), "sender");
            ReceiveCase<int> fromA = new Channel<int>().ReceiveCase();
            Tasklet selector = Tasklet.Go(async () => await Select.WaitAsync(cts.Token, fromA), "selector");
            await Tasklet.Yield();

            cts.Cancel();

            await Assert.ThrowsAsync<TaskletExitException>(async () => await worker);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await sender);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await selector);
            Assert.Equal(0, ch.Balance);                  // the cancelled send left nothing behind
        }, s_seeded);

        static async Task WorkAsync() => await Tasklet.Sleep(TimeSpan.FromHours(1));
    }

    [Fact]
    public void TaskletCancellationToken_PassedToAForeignAwait_LetsAKillEndIt()
    {
        bool finallyRan = false;
        using var scheduler = new Scheduler();
        Tasklet waiter = scheduler.Go(async () =>
        {
            try
            {
                await Task.Delay(Timeout.Infinite, Tasklet.Current!.CancellationToken); // foreign: a kill cannot reach in otherwise
            }
            finally
            {
                finallyRan = true;
            }
        }, "waiter");
        scheduler.Go(async () =>
        {
            await Tasklet.Yield();
            await waiter.KillAndJoinAsync();
        }, "killer");

        scheduler.Run();

        Assert.True(finallyRan);
        Assert.IsType<TaskletExitException>(waiter.Exception); // ended killed, not failed
    }

    [Fact]
    public void TaskletTimeout_AsContextWithTimeout_ThrowsAtTheDeadline()
    {
        Scheduler.Run(async () =>
        {
            var replies = new Channel<int>();
            int reply = -1;
            await Assert.ThrowsAsync<TaskletTimeoutException>(async () =>
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(2))) { reply = await replies.ReceiveAsync(); }
            });
            Assert.Equal(-1, reply);
            Assert.Equal(0, replies.Balance);             // the timed-out receive left nothing behind
        }, s_seeded);
    }

    [Fact]
    public void CancellationTokenSource_OnTheSchedulersClock_CancelsInVirtualTime()
    {
        TimeSpan cancelledAfter = TimeSpan.Zero;
        Scheduler.Run(async () =>
        {
            long start = Scheduler.Current!.Time.GetTimestamp();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2), Scheduler.Current!.Time);
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Tasklet.Sleep(TimeSpan.FromHours(1), cts.Token));
            cancelledAfter = Scheduler.Current!.Time.GetElapsedTime(start);
        }, s_seeded);

        Assert.Equal(TimeSpan.FromSeconds(2), cancelledAfter);
    }

    // ---------------------------------------------------------------- runtime.Gosched, time.Sleep, GOMAXPROCS

    [Fact]
    public void TaskletYield_AsGosched_LetsTheOthersRunFirst()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(() => { order.Add("other"); return Task.CompletedTask; });
            order.Add("before");
            await Tasklet.Yield();
            order.Add("after");
        });

        Assert.Equal(["before", "other", "after"], order);
    }

    [Fact]
    public void TaskletSleep_AsTimeSleep_SleepsOnTheSchedulersClock()
    {
        TimeSpan slept = TimeSpan.Zero;
        Scheduler.Run(async () =>
        {
            long start = Scheduler.Current!.Time.GetTimestamp();
            await Tasklet.Sleep(TimeSpan.FromMilliseconds(100));
            slept = Scheduler.Current!.Time.GetElapsedTime(start);
        }, s_seeded);

        Assert.Equal(TimeSpan.FromMilliseconds(100), slept);
    }

    [Fact]
    public async Task RunAsync_SeveralSchedulers_AsGomaxprocs_ShareAChannelAcrossThreads()
    {
        var items = new Channel<int>(capacity: 8);
        long sum = 0;
        using var producers = new Scheduler();
        using var consumers = new Scheduler();
        producers.Go(async () =>
        {
            for (int i = 1; i <= 1000; i++)
            {
                await items.SendAsync(i);
            }

            items.Close();
        }, "producer");
        consumers.Go(async () =>
        {
            await foreach (int item in items)
            {
                sum += item;
            }
        }, "consumer");

        Task[] running = [producers.RunAsync(), consumers.RunAsync()];

        await Task.WhenAll(running).WaitAsync(TimeSpan.FromSeconds(60)); // a hang guard only: throws TimeoutException
        Assert.Equal(1000 * 1001 / 2, sum);
    }

    [Fact]
    public void RunInThread_BlockingWork_RunsApartWhileTheTaskletWaits()
    {
        byte[] data = [1, 2, 3, 4];
        int result = 0;
        Scheduler.Run(async () =>
        {
            int digest = await Tasklet.RunInThread(token => Checksum(data, token));
            result = digest;
        });

        Assert.Equal(10, result);

        static int Checksum(byte[] data, CancellationToken token)
        {
            token.ThrowIfCancellationRequested();
            return data.Sum(b => b);
        }
    }

    // ---------------------------------------------------------------- deadlock, panic

    [Fact]
    public void DeadlockException_AsAllGoroutinesAreAsleep_NamesEveryBlockedTasklet()
    {
        using var scheduler = new Scheduler();
        IReadOnlyList<Tasklet> blocked = [];
        string message = "";
        Tasklet? a = null, b = null;
        scheduler.Go(async () =>
        {
            var ab = new Channel<int> { Name = "a to b" };
            var ba = new Channel<int> { Name = "b to a" };
            a = Tasklet.Go(async () => { await ba.ReceiveAsync(); await ab.SendAsync(1); }, "a");
            b = Tasklet.Go(async () => { await ab.ReceiveAsync(); await ba.SendAsync(1); }, "b");
            await Task.CompletedTask;
        });

        try { scheduler.Run(); } catch (DeadlockException e) { blocked = e.Blocked; message = e.Message; }

        Assert.Equal(2, blocked.Count);
        Assert.Contains($"tasklet {a!.Id} 'a': receive on channel 'b to a' (unbuffered, 0 buffered)", message, StringComparison.Ordinal);
        Assert.Contains($"tasklet {b!.Id} 'b': receive on channel 'a to b'", message, StringComparison.Ordinal);
    }

    [Fact]
    public void Failure_AsPanic_AwaitRethrows_AndNobodyJoiningIsReportedByRun()
    {
        var reported = new List<string>();
        string recovered = "";
        var options = new SchedulerOptions { OnUnobservedFailure = (t, e) => reported.Add($"{t.Name}: {e.Message}") };
        using var scheduler = new Scheduler(options);
        scheduler.Go(async () =>
        {
            Tasklet worker = Tasklet.Go(() => throw new InvalidOperationException("boom"), "worker");
            try { await worker; } catch (InvalidOperationException e) { recovered = e.Message; }
            _ = Tasklet.Go(() => throw new InvalidOperationException("nobody joins"), "orphan");
            await Tasklet.Yield();
        });

        AggregateException failures = Assert.Throws<AggregateException>(scheduler.Run);

        Assert.Equal("boom", recovered);
        Assert.Equal("nobody joins", Assert.Single(failures.InnerExceptions).Message);
        Assert.Equal(["orphan: nobody joins"], reported);
    }

    // ---------------------------------------------------------------- differences that bite

    [Fact]
    public void NoPreemption_ALoopWithoutAnAwait_RunsToTheEndBeforeAnyoneElse_CheckpointGivesWay()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            Tasklet other = Tasklet.Go(() => { order.Add("other"); return Task.CompletedTask; }, "other");
            Tasklet busy = Tasklet.Go(() =>
            {
                for (int i = 0; i < 1000; i++)
                {
                    Spin();
                }

                order.Add("busy loop done");
                return Task.CompletedTask;
            }, "busy");
            await Tasklet.WhenAll(other, busy);

            order.Clear();
            Tasklet polite = Tasklet.Go(async () =>
            {
                for (int i = 0; i < 1000; i++)
                {
                    Spin();
                    await Tasklet.Checkpoint();
                }

                order.Add("polite loop done");
            }, "polite");
            other = Tasklet.Go(() => { order.Add("other"); return Task.CompletedTask; }, "other");
            await Tasklet.WhenAll(other, polite);
        }, s_seeded); // under a Seed a time slice is 64 checkpoints, so the order is exact

        Assert.Equal(["other", "polite loop done"], order);

        static void Spin() => Thread.SpinWait(10);
    }

    [Fact]
    public void NoPreemption_SpawnBeforeALoopWithoutAnAwait_RunsOnlyAfterIt()
    {
        var order = new List<string>();
        Scheduler.Run(async () =>
        {
            _ = Tasklet.Go(() => { order.Add("other"); return Task.CompletedTask; }, "other");
            for (int i = 0; i < 1000; i++)
            {
                Thread.SpinWait(10);
            }

            order.Add("loop done");
            await Tasklet.Yield();
        });

        Assert.Equal(["loop done", "other"], order);
    }

    [Fact]
    public void ValueTask_OfAWaitThatParked_AwaitedTwice_Throws()
    {
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>();
            _ = Tasklet.Go(async () => await ch.SendAsync(1));
            ValueTask<int> pending = ch.ReceiveAsync();   // parks: the sender has not run yet
            int first = await pending;
            Assert.Equal(1, first);
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await pending);
        });
    }

    [Fact]
    public void ConfigureAwaitFalse_LeavesTheScheduler_TheNextLibraryCallSaysSo()
    {
        bool resumedOffTheScheduler = false;
        using var scheduler = new Scheduler();
        scheduler.Go(async () => await Leave(), "leaver");

        AggregateException failures = Assert.Throws<AggregateException>(scheduler.Run);

        Assert.True(resumedOffTheScheduler);
        var failure = Assert.IsType<InvalidOperationException>(Assert.Single(failures.InnerExceptions));
        Assert.Contains("ConfigureAwait(false)", failure.Message, StringComparison.Ordinal);

        // A method the tasklet awaits: the body itself, on the library's builder, always resumes on its scheduler.
        async Task Leave()
        {
#pragma warning disable TASKLET001 // the misuse the page warns about, run to show what it does
            await Task.Run(() => { }).ConfigureAwait(false);
#pragma warning restore TASKLET001
            resumedOffTheScheduler = Tasklet.Current is null;
            await Tasklet.Yield();
        }
    }
}
