using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Ports;

/// <summary>
/// Ports of golang/go <c>src/runtime/chan_test.go</c>: TestChan (split into one theory per property, over
/// capacities), TestNonblockRecvRace, TestNonblockSelectRace, TestNonblockSelectRace2, TestSelfSelect,
/// TestSelectStress, TestSelectFairness, TestChanSendInterface, TestPseudoRandomSend, TestMultiConsumer and
/// TestSelectDuplicateChannel. Each test method's summary names the Go test it ports.
/// </summary>
/// <remarks>
/// A goroutine is a tasklet. Where Go relies on GOMAXPROCS &gt; 1 the parties are spread over schedulers that each run
/// on their own thread, OS threads using the blocking <c>Send</c>/<c>Receive</c>, and plain async code on the thread
/// pool (<see cref="Harness"/>). Where Go sleeps "so that the other goroutine gets queued first", a cooperative
/// scheduler makes the order exact: run-until-idle. Iteration counts are scaled down from Go's (each test says by how
/// much) so that a test takes at most a few seconds on a 2-core machine. Every join has a hang guard; the assertions
/// are invariants (what was received, how often, what must not happen), never timings. The class runs in the
/// non-parallel collection: its races need their parties on the cores at the same moment, and its spinning worker
/// must not starve, or be starved by, other tests on a 2-core machine.
/// </remarks>
[Collection(NonParallel.Name)]
public class GoChanTestPorts
{
    private static readonly SchedulerOptions s_seeded = new() { Seed = 1 };

    /// <summary>
    /// Go loops over capacities 0..199 (0..19 with -short). Here: 0..19 and three larger ones, which keeps the
    /// real-thread part of TestChan to well under a second per capacity.
    /// </summary>
    public static TheoryData<int> ChanCapacities
    {
        get
        {
            var data = new TheoryData<int>();
            for (int capacity = 0; capacity < 20; capacity++)
            {
                data.Add(capacity);
            }

            data.Add(32);
            data.Add(100);
            data.Add(199);
            return data;
        }
    }

    // ---------------------------------------------------------------- TestChan

    /// <summary>TestChan, "receive from empty chan blocks" and "non-blocking receive does not block".</summary>
    [Theory]
    [MemberData(nameof(ChanCapacities))]
    public void TestChan_ReceiveFromEmpty_BlocksAndNonblockingReceiveTakesDefault(int capacity)
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>(capacity);
        bool plainDone = false;
        bool caseDone = false;
        ReceiveCase<int> parkedCase = c.ReceiveCase();
        _ = s.Go(async () =>
        {
            await c.ReceiveAsync();
            plainDone = true;
        });
        _ = s.Go(async () =>
        {
            await Select.WaitAsync(parkedCase); // Go's two-value receive
            caseDone = true;
        });
        s.RunUntilIdle();
        Assert.False(plainDone || caseDone, $"chan[{capacity}]: a receive from an empty channel completed");
        Assert.Equal(-2, c.Balance);

        Assert.Equal(-1, Select.Try(c.ReceiveCase()));
        Assert.False(c.TryReceive(out _), $"chan[{capacity}]: a non-blocking receive from an empty channel took an item");

