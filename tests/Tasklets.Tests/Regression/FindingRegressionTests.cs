using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Regression;

/// <summary>
/// Regression tests for review findings. Each asserts the intended behaviour. Deterministic where possible (virtual
/// clock, run-until-idle); real-thread races are bounded by count, assert invariants only, and every wait on another
/// thread has a hang guard, so that the suite never hangs.
/// </summary>
public class FindingRegressionTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan s_stressGuard = TimeSpan.FromSeconds(30);

    // ---------------------------------------------------------------- finding 1: select fires a case whose partner was claimed

    // The racing selects below use many cases on x: a select checks every case's readiness before it claims the chosen
    // case's partner, so many cases widen the window in which another party can claim that partner (the race is the
    // same with one case, only rarer).
    private const int WideCases = 256;

    // Finding 1: a select's send on x is never reported when the receiving select was won meanwhile by a sender on y.
    [Fact]
    public void Finding1_TrySendRacingPartnerClaimedOnOtherChannel_EverySentValueReceivedOnce()
    {
        const int Rounds = 60_000;
        var x = new Channel<int>();
        var y = new Channel<int>();
        var receivedOnX = new List<int>();
        var reportedSent = new List<int>();
        var failures = new Failures();
        int stop = 0;
        using var scheduler = new Scheduler();
        IDisposable hold = scheduler.KeepAlive(); // no deadlock detection: the partners are OS threads
        scheduler.Go(async () =>
        {
            try
            {
                var rx = x.ReceiveCase();
                var ry = y.ReceiveCase();
                for (int i = 0; i < Rounds; i++)
                {
                    if (await Select.WaitAsync(rx, ry) == 0)
                    {
                        receivedOnX.Add(rx.Value);
                    }
                }
            }
            finally
            {
                hold.Dispose();
            }
        });

        Thread runner = StartThread(failures, () => scheduler.Run(), () => Volatile.Write(ref stop, 1));
        Thread ySender = StartThread(failures, () =>
        {
            try
            {
                while (Volatile.Read(ref stop) == 0)
                {
                    y.Send(-1);
                }
            }
            catch (ChannelClosedException)
            {
                // Stopped.
            }
        });
        Thread xSender = StartThread(failures, () =>
        {
            SendCase<int>[] cases = SendCases(x, WideCases);
            int next = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                next = Renumber(cases, next);
                int fired = Select.Try(cases);
                if (fired >= 0)
                {
                    reportedSent.Add(cases[fired].Item);
                }
            }
        });

        Assert.True(runner.Join(s_stressGuard), "hang guard: scheduler");
        y.Close();
        Assert.True(ySender.Join(s_stressGuard), "hang guard: y sender");
        Assert.True(xSender.Join(s_stressGuard), "hang guard: x sender");
        failures.ThrowIfAny();
        AssertConserved(reportedSent, receivedOnX);
    }

    // Finding 1: receives on x ended by cancellation from another thread never count as deliveries of a select's send.
    [Fact]
    public void Finding1_TrySendRacingReceiverCancellation_SentEqualsReceived()
    {
        const int Receivers = 4;
        const int RoundsEach = 2_000;
        var x = new Channel<int>();
        var received = new List<int>();
        var reportedSent = new List<int>();
        var failures = new Failures();
        var published = new ConcurrentQueue<CancellationTokenSource>();
        var sources = new ConcurrentQueue<CancellationTokenSource>();
        int stop = 0;
        int receiversLeft = Receivers;
        using var scheduler = new Scheduler();
        IDisposable hold = scheduler.KeepAlive();
        for (int r = 0; r < Receivers; r++)
        {
            scheduler.Go(async () =>
            {
                try
                {
                    for (int i = 0; i < RoundsEach; i++)
                    {
                        var cts = new CancellationTokenSource();
                        sources.Enqueue(cts);
                        published.Enqueue(cts); // in the order the receives queue up on x
                        try
                        {
                            received.Add(await x.ReceiveAsync(cts.Token));
                        }
                        catch (OperationCanceledException)
                        {
                            // Cancelled: took nothing.
                        }
                    }
                }
                finally
                {
                    if (--receiversLeft == 0)
                    {
                        hold.Dispose();
                    }
                }
            });
        }

        Thread runner = StartThread(failures, () => scheduler.Run(), () => Volatile.Write(ref stop, 1));
        Thread canceller = StartThread(failures, () =>
        {
            int n = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                if (published.TryDequeue(out CancellationTokenSource? cts))
                {
                    Thread.SpinWait(n++ % 2048);
                    cts.Cancel();
                }
            }
        });
        Thread sender = StartThread(failures, () =>
        {
            SendCase<int>[] cases = SendCases(x, WideCases);
            int next = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                next = Renumber(cases, next);
                int fired = Select.Try(cases);
                if (fired >= 0)
                {
                    reportedSent.Add(cases[fired].Item);
                }
            }
        });

        Assert.True(runner.Join(s_stressGuard), "hang guard: scheduler");
        Assert.True(canceller.Join(s_stressGuard), "hang guard: canceller");
        Assert.True(sender.Join(s_stressGuard), "hang guard: sender");
        foreach (CancellationTokenSource cts in sources)
        {
            cts.Dispose();
        }

        failures.ThrowIfAny();
        AssertConserved(reportedSent, received);
    }

    // Finding 1: receivers killed from another thread while an OS thread sends on x with Select.Try and Select.WaitAsync.
    [Fact]
    public void Finding1_SendsRacingReceiverKills_SentEqualsReceived()
    {
        const int Receivers = 8_000;
        const int Window = 1; // one receiver parked at a time: a kill then leaves the sender no other partner
        var x = new Channel<int>();
        var received = new List<int>();
        var reportedSent = new List<int>();
        var failures = new Failures();
        var published = new ConcurrentQueue<Tasklet>();
        int stop = 0;
        using var stopSends = new CancellationTokenSource();
        using var scheduler = new Scheduler();
        IDisposable hold = scheduler.KeepAlive();
        scheduler.Go(async () =>
        {
            try
            {
                var alive = new Queue<Tasklet>();
                for (int i = 0; i < Receivers; i++)
                {
                    bool viaSelect = (i & 1) != 0;
                    Tasklet receiver = Tasklet.Go(async () =>
                    {
                        published.Enqueue(Tasklet.Current!); // started: in the order the receivers queue up on x
                        if (viaSelect)
                        {
                            var rx = x.ReceiveCase();
                            await Select.WaitAsync(rx);
                            received.Add(rx.Value);
                        }
                        else
                        {
                            received.Add(await x.ReceiveAsync());
                        }
                    });
                    alive.Enqueue(receiver);
                    if (alive.Count == Window)
                    {
                        await JoinIgnoringKillAsync(alive.Dequeue());
                    }
                }

                while (alive.Count > 0)
                {
                    await JoinIgnoringKillAsync(alive.Dequeue());
                }
            }
            finally
            {
                hold.Dispose();
            }
        });

        Thread runner = StartThread(failures, () => scheduler.Run(), () => Volatile.Write(ref stop, 1));
        Thread killer = StartThread(failures, () =>
        {
            int n = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                if (published.TryDequeue(out Tasklet? t))
                {
                    Thread.SpinWait(n++ % 16_384); // kill at every offset into the sender's select
                    t.Kill();
                }
            }
        });
        Thread sender = StartThread(failures, () =>
        {
            SendCase<int>[] cases = SendCases(x, WideCases);
            int next = 0;
            for (int round = 0; Volatile.Read(ref stop) == 0; round++)
            {
                next = Renumber(cases, next);
                int fired;
                if ((round & 3) != 0)
                {
                    fired = Select.Try(cases);
                }
                else
                {
                    try
                    {
                        fired = Select.WaitAsync(stopSends.Token, cases).AsTask().GetAwaiter().GetResult();
                    }
                    catch (OperationCanceledException)
                    {
                        fired = -1; // stopped: this select sent nothing
                    }
                }

                if (fired >= 0)
                {
                    reportedSent.Add(cases[fired].Item);
                }
            }
        });

        Assert.True(runner.Join(s_stressGuard), "hang guard: scheduler");
        stopSends.Cancel();
        Assert.True(killer.Join(s_stressGuard), "hang guard: killer");
        Assert.True(sender.Join(s_stressGuard), "hang guard: sender");
        failures.ThrowIfAny();
        AssertConserved(reportedSent, received);
    }

    // Finding 1: a select's receive never fires with a value nobody sent when the sender's wait is cancelled concurrently.
    [Fact]
    public void Finding1_SelectReceiveRacingSenderCancellation_NoPhantomValue()
    {
        const int Rounds = 10_000;
        const int Senders = 3;
        var x = new Channel<int>();
        var received = new List<int>();
        var reportedSent = new ConcurrentQueue<int>();
        var failures = new Failures();
        var published = new ConcurrentQueue<CancellationTokenSource>();
        var sources = new ConcurrentQueue<CancellationTokenSource>();
        int stop = 0;
        int nextItem = 0;
        using var stopSends = new CancellationTokenSource();
        using var scheduler = new Scheduler();
        IDisposable hold = scheduler.KeepAlive();
        scheduler.Go(async () =>
        {
            try
            {
                var cases = new ReceiveCase<int>[WideCases];
                for (int i = 0; i < cases.Length; i++)
                {
                    cases[i] = x.ReceiveCase();
                }

                for (int i = 0; i < Rounds; i++)
                {
                    int fired = await Select.WaitAsync(cases);
                    received.Add(cases[fired].Value);
                }
            }
            finally
            {
                hold.Dispose();
            }
        });

        Thread runner = StartThread(failures, () => scheduler.Run(), () => Volatile.Write(ref stop, 1));
        var senders = new List<Thread>();
        for (int s = 0; s < Senders; s++)
        {
            senders.Add(StartThread(failures, () =>
            {
                while (Volatile.Read(ref stop) == 0)
                {
                    var cts = CancellationTokenSource.CreateLinkedTokenSource(stopSends.Token);
                    sources.Enqueue(cts);
                    published.Enqueue(cts);
                    int item = Interlocked.Increment(ref nextItem);
                    try
                    {
                        x.SendAsync(item, cts.Token).AsTask().GetAwaiter().GetResult();
                        reportedSent.Enqueue(item);
                    }
                    catch (OperationCanceledException)
                    {
                        // Cancelled: delivered nothing.
                    }
                }
            }));
        }

        Thread canceller = StartThread(failures, () =>
        {
            int n = 0;
            while (Volatile.Read(ref stop) == 0)
            {
                if (published.TryDequeue(out CancellationTokenSource? cts))
                {
                    Thread.SpinWait(n++ % 2048);
                    cts.Cancel();
                }
            }
        });

        Assert.True(runner.Join(s_stressGuard), "hang guard: scheduler");
        stopSends.Cancel(); // ends the senders' last waits: the receiver has stopped
        Assert.True(canceller.Join(s_stressGuard), "hang guard: canceller");
        foreach (Thread sender in senders)
        {
            Assert.True(sender.Join(s_stressGuard), "hang guard: sender");
        }

        foreach (CancellationTokenSource cts in sources)
        {
            cts.Dispose();
        }

        failures.ThrowIfAny();
        AssertConserved([.. reportedSent], received);
    }

    // ---------------------------------------------------------------- finding 2: Select.Try with a preferred partner

    // Finding 2: Select.Try(send) to a parked receiver with Preference = Receiver returns 0 and leaves the sender usable.
    [Fact]
    public void Finding2_TrySendToPreferredReceiver_ReturnsZeroAndSenderStaysUsable()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int> { Preference = ChannelPreference.Receiver };
            Tasklet<int> receiver = Tasklet.Go(async () => await ch.ReceiveAsync());
            await Tasklet.Yield(); // the receiver parks
            Assert.Equal(-1, ch.Balance);
            Assert.Equal(0, Select.Try(ch.SendCase(5)));

            var other = new Channel<int>();
            _ = Tasklet.Go(async () => await other.SendAsync(9));
            Assert.Equal(9, await other.ReceiveAsync());
            Assert.Equal(5, await receiver);
        }, new SchedulerOptions { Seed = 1 });
    }

    // Finding 2: the mirror: Select.Try(receive) from a parked sender with Preference = Sender.
    [Fact]
    public void Finding2_TryReceiveFromPreferredSender_ReturnsZeroAndReceiverStaysUsable()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int> { Preference = ChannelPreference.Sender };
            Tasklet sender = Tasklet.Go(async () => await ch.SendAsync(5));
            await Tasklet.Yield(); // the sender parks
            Assert.Equal(1, ch.Balance);
            var rc = ch.ReceiveCase();
            Assert.Equal(0, Select.Try(rc));
            Assert.Equal(5, rc.Value);

            var other = new Channel<int>();
            _ = Tasklet.Go(async () => await other.SendAsync(9));
            Assert.Equal(9, await other.ReceiveAsync());
            await sender;
        }, new SchedulerOptions { Seed = 1 });
    }

    // ---------------------------------------------------------------- finding 3: timeout scopes disposed out of order

    // Finding 3: disposing the outer scope ends the inner one too: the send completes at 5 s and is received.
    [Fact]
    public void Finding3_OuterScopeDisposedFirst_SendCompletesNormallyAndIsReceived()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int>();
            Tasklet<int> receiver = Tasklet.Go(async () =>
            {
                await Tasklet.Sleep(TimeSpan.FromSeconds(5));
                return await ch.ReceiveAsync();
            });
            TimeProvider time = Scheduler.Current!.Time;
            DateTimeOffset start = time.GetUtcNow();
            TimeoutScope outer = Tasklet.Timeout(TimeSpan.FromSeconds(10));
            TimeoutScope inner = Tasklet.Timeout(TimeSpan.FromSeconds(1));
            outer.Dispose();
            await ch.SendAsync(42);
            TimeSpan elapsed = time.GetUtcNow() - start;
            inner.Dispose();
            Assert.Equal(TimeSpan.FromSeconds(5), elapsed);
            Assert.Equal(42, await receiver);
        }, new SchedulerOptions { Seed = 1 });
    }

    // Finding 3: the receive mirror: after the out-of-order dispose the receive returns the 7 sent at 5 s, not default.
    [Fact]
    public void Finding3_OuterScopeDisposedFirst_ReceiveReturnsTheSentItem()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int>();
            Tasklet sender = Tasklet.Go(async () =>
            {
                await Tasklet.Sleep(TimeSpan.FromSeconds(5));
                await ch.SendAsync(7);
            });
            TimeProvider time = Scheduler.Current!.Time;
            DateTimeOffset start = time.GetUtcNow();
            TimeoutScope outer = Tasklet.Timeout(TimeSpan.FromSeconds(10));
            TimeoutScope inner = Tasklet.Timeout(TimeSpan.FromSeconds(1));
            outer.Dispose();
            int got = await ch.ReceiveAsync();
            TimeSpan elapsed = time.GetUtcNow() - start;
            inner.Dispose();
            Assert.Equal(7, got);
            Assert.Equal(TimeSpan.FromSeconds(5), elapsed);
            await sender;
        }, new SchedulerOptions { Seed = 1 });
    }

    // Finding 3 (control): scopes disposed in order still time out; the timed-out send delivered nothing.
    [Fact]
    public void Finding3_ScopesDisposedInOrder_SendTimesOutAndDeliversNothing()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int>();
            bool delivered = true;
            Tasklet receiver = Tasklet.Go(async () =>
            {
                await Tasklet.Sleep(TimeSpan.FromSeconds(5));
                delivered = ch.TryReceive(out _);
            });
            TimeProvider time = Scheduler.Current!.Time;
            DateTimeOffset start = time.GetUtcNow();
            TaskletTimeoutException? timedOut = null;
            using (Tasklet.Timeout(TimeSpan.FromSeconds(10)))
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    try
                    {
                        await ch.SendAsync(42);
                    }
                    catch (TaskletTimeoutException e)
                    {
                        timedOut = e;
                    }

                    Assert.Equal(0, ch.Balance);
                }
            }

            Assert.NotNull(timedOut);
            Assert.Equal(TimeSpan.FromSeconds(1), time.GetUtcNow() - start);
            await receiver;
            Assert.False(delivered);
            Assert.Equal(0, ch.Balance);
        }, new SchedulerOptions { Seed = 1 });
    }

    // ---------------------------------------------------------------- finding 4: non-tasklet select with TimeSpan.MaxValue

    // Finding 4: a non-tasklet Select.WaitAsync(TimeSpan.MaxValue, ...) waits like an infinite one and completes on a send.
    [Fact]
    public async Task Finding4_ExternalSelectWithMaxValueTimeout_WaitsAndCompletes()
    {
        var ch = new Channel<int>();
        var rc = ch.ReceiveCase();
        ValueTask<int> pending = Select.WaitAsync(TimeSpan.MaxValue, rc);
        Assert.Equal(-1, ch.Balance);
        Assert.True(ch.TrySend(42));
        int fired = await pending.AsTask().WaitAsync(s_guard); // hang guard: TimeoutException
        Assert.Equal(0, fired);
        Assert.Equal(42, rc.Value);
        Assert.Equal(0, ch.Balance);
    }

    // ---------------------------------------------------------------- finding 5: switching while a library ValueTask is stored

    // Finding 5: Yield while a receive's ValueTask is stored; the stored receive still gets the item.
    [Fact]
    public void Finding5_YieldWhileReceiveStored_StoredReceiveGetsItem()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int>();
            ValueTask<int> pending = ch.ReceiveAsync();
            await Tasklet.Yield();
            Tasklet sender = Tasklet.Go(async () => await ch.SendAsync(7));
            Assert.Equal(7, await pending);
            await sender;
        }, new SchedulerOptions { Seed = 1 });
    }

    // Finding 5: Sleep(TimeSpan.Zero) while a receive's ValueTask is stored.
    [Fact]
    public void Finding5_SleepZeroWhileReceiveStored_StoredReceiveGetsItem()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int>();
            ValueTask<int> pending = ch.ReceiveAsync();
            await Tasklet.Sleep(TimeSpan.Zero);
            Tasklet sender = Tasklet.Go(async () => await ch.SendAsync(7));
            Assert.Equal(7, await pending);
            await sender;
        }, new SchedulerOptions { Seed = 1 });
    }

    // Finding 5: Checkpoints that yield (64 per step in deterministic mode) while a receive's ValueTask is stored.
    [Fact]
    public void Finding5_CheckpointsWhileReceiveStored_StoredReceiveGetsItem()
    {
        RunGuarded(async () =>
        {
            var ch = new Channel<int>();
            ValueTask<int> pending = ch.ReceiveAsync();
            long steps = 0;
            Tasklet counter = Tasklet.Go(() =>
            {
                steps++;
                return Task.CompletedTask;
            });
            for (int i = 0; i < 3 * 64; i++)
            {
                await Tasklet.Checkpoint();
            }

            Assert.Equal(1, steps); // the checkpoints did yield: the counter ran meanwhile
            Tasklet sender = Tasklet.Go(async () => await ch.SendAsync(7));
            Assert.Equal(7, await pending);
            await sender;
            await counter;
        }, new SchedulerOptions { Seed = 1 });
    }

    // ---------------------------------------------------------------- finding 6: a consumed ValueTask awaited again

    // Finding 6: awaiting a consumed ReceiveAsync ValueTask again throws InvalidOperationException, it does not park forever.
    [Fact]
    public void Finding6_ReceiveValueTaskAwaitedTwice_SecondAwaitThrows()
    {
        using Scheduler scheduler = SchedulerExtensions.Deterministic();
        int first = 0;
        Exception? second = null;
        Tasklet main = scheduler.Go(async () =>
        {
            var ch = new Channel<int>();
            _ = Tasklet.Go(async () => await ch.SendAsync(1));
            ValueTask<int> vt = ch.ReceiveAsync(); // parks: the sender has not run yet
            first = await vt;
            try
            {
#pragma warning disable TASKLET004 // the misuse under test: the second await must throw
                await vt;
#pragma warning restore TASKLET004
            }
            catch (InvalidOperationException e)
            {
                second = e;
            }
        });
        scheduler.RunUntilIdle();
        Assert.Equal(1, first);
        Assert.True(main.State == TaskletState.Dead, $"the second await parked forever: the tasklet is {main.State}");
        InvalidOperationException e = Assert.IsType<InvalidOperationException>(second);
        Assert.Contains("already awaited", e.Message, StringComparison.Ordinal);
    }

    // Finding 6: the same with SendAsync's ValueTask.
    [Fact]
    public void Finding6_SendValueTaskAwaitedTwice_SecondAwaitThrows()
    {
        using Scheduler scheduler = SchedulerExtensions.Deterministic();
        int got = 0;
        Exception? second = null;
        Tasklet main = scheduler.Go(async () =>
        {
            var ch = new Channel<int>();
            _ = Tasklet.Go(async () => got = await ch.ReceiveAsync());
            ValueTask vt = ch.SendAsync(1); // parks: the receiver has not run yet
            await vt;
            try
            {
#pragma warning disable TASKLET004 // the misuse under test: the second await must throw
                await vt;
#pragma warning restore TASKLET004
            }
            catch (InvalidOperationException e)
            {
                second = e;
            }
        });
        scheduler.RunUntilIdle();
        Assert.Equal(1, got);
        Assert.True(main.State == TaskletState.Dead, $"the second await parked forever: the tasklet is {main.State}");
        InvalidOperationException e = Assert.IsType<InvalidOperationException>(second);
        Assert.Contains("already awaited", e.Message, StringComparison.Ordinal);
    }

    // ---------------------------------------------------------------- finding 7: Select.Try takes a wrong default

    // Finding 7: Go's TestNonblockRecvRace: a buffered item or a close makes the receive ready at every instant.
    [Fact]
    public void Finding7_NonblockRecvRace_NeverWrongDefault()
    {
        int wrongDefaults = RunRounds(
            rounds: 200_000,
            prepare: _ =>
            {
                var c = new Channel<int>(1);
                Assert.True(c.TrySend(1));
                return (c, new SelectCase[] { c.ReceiveCase() });
            },
            racer: c =>
            {
                c.Close();
                c.TryReceive(out _);
            });
        Assert.Equal(0, wrongDefaults);
    }

    // Finding 7: Go's TestNonblockSelectRace: c1 holds an item until c2 gets one; one of them is ready at every instant.
    [Fact]
    public void Finding7_NonblockSelectRace_NeverWrongDefault()
    {
        Channel<int>? c2 = null;
        int wrongDefaults = RunRounds(
            rounds: 50_000,
            prepare: _ =>
            {
                var c1 = new Channel<int>(1);
                c2 = new Channel<int>(1);
                Assert.True(c1.TrySend(1));
                return (c1, new SelectCase[] { c1.ReceiveCase(), c2.ReceiveCase() });
            },
            racer: c1 =>
            {
                c2!.TrySend(1);
                Select.Try(c1.ReceiveCase());
            });
        Assert.Equal(0, wrongDefaults);
    }

    // Finding 7: Go's TestNonblockSelectRace2: as above, with close(c2) instead of a send on it.
    [Fact]
    public void Finding7_NonblockSelectRace2_NeverWrongDefault()
    {
        Channel<int>? c2 = null;
        int wrongDefaults = RunRounds(
            rounds: 50_000,
            prepare: _ =>
            {
                var c1 = new Channel<int>(1);
                c2 = new Channel<int>();
                Assert.True(c1.TrySend(1));
                return (c1, new SelectCase[] { c1.ReceiveCase(), c2.ReceiveCase() });
            },
            racer: c1 =>
            {
                c2!.Close();
                Select.Try(c1.ReceiveCase());
            });
        Assert.Equal(0, wrongDefaults);
    }

    // Finding 7: TestNonblockRecvRace with tasklets of two schedulers, each on its own thread.
    [Fact]
    public void Finding7_NonblockRecvRace_TaskletsOfTwoSchedulers_NeverWrongDefault()
    {
        const int Rounds = 20_000;
        var rounds = new Channel<Channel<int>>();
        var verdicts = new Channel<bool>();
        int wrongDefaults = 0;
        var failures = new Failures();
        using var pollers = new Scheduler();
        using var closers = new Scheduler();
        IDisposable pollersHold = pollers.KeepAlive(); // the partner is another scheduler's tasklet
        IDisposable closersHold = closers.KeepAlive();
        pollers.Go(async () =>
        {
            using (pollersHold)
            {
                for (int i = 0; i < Rounds; i++)
                {
                    Channel<int> c = await rounds.ReceiveAsync();
                    await verdicts.SendAsync(Select.Try(c.ReceiveCase()) == 0);
                }
            }
        });
        closers.Go(async () =>
        {
            using (closersHold)
            {
                for (int i = 0; i < Rounds; i++)
                {
                    var c = new Channel<int>(1);
                    c.TrySend(1);
                    await rounds.SendAsync(c);
                    c.Close();
                    c.TryReceive(out _);
                    if (!await verdicts.ReceiveAsync())
                    {
                        wrongDefaults++;
                    }
                }
            }
        });
        Thread a = StartThread(failures, () => pollers.Run());
        Thread b = StartThread(failures, () => closers.Run());
        Assert.True(a.Join(s_stressGuard), "hang guard: pollers");
        Assert.True(b.Join(s_stressGuard), "hang guard: closers");
        failures.ThrowIfAny();
        Assert.Equal(0, wrongDefaults);
    }

    // ---------------------------------------------------------------- finding 9: smaller ones

    // Finding 9a: Dump from another thread while tasklets join each other and select never throws.
    [Fact]
    public void Finding9_DumpFromAnotherThreadWhileJoiningAndSelecting_NeverThrows()
    {
        const int Dumps = 1_000_000;
        var x = new Channel<int>();
        var y = new Channel<int>();
        var z = new Channel<int>();
        var failures = new Failures();
        int stop = 0;
        using var scheduler = new Scheduler();
        scheduler.Go(async () =>
        {
            while (Volatile.Read(ref stop) == 0)
            {
                Tasklet child = Tasklet.Go(async () => await Tasklet.Yield(), "child");
                await child;
            }
        }, "joiner");
        scheduler.Go(async () =>
        {
            // Alternates a select and a plain receive, each parked.
            var rx = x.ReceiveCase();
            var ry = y.ReceiveCase();
            while (await Select.WaitAsync(rx, ry) == 0 || ry.Value >= 0)
            {
                await z.ReceiveAsync();
            }
        }, "selector");
        scheduler.Go(async () =>
        {
            for (int i = 0; Volatile.Read(ref stop) == 0; i++)
            {
                await ((i & 1) == 0 ? x : y).SendAsync(i);
                await Tasklet.Yield();
                await z.SendAsync(i);
            }

            await y.SendAsync(-1);
        }, "sender");

        Thread runner = StartThread(failures, () => scheduler.Run());
        Exception? dumpFailure = null;
        int dumps = 0;
        Thread dumper = StartThread(failures, () =>
        {
            try
            {
                for (; dumps < Dumps; dumps++)
                {
                    _ = scheduler.Dump();
                }
            }
            catch (Exception e)
            {
                dumpFailure = e;
            }
            finally
            {
                Volatile.Write(ref stop, 1);
            }
        });
        Assert.True(dumper.Join(s_stressGuard), "hang guard: dumper");
        Assert.True(runner.Join(s_stressGuard), "hang guard: scheduler");
        failures.ThrowIfAny();
        Assert.True(dumpFailure is null, $"Dump threw after {dumps} dumps: {dumpFailure}");
    }

    // Finding 9b: an exception thrown into a tasklet that never started is reported by Run.
    [Fact]
    public void Finding9_ThrowIntoUnstartedTasklet_RunReportsIt()
    {
        using var scheduler = new Scheduler();
        Tasklet t = scheduler.Go(() => Task.CompletedTask);
        var thrown = new InvalidOperationException("x");
        t.Throw(thrown);
        AggregateException e = Assert.Throws<AggregateException>(() => scheduler.Run());
        Assert.Contains(e.Flatten().InnerExceptions, inner => ReferenceEquals(inner, thrown));
    }

    // Finding 9c: running another scheduler inside a tasklet throws and says to run it on its own thread.
    [Fact]
    public void Finding9_OtherSchedulersRunInsideTasklet_ThrowsNamingThread()
    {
        RunGuarded(() =>
        {
            using var other = new Scheduler();
            other.Go(async () => await Tasklet.Yield());
            InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => other.Run());
            Assert.Contains("thread", e.Message, StringComparison.OrdinalIgnoreCase);
            return Task.CompletedTask;
        }, null);
    }

    // Finding 9d: the joiners of a tasklet are not guarded by its SynchronizationContext's monitor, which user code can take.
    [Fact]
    public void Finding9_UserLockOnTaskletContext_DoesNotBlockFinishOrJoin()
    {
        using var scheduler = new Scheduler();
        SynchronizationContext? context = null;
        Tasklet first = scheduler.Go(async () =>
        {
            context = SynchronizationContext.Current;
            await Tasklet.Yield();
        });
        scheduler.RunOnce(); // first starts, captures its context and yields
        Assert.NotNull(context);
        bool joined = false;
        scheduler.Go(async () =>
        {
            await first;
            joined = true;
        });
        var failures = new Failures();
        Thread runner;
        Monitor.Enter(context);
        try
        {
            // RunFor rather than Run: a hung Run() would also hold up deadlock detection in other tests.
            runner = StartThread(failures, () => scheduler.RunFor(TimeSpan.FromSeconds(30)));
            Assert.True(runner.Join(s_guard), "hang guard: the scheduler blocked on the monitor user code holds");
        }
        finally
        {
            Monitor.Exit(context);
        }

        Assert.True(runner.Join(s_guard), "hang guard after release");
        failures.ThrowIfAny();
        Assert.True(joined);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>Runs <paramref name="main"/> with Scheduler.Run on a background thread, with a hang guard; rethrows its failure.</summary>
    internal static void RunGuarded(Func<Task> main, SchedulerOptions? options)
    {
        var failures = new Failures();
        Thread thread = StartThread(failures, () => Scheduler.Run(main, options));
        Assert.True(thread.Join(s_guard), "hang guard");
        failures.ThrowIfAny();
    }

    /// <summary>Starts a background thread that records its failure; <paramref name="done"/> runs when it ends.</summary>
    internal static Thread StartThread(Failures failures, Action body, Action? done = null)
    {
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                failures.Add(e);
            }
            finally
            {
                done?.Invoke();
            }
        })
        { IsBackground = true };
        thread.Start();
        return thread;
    }

    /// <summary>Joins a receiver that may have been killed.</summary>
    private static async Task JoinIgnoringKillAsync(Tasklet tasklet)
    {
        try
        {
            await tasklet;
        }
        catch (TaskletExitException)
        {
            // Killed: it took nothing.
        }
    }

    private static SendCase<int>[] SendCases(Channel<int> channel, int count)
    {
        var cases = new SendCase<int>[count];
        for (int i = 0; i < count; i++)
        {
            cases[i] = channel.SendCase(0);
        }

        return cases;
    }

    /// <summary>Gives every case a fresh distinct positive item; returns the last one used.</summary>
    private static int Renumber(SendCase<int>[] cases, int last)
    {
        foreach (SendCase<int> c in cases)
        {
            c.Item = ++last;
        }

        return last;
    }

    /// <summary>Every value reported sent was received exactly once; nothing else (no phantom default) was received.</summary>
    private static void AssertConserved(List<int> reportedSent, List<int> received)
    {
        Assert.DoesNotContain(0, received);
        var receivedSet = new HashSet<int>();
        var duplicates = new List<int>();
        foreach (int v in received)
        {
            if (!receivedSet.Add(v))
            {
                duplicates.Add(v);
            }
        }

        var sentSet = new HashSet<int>(reportedSent);
        var lost = reportedSent.Where(v => !receivedSet.Contains(v)).ToList();
        var unreported = received.Where(v => !sentSet.Contains(v)).ToList();
        Assert.True(
            lost.Count == 0 && unreported.Count == 0 && duplicates.Count == 0,
            $"{reportedSent.Count} reported sent, {received.Count} received: {lost.Count} reported sent but never received "
            + $"(e.g. {string.Join(", ", lost.Take(5))}), {unreported.Count} received but not reported sent "
            + $"(e.g. {string.Join(", ", unreported.Take(5))}), {duplicates.Count} received twice");
    }

    /// <summary>
    /// Go's non-blocking race shape: per round, <paramref name="prepare"/> makes the channels (a case must be ready at
    /// every instant), a worker thread polls them with Select.Try while this thread runs <paramref name="racer"/>.
    /// Returns the number of rounds in which Try took the default case. The start of the racer is jittered by
    /// round so that the two threads meet at every offset.
    /// </summary>
    private static int RunRounds(int rounds, Func<int, (Channel<int> Channel, SelectCase[] Cases)> prepare, Action<Channel<int>> racer)
    {
        int round = 0;
        int answered = 0;
        int wrongDefaults = 0;
        SelectCase[]? cases = null;
        var failures = new Failures();
        Thread worker = StartThread(failures, () =>
        {
            for (int r = 1; r <= rounds; r++)
            {
                var spin = default(SpinWait);
                while (Volatile.Read(ref round) != r)
                {
                    spin.SpinOnce(sleep1Threshold: -1);
                }

                if (Select.Try(Volatile.Read(ref cases)!) == -1)
                {
                    wrongDefaults++;
                }

                Volatile.Write(ref answered, r);
            }
        });

        for (int r = 1; r <= rounds && failures.IsEmpty; r++)
        {
            (Channel<int> channel, SelectCase[] roundCases) = prepare(r);
            Volatile.Write(ref cases, roundCases);
            Volatile.Write(ref round, r);
            Thread.SpinWait(r % 64);
            racer(channel);
            var spin = default(SpinWait);
            while (Volatile.Read(ref answered) != r)
            {
                if (!worker.IsAlive)
                {
                    break;
                }

                spin.SpinOnce(sleep1Threshold: -1);
            }
        }

        Assert.True(worker.Join(s_stressGuard), "hang guard: worker");
        failures.ThrowIfAny();
        return wrongDefaults;
    }

    /// <summary>Failures of helper threads, rethrown on the test thread.</summary>
    internal sealed class Failures
    {
        private readonly List<Exception> _list = [];

        public bool IsEmpty
        {
            get
            {
                lock (_list)
                {
                    return _list.Count == 0;
                }
            }
        }

        public void Add(Exception e)
        {
            lock (_list)
            {
                _list.Add(e);
            }
        }

        public void ThrowIfAny()
        {
            lock (_list)
            {
                if (_list.Count == 1)
                {
                    ExceptionDispatchInfo.Capture(_list[0]).Throw();
                }

                if (_list.Count > 1)
                {
                    throw new AggregateException(_list);
                }
            }
        }
    }
}

/// <summary>The findings whose tests read process-wide state (GC reachability, Timer.ActiveCount): run alone.</summary>
[Collection(NonParallel.Name)]
public class FindingRegressionTestsProcessWide
{
    private const int Joiners = 200;

    // Finding 8a: a cancelled JoinAsync does not stay in the joined tasklet's list (the dead joiners are collectable).
    [Fact]
    public void Finding8_CancelledJoins_DoNotKeepDeadJoinersReachable()
    {
        int alive = -1;
        FindingRegressionTests.RunGuarded(async () =>
        {
            Tasklet target = Tasklet.Go(async () => await Tasklet.Sleep(Timeout.InfiniteTimeSpan), "target");
            var sources = new CancellationTokenSource[Joiners];
            WeakReference[] joiners = SpawnJoiners(target, sources);
            await Tasklet.Yield(); // every joiner parks on the join
            foreach (CancellationTokenSource cts in sources)
            {
                cts.Cancel();
            }

            await Tasklet.Sleep(TimeSpan.FromSeconds(1)); // the joiners resume and die
            alive = CountAliveAfterFullGc(joiners);
            Assert.True(target.IsAlive);
            GC.KeepAlive(target);
            foreach (CancellationTokenSource cts in sources)
            {
                cts.Dispose();
            }
        }, new SchedulerOptions { Seed = 1 });
        Assert.True(alive == 0, $"{alive} of {Joiners} dead joiner tasklets are still reachable");
    }