        // Both receivers are parked, so neither send may block; each item goes straight to a receiver, not the buffer.
        Assert.True(c.TrySend(0));
        Assert.True(c.TrySend(0));
        s.RunUntilIdle();
        Assert.True(plainDone && caseDone, $"chan[{capacity}]: a parked receiver was not woken by a send");
        Assert.False(parkedCase.IsClosed);
        Assert.Equal(0, c.Count);
    }

    /// <summary>TestChan, "send to full chan blocks" and "non-blocking send does not block".</summary>
    [Theory]
    [MemberData(nameof(ChanCapacities))]
    public void TestChan_SendToFull_BlocksAndNonblockingSendTakesDefault(int capacity)
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>(capacity);
        for (int i = 0; i < capacity; i++)
        {
            Assert.True(c.TrySend(i));
        }

        int sent = 0;
        _ = s.Go(async () =>
        {
            await c.SendAsync(0);
            Volatile.Write(ref sent, 1);
        });
        s.RunUntilIdle();
        Assert.True(Volatile.Read(ref sent) == 0, $"chan[{capacity}]: a send to a full channel completed");
        Assert.Equal(1, c.Balance);

        Assert.Equal(-1, Select.Try(c.SendCase(0)));
        Assert.False(c.TrySend(0), $"chan[{capacity}]: a non-blocking send to a full channel succeeded");

        Assert.True(c.TryReceive(out int head));
        Assert.Equal(0, head);
        s.RunUntilIdle();
        Assert.Equal(1, Volatile.Read(ref sent));
        Assert.Equal(capacity, c.Count); // the parked sender's item took the slot the receive freed
    }

    /// <summary>TestChan, "receive 0 from closed chan": the buffer drains in order, then the channel reports closed.</summary>
    /// <remarks>Go's plain receive yields the zero value; ours throws <see cref="ChannelClosedException"/>, and a
    /// receive case (Go's <c>v, ok := &lt;-c</c>) fires with <see cref="ReceiveCase{T}.IsClosed"/> and a default value.</remarks>
    [Theory]
    [MemberData(nameof(ChanCapacities))]
    public void TestChan_ClosedChannel_DrainsInOrderThenReportsClosed(int capacity)
    {
        Scheduler.Run(
            async () =>
            {
                var c = new Channel<int>(capacity);
                for (int i = 0; i < capacity; i++)
                {
                    await c.SendAsync(i);
                }

                c.Close();
                for (int i = 0; i < capacity; i++)
                {
                    Assert.Equal(i, await c.ReceiveAsync());
                }

                await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.ReceiveAsync());
                ReceiveCase<int> rc = c.ReceiveCase();
                Assert.Equal(0, await Select.WaitAsync(rc));
                Assert.True(rc.IsClosed);
                Assert.Equal(0, rc.Value);
                Assert.False(c.TryReceive(out _));
            },
            s_seeded);
    }

    /// <summary>TestChan, "close unblocks receive": parked receivers wake when the channel is closed.</summary>
    [Theory]
    [MemberData(nameof(ChanCapacities))]
    public void TestChan_Close_UnblocksParkedReceivers(int capacity)
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>(capacity);
        ReceiveCase<int> rc = c.ReceiveCase();
        int fired = -2;
        Exception? plainFailure = null;
        _ = s.Go(async () =>
        {
            fired = await Select.WaitAsync(rc);
        });
        _ = s.Go(async () =>
        {
            try
            {
                await c.ReceiveAsync();
            }
            catch (ChannelClosedException e)
            {
                plainFailure = e;
            }
        });
        s.RunUntilIdle();
        Assert.Equal(-2, fired);
        Assert.Null(plainFailure);
        Assert.Equal(-2, c.Balance);

        c.Close();
        s.RunUntilIdle();
        Assert.Equal(0, fired);
        Assert.True(rc.IsClosed, $"chan[{capacity}]: the receive case woken by close does not report closed");
        Assert.Equal(0, rc.Value);
        Assert.IsType<ChannelClosedException>(plainFailure);
    }

    /// <summary>
    /// TestChan, "send 100 integers, receive them non-corrupted in FIFO order" (plain and two-value receive), then
    /// "send 1000 integers in 4 goroutines, receive what we send", with the parties on real threads.
    /// </summary>
    [Theory]
    [MemberData(nameof(ChanCapacities))]
    public void TestChan_FifoAndNothingLost_AcrossThreads(int capacity)
    {
        var c = new Channel<int>(capacity);

        // One sender, a tasklet on its own thread; one receiver, an OS thread with the blocking Receive.
        using (var senderScheduler = new Scheduler())
        {
            _ = senderScheduler.Go(async () =>
            {
                for (int i = 0; i < 100; i++)
                {
                    await c.SendAsync(i);
                }
            });
            var h = new Harness();
            h.OnThread(senderScheduler.Run, "sender scheduler");
            h.OnThread(
                () =>
                {
                    for (int i = 0; i < 100; i++)
                    {
                        Assert.Equal(i, c.Receive());
                    }
                },
                "receiver thread");
            h.Run();
        }

        // The same with the two-value receive (a receive case in a tasklet) and the sender an OS thread.
        using (var receiverScheduler = new Scheduler())
        {
            _ = receiverScheduler.Go(async () =>
            {
                ReceiveCase<int> rc = c.ReceiveCase();
                for (int i = 0; i < 100; i++)
                {
                    Assert.Equal(0, await Select.WaitAsync(rc));
                    Assert.False(rc.IsClosed, $"chan[{capacity}]: receive failed, expected {i}");
                    Assert.Equal(i, rc.Value);
                }
            });
            var h = new Harness();
            h.OnThread(receiverScheduler.Run, "receiver scheduler");
            h.OnThread(
                () =>
                {
                    for (int i = 0; i < 100; i++)
                    {
                        c.Send(i);
                    }
                },
                "sender thread");
            h.Run();
        }

        // P senders of 0..L-1 and P receivers of L items each: a tasklet on each of two schedulers, an OS thread and
        // plain async code on the thread pool, on each side. Every value must arrive exactly P times.
        const int P = 4;
        const int L = 1000; // as Go
        int[] counts = new int[L];
        void Merge(int[] local)
        {
            for (int k = 0; k < L; k++)
            {
                Interlocked.Add(ref counts[k], local[k]);
            }
        }

        async Task SendAllAsync()
        {
            for (int i = 0; i < L; i++)
            {
                await c.SendAsync(i);
            }
        }

        async Task ReceiveAllAsync()
        {
            int[] local = new int[L];
            for (int i = 0; i < L; i++)
            {
                local[await c.ReceiveAsync()]++;
            }

            Merge(local);
        }

        using var a = new Scheduler();
        using var b = new Scheduler();
        _ = a.Go(SendAllAsync);
        _ = b.Go(SendAllAsync);
        _ = a.Go(ReceiveAllAsync);
        _ = b.Go(ReceiveAllAsync);
        var all = new Harness();
        all.OnThread(a.Run, "scheduler A");
        all.OnThread(b.Run, "scheduler B");
        all.OnThread(
            () =>
            {
                for (int i = 0; i < L; i++)
                {
                    c.Send(i);
                }
            },
            "sender thread");
        all.OnThread(
            () =>
            {
                int[] local = new int[L];
                for (int i = 0; i < L; i++)
                {
                    local[c.Receive()]++;
                }

                Merge(local);
            },
            "receiver thread");
        all.OnPool(SendAllAsync);
        all.OnPool(ReceiveAllAsync);
        all.Run();
        for (int k = 0; k < L; k++)
        {
            Assert.True(counts[k] == P, $"chan[{capacity}]: value {k} received {counts[k]} times, expected {P}");
        }
    }

    /// <summary>TestChan, "len/cap".</summary>
    [Theory]
    [MemberData(nameof(ChanCapacities))]
    public void TestChan_CountAndCapacity(int capacity)
    {
        var c = new Channel<int>(capacity);
        Assert.Equal(0, c.Count);
        Assert.Equal(capacity, c.Capacity);
        for (int i = 0; i < capacity; i++)
        {
            Assert.True(c.TrySend(i));
        }

        Assert.Equal(capacity, c.Count);
        Assert.Equal(capacity, c.Capacity);
    }

    // ---------------------------------------------------------------- the non-blocking races

    /// <summary>Who runs the racing non-blocking select of the three Nonblock race ports.</summary>
    public enum RaceWorker
    {
        /// <summary>A tasklet spawned per iteration on a scheduler running on its own thread (Go's <c>go func()</c>).</summary>
        SpawnedTasklet,

        /// <summary>
        /// An OS thread spinning for its next job: the select starts within moments of being handed over, so it
        /// overlaps the main thread's operations that follow far more often than a freshly woken scheduler does.
        /// </summary>
        SpinningThread,
    }

    /// <summary>
    /// TestNonblockRecvRace: a channel holds an item and is then closed while another thread's non-blocking select
    /// receives from it. The case is ready throughout (first the item, then "closed"), so the select must never take
    /// its default.
    /// </summary>
    [Theory]
    [InlineData(RaceWorker.SpawnedTasklet)]
    [InlineData(RaceWorker.SpinningThread)]
    public void TestNonblockRecvRace_BufferedThenClosed_NonblockingReceiveNeverTakesDefault(RaceWorker worker)
    {
        const int Iterations = 10_000; // as Go (100 with -short)
        (int defaults, int first) = CountDefaults(Iterations, worker, start =>
        {
            var c = new Channel<int>(1);
            Assert.True(c.TrySend(1));
            ReceiveCase<int> rc = c.ReceiveCase();
            start(() => Select.Try(rc));
            c.Close();
            c.TryReceive(out _); // Go's <-c: the item, or "closed and drained" if the worker took it
        });
        Assert.True(defaults == 0, $"Select.Try took the default on a ready channel in {defaults} of {Iterations} iterations (first at {first})");
    }

    /// <summary>
    /// TestNonblockSelectRace: c1 is ready, the worker's non-blocking select over c1 and c2 starts, c2 becomes ready,
    /// then c1 is emptied. At every moment one of them is ready, so the select acts on one instant's state and must
    /// never take its default. Go lists c1 first; a select's meaning does not depend on the order of its cases, so
    /// the reversed order is run too.
    /// </summary>
    [Theory]
    [InlineData(RaceWorker.SpawnedTasklet, true)]
    [InlineData(RaceWorker.SpawnedTasklet, false)]
    [InlineData(RaceWorker.SpinningThread, true)]
    [InlineData(RaceWorker.SpinningThread, false)]
    public void TestNonblockSelectRace_OneOfTwoAlwaysReady_NonblockingSelectNeverTakesDefault(RaceWorker worker, bool goCaseOrder)
    {
        // Go: 100,000 (1,000 with -short); a fifth here for the spawned tasklet, Go's count for the spinning thread.
        int iterations = worker == RaceWorker.SpawnedTasklet ? 20_000 : 100_000;
        (int defaults, int first) = CountDefaults(iterations, worker, start =>
        {
            var c1 = new Channel<int>(1);
            var c2 = new Channel<int>(1);
            Assert.True(c1.TrySend(1));
            ReceiveCase<int> r1 = c1.ReceiveCase();
            ReceiveCase<int> r2 = c2.ReceiveCase();
            start(() => goCaseOrder ? Select.Try(r1, r2) : Select.Try(r2, r1));
            Assert.True(c2.TrySend(1));
            Select.Try(c1.ReceiveCase());
        });
        Assert.True(defaults == 0, $"Select.Try took the default while a case was ready in {defaults} of {iterations} iterations (first at {first})");
    }

    /// <summary>TestNonblockSelectRace2: as TestNonblockSelectRace, with c2 unbuffered and closed instead of sent to.</summary>
    [Theory]
    [InlineData(RaceWorker.SpawnedTasklet, true)]
    [InlineData(RaceWorker.SpawnedTasklet, false)]
    [InlineData(RaceWorker.SpinningThread, true)]
    [InlineData(RaceWorker.SpinningThread, false)]
    public void TestNonblockSelectRace2_OneOfTwoAlwaysReadyByClose_NonblockingSelectNeverTakesDefault(RaceWorker worker, bool goCaseOrder)
    {
        // Go: 100,000 (1,000 with -short); a fifth here for the spawned tasklet, Go's count for the spinning thread.
        int iterations = worker == RaceWorker.SpawnedTasklet ? 20_000 : 100_000;
        (int defaults, int first) = CountDefaults(iterations, worker, start =>
        {
            var c1 = new Channel<int>(1);
            var c2 = new Channel<int>();
            Assert.True(c1.TrySend(1));
            ReceiveCase<int> r1 = c1.ReceiveCase();
            ReceiveCase<int> r2 = c2.ReceiveCase();
            start(() => goCaseOrder ? Select.Try(r1, r2) : Select.Try(r2, r1));
            c2.Close();
            Select.Try(c1.ReceiveCase());
        });
        Assert.True(defaults == 0, $"Select.Try took the default while a case was ready in {defaults} of {iterations} iterations (first at {first})");
    }

    // ---------------------------------------------------------------- select stress

    /// <summary>
    /// TestSelfSelect: two parties on two threads each select between sending and receiving on one channel. On an
    /// unbuffered channel a select must never rendezvous with itself; it must not deadlock; and (added here) every
    /// item sent is received once or is still buffered.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(10)]
    public void TestSelfSelect_SendAndReceiveOnOneChannel_NeverMatchesItself(int capacity)
    {
        const int Rounds = 1000; // as Go
        var c = new Channel<int>(capacity);
        int selfReceives = 0;
        int closedReceives = 0;
        int sends = 0;
        int receives = 0;
        Func<Task> Party(int p) => async () =>
        {
            SendCase<int> send = c.SendCase(p);
            ReceiveCase<int> receive = c.ReceiveCase();
            for (int i = 0; i < Rounds; i++)
            {
                bool sendListedFirst = p == 0 || i % 2 == 0;
                int fired = sendListedFirst ? await Select.WaitAsync(send, receive) : await Select.WaitAsync(receive, send);
                bool received = sendListedFirst ? fired == 1 : fired == 0;
                if (!received)
                {
                    Interlocked.Increment(ref sends);
                    continue;
                }

                Interlocked.Increment(ref receives);
                if (receive.IsClosed)
                {
                    Interlocked.Increment(ref closedReceives);
                }
                else if (capacity == 0 && receive.Value == p)
                {
                    Interlocked.Increment(ref selfReceives);
                }
            }
        };

        using var s0 = new Scheduler();
        using var s1 = new Scheduler();
        _ = s0.Go(Party(0));
        _ = s1.Go(Party(1));
        var h = new Harness();
        h.OnThread(s0.Run, "party 0");
        h.OnThread(s1.Run, "party 1");
        h.Run();
        Assert.True(selfReceives == 0, $"self receive: {selfReceives} times a select received its own send");
        Assert.Equal(0, closedReceives);
        Assert.Equal(sends - receives, c.Count);
    }

    /// <summary>
    /// TestSelectStress: on four channels (two unbuffered, capacities 2 and 3), a plain sender and a plain receiver
    /// per channel, one party sending on all four in a single select and one receiving from all four in a single
    /// select, each dropping a channel once it has done its N there (Go sets it to nil). The whole must not
    /// deadlock; added here, every value sent is received exactly once.
    /// </summary>
    [Fact]
    public void TestSelectStress_PlainAndSelectPartiesOnFourChannels_CompleteWithNothingLost()
    {
        const int N = 10_000; // Go: 100,000 per party; here Go's -short count
        Channel<int>[] c = [new(0), new(0), new(2), new(3)];
        int[][] seen = [new int[(2 * N) + 1], new int[(2 * N) + 1], new int[(2 * N) + 1], new int[(2 * N) + 1]];
        void Record(int k, int value) => Interlocked.Increment(ref seen[k][value]);

        // Plain senders send 1..N, the select sender N+1..2N, so each channel must deliver 1..2N once each.
        async Task PlainSendAsync(int k)
        {
            for (int i = 0; i < N; i++)
            {
                await c[k].SendAsync(1 + i);
            }
        }

        async Task PlainReceiveAsync(int k)
        {
            for (int i = 0; i < N; i++)
            {
                Record(k, await c[k].ReceiveAsync());
            }
        }

        async Task SelectSendAsync()
        {
            SendCase<int>[] cases = [c[0].SendCase(0), c[1].SendCase(0), c[2].SendCase(0), c[3].SendCase(0)];
            int[] n = new int[4];
            var active = new List<int> { 3, 2, 0, 1 }; // Go's case order
            for (int i = 0; i < 4 * N; i++)
            {
                var live = new SelectCase[active.Count];
                for (int j = 0; j < live.Length; j++)
                {
                    int k = active[j];
                    cases[k].Item = N + 1 + n[k];
                    live[j] = cases[k];
                }

                int chosen = active[await Select.WaitAsync(live)];
                if (++n[chosen] == N)
                {
                    active.Remove(chosen);
                }
            }
        }

        async Task SelectReceiveAsync()
        {
            ReceiveCase<int>[] cases = [c[0].ReceiveCase(), c[1].ReceiveCase(), c[2].ReceiveCase(), c[3].ReceiveCase()];
            int[] n = new int[4];
            var active = new List<int> { 0, 1, 2, 3 };
            for (int i = 0; i < 4 * N; i++)
            {
                var live = new SelectCase[active.Count];
                for (int j = 0; j < live.Length; j++)
                {
                    live[j] = cases[active[j]];
                }

                int chosen = active[await Select.WaitAsync(live)];
                Assert.False(cases[chosen].IsClosed);
                Record(chosen, cases[chosen].Value);
                if (++n[chosen] == N)
                {
                    active.Remove(chosen);
                }
            }
        }

        using var a = new Scheduler();
        using var b = new Scheduler();
        _ = a.Go(() => PlainSendAsync(0));
        _ = a.Go(() => PlainSendAsync(1));
        _ = a.Go(() => PlainReceiveAsync(3));
        _ = a.Go(SelectSendAsync);
        _ = b.Go(() => PlainReceiveAsync(0));
        _ = b.Go(() => PlainReceiveAsync(1));
        _ = b.Go(() => PlainSendAsync(3));
        _ = b.Go(SelectReceiveAsync);
        var h = new Harness();
        h.OnThread(a.Run, "scheduler A");
        h.OnThread(b.Run, "scheduler B");
        h.OnThread(
            () =>
            {
                for (int i = 0; i < N; i++)
                {
                    c[2].Send(1 + i);
                }
            },
            "c[2] sender thread");
        h.OnPool(() => PlainReceiveAsync(2));
        h.Run();
        for (int k = 0; k < 4; k++)
        {
            for (int v = 1; v <= 2 * N; v++)
            {
                Assert.True(seen[k][v] == 1, $"channel {k}: value {v} received {seen[k][v]} times");
            }
        }
    }

    /// <summary>
    /// TestSelectFairness: a select over four receive cases of which two (buffered, always full) are ready must pick
    /// each of those two about half the time. The bound is Go's: more than 10 standard deviations from the mean
    /// fails; a fair select fails it with probability below 1e-20.
    /// </summary>
    [Fact]
    public void TestSelectFairness_TwoReadyCasesAmongFour_EachChosenAboutHalfTheTime()
    {
        const int Trials = 10_000; // as Go
        var c1 = new Channel<byte>(Trials + 1);
        var c2 = new Channel<byte>(Trials + 1);
        for (int i = 0; i < Trials + 1; i++)
        {
            Assert.True(c1.TrySend(1));
            Assert.True(c2.TrySend(2));
        }

        var c3 = new Channel<byte>();
        var c4 = new Channel<byte>();
        var output = new Channel<byte>();
        var done = new Channel<byte>();
        using var selector = new Scheduler();
        _ = selector.Go(async () =>
        {
            ReceiveCase<byte> r3 = c3.ReceiveCase();
            ReceiveCase<byte> r4 = c4.ReceiveCase();
            ReceiveCase<byte> r1 = c1.ReceiveCase();
            ReceiveCase<byte> r2 = c2.ReceiveCase();
            SendCase<byte> toOutput = output.SendCase(0);
            ReceiveCase<byte> fromDone = done.ReceiveCase();
            while (true)
            {
                toOutput.Item = await Select.WaitAsync(r3, r4, r1, r2) switch
                {
                    0 => r3.Value,
                    1 => r4.Value,
                    2 => r1.Value,
                    _ => r2.Value,
                };
                if (await Select.WaitAsync(toOutput, fromDone) == 1)
                {
                    return;
                }
            }
        });
        int cnt1 = 0;
        int cnt2 = 0;
        int unexpected = 0;
        var h = new Harness();
        h.OnThread(selector.Run, "selector scheduler");
        h.OnThread(
            () =>
            {
                try
                {
                    for (int i = 0; i < Trials; i++)
                    {
                        switch (output.Receive())
                        {
                            case 1:
                                cnt1++;
                                break;
                            case 2:
                                cnt2++;
                                break;
                            default:
                                unexpected++;
                                break;
                        }
                    }
                }
                finally
                {
                    done.Close();
                }
            },
            "counter thread");
        h.Run();
        Assert.Equal(0, unexpected);
        const double Mean = Trials * 0.5;
        double stddev = Math.Sqrt(Trials * 0.5 * (1 - 0.5));
        Assert.True(Math.Abs(cnt1 - Mean) <= 10 * stddev, $"unfair select: in {Trials} trials, results were {cnt1}, {cnt2}");
    }

    // ---------------------------------------------------------------- small semantic ports

    /// <summary>
    /// TestChanSendInterface: non-blocking sends of references into a full channel, one case and two cases on the
    /// same channel, take the default and leave the channel as it was. (Go checks that this compiles and does not
    /// crash; the added checks pin what the selects did.)
    /// </summary>
    [Fact]
    public void TestChanSendInterface_FullChannelOfReferences_SendCasesTakeDefault()
    {
        Scheduler.Run(
            async () =>
            {
                object m = new();
                var c = new Channel<object>(1);
                await c.SendAsync(m);
                Assert.Equal(-1, Select.Try(c.SendCase(m)));
                Assert.Equal(-1, Select.Try(c.SendCase(m), c.SendCase(new object())));
                Assert.Equal(1, c.Count);
                Assert.Same(m, await c.ReceiveAsync());

                SendCase<object> first = c.SendCase(m);
                SendCase<object> second = c.SendCase(new object());
                int fired = Select.Try(first, second);
                Assert.InRange(fired, 0, 1);
                Assert.Equal(1, c.Count);
                Assert.Same(fired == 0 ? first.Item : second.Item, await c.ReceiveAsync());
            },
            s_seeded);
    }

    /// <summary>
    /// TestPseudoRandomSend: a select with two send cases on one channel (values 1 and 0), against a receiver that
    /// yields before each receive, must send each value more than a tenth of the time, unbuffered and buffered.
    /// Unseeded, as Go's; a fair choice fails the bound with probability below 1e-16.
    /// </summary>
    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    public void TestPseudoRandomSend_TwoSendCasesOnOneChannel_BothValuesAppear(int capacity)
    {
        const int N = 100; // as Go
        int[] l = new int[N];
        Scheduler.Run(async () =>
        {
            var c = new Channel<int>(capacity);
            Tasklet receiver = Tasklet.Go(async () =>
            {
                for (int i = 0; i < N; i++)
                {
                    await Tasklet.Yield(); // Go's runtime.Gosched
                    l[i] = await c.ReceiveAsync();
                }
            });
            SendCase<int> one = c.SendCase(1);
            SendCase<int> zero = c.SendCase(0);
            for (int i = 0; i < N; i++)
            {
                await Select.WaitAsync(one, zero);
            }

            await receiver;
        });
        int n1 = l.Sum();
        int n0 = N - n1;
        Assert.True(n0 > N / 10 && n1 > N / 10, $"want pseudorandom, got {n0} zeros and {n1} ones (chan cap {capacity})");
    }

    /// <summary>
    /// TestMultiConsumer: 23 workers (tasklets on two schedulers, each on its own thread) range over a work channel
    /// fed by an OS thread, some yielding to disturb the FIFO order, and forward to a result channel that plain async
    /// code on the thread pool drains. The feeder closes the work channel, waits for the workers, then closes the
    /// result channel. Every item must be counted once.
    /// </summary>
    [Fact]
    public void TestMultiConsumer_WorkersOnTwoSchedulers_EveryItemCountedOnce()
    {
        const int Workers = 23;
        const int Items = 100_000; // Go: 271,828; about a third here
        int[] pn = [2, 3, 7, 11, 13, 17, 19, 23, 27, 31];
        var q = new Channel<int>(Workers * 3);
        var r = new Channel<int>(Workers * 3);
        using var workersLeft = new CountdownEvent(Workers);
        using var a = new Scheduler();
        using var b = new Scheduler();
        for (int w = 0; w < Workers; w++)
        {
            int worker = w;
            _ = (worker % 2 == 0 ? a : b).Go(async () =>
            {
                try
                {
                    await foreach (int v in q)
                    {
                        if (pn[worker % pn.Length] == v)
                        {
                            await Tasklet.Yield(); // Go's runtime.Gosched
                        }

                        await r.SendAsync(v);
                    }
                }
                finally
                {
                    workersLeft.Signal();
                }
            });
        }

        long expect = 0;
        long count = 0;
        long sum = 0;
        var h = new Harness();
        h.OnThread(a.Run, "workers A");
        h.OnThread(b.Run, "workers B");
        h.OnThread(
            () =>
            {
                for (int i = 0; i < Items; i++)
                {
                    int v = pn[i % pn.Length];
                    expect += v;
                    q.Send(v);
                }

                q.Close();
                Assert.True(workersLeft.Wait(Harness.HangGuard), "hang guard: the workers did not finish");
                r.Close();
            },
            "feeder thread");
        h.OnPool(async () =>
        {
            await foreach (int v in r)
            {
                count++;
                sum += v;
            }
        });
        h.Run();
        Assert.True(count == Items && sum == expect, $"expected sum {expect} (got {sum}) from {Items} items (saw {count})");
    }

    /// <summary>
    /// TestSelectDuplicateChannel: A's select has two receive cases on c (and one on d), so A is queued on c twice;
    /// B then queues on c. A send on d wakes A, which must withdraw both of its registrations on c (this corrupted
    /// Go's c.recvq once); a later send on c must reach B. Go sleeps to order A before B; here run-until-idle does.
    /// </summary>
    [Fact]
    public void TestSelectDuplicateChannel_TwoCasesOnOneChannel_BothWithdrawnAndLaterWaiterServed()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>();
        var d = new Channel<int>();
        var e = new Channel<int>();
        ReceiveCase<int> fromC1 = c.ReceiveCase();
        ReceiveCase<int> fromC2 = c.ReceiveCase();
        ReceiveCase<int> fromD = d.ReceiveCase();
        int aFired = -1;
        Tasklet a = s.Go(async () =>
        {
            aFired = await Select.WaitAsync(fromC1, fromC2, fromD);
            await e.SendAsync(9);
        });
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Blocked, a.State);

        int bGot = -1;
        Tasklet b = s.Go(async () =>
        {
            bGot = await c.ReceiveAsync();
        });
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Blocked, b.State);

        Assert.True(d.TrySend(7), "A's select is parked on d, so a send on d must not block");
        s.RunUntilIdle();
        Assert.Equal(2, aFired);
        Assert.Equal(7, fromD.Value);
        Assert.Equal(-1, c.Balance); // only B is left on c

        Assert.True(e.TryReceive(out int fromA));
        Assert.Equal(9, fromA);
        Assert.True(c.TrySend(8), "B is parked on c, so a send on c must not block");
        s.RunUntilIdle();
        Assert.Equal(8, bGot);
        Assert.False(a.IsAlive);
        Assert.False(b.IsAlive);
        Assert.Equal(0, c.Balance);
    }

    // ---------------------------------------------------------------- harness

    /// <summary>
    /// Runs <paramref name="iterations"/> rounds of <paramref name="round"/> on an OS thread (Go's main goroutine). A
    /// round hands the racing non-blocking select to the worker through its argument, then does its own channel
    /// operations; the worker runs the select on another thread. Returns how many selects took the default (-1), and
    /// the first iteration that did.
    /// </summary>
    private static (int Defaults, int First) CountDefaults(int iterations, RaceWorker kind, Action<Action<Func<int>>> round)
    {
        int defaults = 0;
        int first = -1;
        var h = new Harness();
        if (kind == RaceWorker.SpawnedTasklet)
        {
            var worker = new Scheduler();
            IDisposable hold = worker.KeepAlive();
            var verdicts = new Channel<int>(1);
            void Start(Func<int> select) => worker.Go(() =>
            {
                int verdict = int.MinValue; // what the main thread gets if the select throws, so that it does not wait forever
                try
                {
                    verdict = select();
                }
                finally
                {
                    Assert.True(verdicts.TrySend(verdict));
                }

                return Task.CompletedTask;
            });

            h.OnThread(
                () =>
                {
                    using (worker)
                    {
                        worker.Run();
                    }
                },
                "worker scheduler");
            h.OnThread(
                () =>
                {
                    try
                    {
                        for (int i = 0; i < iterations; i++)
                        {
                            round(Start);
                            if (verdicts.Receive() == -1 && defaults++ == 0)
                            {
                                first = i;
                            }
                        }
                    }
                    finally
                    {
                        hold.Dispose();
                    }
                },
                "main thread");
            h.Run();
        }
        else
        {
            using var spinner = new SpinningWorker();
            h.OnThread(spinner.Loop, "spinning worker");
            h.OnThread(
                () =>
                {
                    try
                    {
                        for (int i = 0; i < iterations; i++)
                        {
                            round(spinner.Start);
                            if (spinner.WaitForVerdict() == -1 && defaults++ == 0)
                            {
                                first = i;
                            }
                        }
                    }
                    finally
                    {
                        spinner.Stop();
                    }
                },
                "main thread");
            h.Run();
        }

        return (defaults, first);
    }

    /// <summary>
    /// An OS thread waiting for the next select to run, spinning first (so that it starts the select moments after
    /// being handed it) and blocking only if the job is slow to come (so that it does not starve other tests on a
    /// 2-core machine). If a select throws, the worker ends (the harness reports the exception) and the main thread's
    /// wait for its verdict fails at once.
    /// </summary>
    private sealed class SpinningWorker : IDisposable
    {
        private const int SpinCount = 2000; // ManualResetEventSlim's maximum is 2047

        private readonly ManualResetEventSlim _jobReady = new(false, SpinCount);
        private readonly ManualResetEventSlim _verdictReady = new(false, SpinCount);
        private Func<int>? _job;
        private int _verdict;
        private volatile bool _stop;
        private volatile bool _dead;

        public void Start(Func<int> job)
        {
            _job = job;
            _jobReady.Set(); // publishes _job
        }

        public int WaitForVerdict()
        {
            Assert.True(_verdictReady.Wait(Harness.HangGuard), "hang guard: the worker gave no verdict");
            _verdictReady.Reset(); // the worker sets it again only after the next Start
            if (_dead)
            {
                throw new InvalidOperationException("the spinning worker ended: its select threw");
            }

            return _verdict;
        }

        public void Stop()
        {
            _stop = true;
            _jobReady.Set();
        }

        public void Loop()
        {
            try
            {
                while (true)
                {
                    Assert.True(_jobReady.Wait(Harness.HangGuard), "hang guard: the main thread gave no job");
                    _jobReady.Reset(); // the main thread sets it again only after this verdict
                    if (_stop)
                    {
                        return;
                    }

                    _verdict = _job!();
                    _verdictReady.Set(); // publishes _verdict
                }
            }
            catch
            {
                _dead = true;
                _verdictReady.Set();
                throw;
            }
        }

        public void Dispose()
        {
            _jobReady.Dispose();
            _verdictReady.Dispose();
        }
    }

    /// <summary>
    /// Real-thread parties for the race ports: each runs on its own OS thread (a scheduler's <c>Run</c>, or blocking
    /// channel code) or as plain async code on the thread pool. <see cref="Run"/> starts them all, joins each with a
    /// hang guard, and rethrows what any party threw (failures first, so a party that failed is not hidden behind the
    /// hang of another one waiting for it).
    /// </summary>
    internal sealed class Harness
    {
        /// <summary>Generous: a hang guard, never a timing assertion.</summary>
        public static readonly TimeSpan HangGuard = TimeSpan.FromSeconds(60);

        private readonly List<Thread> _threads = [];
        private readonly List<Func<Task>> _poolBodies = [];
        private readonly ConcurrentQueue<Exception> _failures = new();

        public void OnThread(Action body, string name)
        {
            _threads.Add(new Thread(() =>
            {
                try
                {
                    body();
                }
                catch (Exception e)
                {
                    _failures.Enqueue(e);
                }
            })
            {
                IsBackground = true,
                Name = name,
            });
        }

        public void OnPool(Func<Task> body) => _poolBodies.Add(body);

        public void Run()
        {
            foreach (Thread t in _threads)
            {
                t.Start();
            }

            var pool = new List<Task>();
            foreach (Func<Task> body in _poolBodies)
            {
                pool.Add(Task.Run(body));
            }

            var hung = new List<string>();
            foreach (Thread t in _threads)
            {
                if (!t.Join(hung.Count == 0 ? HangGuard : TimeSpan.FromSeconds(1)))
                {
                    hung.Add($"thread '{t.Name}'");
                }
            }

            for (int i = 0; i < pool.Count; i++)
            {
                try
                {
                    if (!pool[i].Wait(hung.Count == 0 ? HangGuard : TimeSpan.FromSeconds(1)))
                    {
                        hung.Add($"pool party {i}");
                    }
                }
                catch (AggregateException e)
                {
                    foreach (Exception inner in e.InnerExceptions)
                    {
                        _failures.Enqueue(inner);
                    }
                }
            }

            if (_failures.Count == 1 && hung.Count == 0)
            {
                ExceptionDispatchInfo.Throw(_failures.Single());
            }

            if (!_failures.IsEmpty)
            {
                throw new AggregateException($"{_failures.Count} part(ies) failed; hung: [{string.Join(", ", hung)}]", _failures);
            }

            Assert.True(hung.Count == 0, $"hang guard: [{string.Join(", ", hung)}] did not finish within {HangGuard}");
        }
    }
}