    // Finding 8a: the same with joins that timed out inside Tasklet.Timeout.
    [Fact]
    public void Finding8_TimedOutJoins_DoNotKeepDeadJoinersReachable()
    {
        int alive = -1;
        FindingRegressionTests.RunGuarded(async () =>
        {
            Tasklet target = Tasklet.Go(async () => await Tasklet.Sleep(Timeout.InfiniteTimeSpan), "target");
            WeakReference[] joiners = SpawnJoiners(target, null);
            await Tasklet.Sleep(TimeSpan.FromSeconds(2)); // the joins time out at 1 s; the joiners die
            alive = CountAliveAfterFullGc(joiners);
            Assert.True(target.IsAlive);
            GC.KeepAlive(target);
        }, new SchedulerOptions { Seed = 1 });
        Assert.True(alive == 0, $"{alive} of {Joiners} dead joiner tasklets are still reachable");
    }

    // Finding 8b: a non-tasklet select with a timeout stops its system timer once it completed.
    [Fact]
    public async Task Finding8_ExternalSelectsWithTimeout_DoNotLeaveTimersRunning()
    {
        const int Selects = 5_000;
        var ch = new Channel<int>();
        var rc = ch.ReceiveCase();
        long before = System.Threading.Timer.ActiveCount;
        for (int i = 0; i < Selects; i++)
        {
            ValueTask<int> pending = Select.WaitAsync(TimeSpan.FromMinutes(10), rc);
            Assert.True(ch.TrySend(i));
            int fired = await pending.AsTask().WaitAsync(TimeSpan.FromSeconds(10)); // hang guard: TimeoutException
            Assert.Equal(0, fired);
        }

        long growth = System.Threading.Timer.ActiveCount - before;
        Assert.True(growth < 500, $"Timer.ActiveCount grew by {growth} over {Selects} completed selects");
    }

    // Finding 8c: a send that timed out does not keep its item reachable while the channel and the tasklet live.
    [Fact]
    public void Finding8_TimedOutSend_DoesNotKeepItemReachable()
    {
        bool itemAlive = true;
        FindingRegressionTests.RunGuarded(async () =>
        {
            var ch = new Channel<byte[]>();
            var item = new StrongBox<WeakReference?>();
            bool timedOut = false;
            Tasklet sender = Tasklet.Go(async () =>
            {
                try
                {
                    using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                    {
                        await ch.SendAsync(AllocateLarge(item));
                    }
                }
                catch (TaskletTimeoutException)
                {
                    timedOut = true;
                }

                await Tasklet.Sleep(Timeout.InfiniteTimeSpan); // stays alive
            });
            await Tasklet.Sleep(TimeSpan.FromSeconds(2));
            Assert.True(timedOut);
            Assert.True(sender.IsAlive);
            GC.Collect();
            GC.WaitForPendingFinalizers();
            GC.Collect();
            itemAlive = item.Value!.IsAlive;
            GC.KeepAlive(ch);
            GC.KeepAlive(sender);
        }, new SchedulerOptions { Seed = 1 });
        Assert.False(itemAlive, "the item of the timed-out send is still reachable");
    }

    /// <summary>Spawns joiners of <paramref name="target"/> (cancellable by <paramref name="sources"/>, or inside a 1 s timeout); returns weak references to them.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference[] SpawnJoiners(Tasklet target, CancellationTokenSource[]? sources)
    {
        var joiners = new WeakReference[Joiners];
        for (int i = 0; i < Joiners; i++)
        {
            Tasklet joiner;
            if (sources is not null)
            {
                var cts = new CancellationTokenSource();
                sources[i] = cts;
                CancellationToken token = cts.Token;
                joiner = Tasklet.Go(async () =>
                {
                    try
                    {
                        await target.JoinAsync(token);
                    }
                    catch (OperationCanceledException)
                    {
                        // Expected.
                    }
                });
            }
            else
            {
                joiner = Tasklet.Go(async () =>
                {
                    try
                    {
                        using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                        {
                            await target.JoinAsync();
                        }
                    }
                    catch (TaskletTimeoutException)
                    {
                        // Expected.
                    }
                });
            }

            joiners[i] = new WeakReference(joiner);
        }

        return joiners;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static byte[] AllocateLarge(StrongBox<WeakReference?> reference)
    {
        byte[] item = new byte[10_000_000];
        reference.Value = new WeakReference(item);
        return item;
    }

    private static int CountAliveAfterFullGc(WeakReference[] references)
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
        return references.Count(r => r.IsAlive);
    }
}
