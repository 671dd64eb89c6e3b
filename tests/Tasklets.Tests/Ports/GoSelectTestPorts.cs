using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Ports;

/// <summary>
/// Ports of golang/go <c>test/chan</c>: select.go, select2.go, select3.go, select4.go, select6.go, select7.go,
/// doubleselect.go, nonblock.go and fifo.go. Each test method's summary names the Go program it ports.
/// </summary>
/// <remarks>
/// <para>The semantic ports are deterministic: one scheduler with a seeded choice and a FIFO run queue. Go decides
/// "this blocks" by waiting 0.1 s (select3.go) or sleeping (nonblock.go); here the operation runs in a tasklet until
/// the scheduler is idle, and the tasklet must then be parked on a library wait. Only doubleselect.go, a race, runs
/// on real threads.</para>
/// <para>A Go nil channel (never ready) is modelled by leaving its case out of the select. Where this library's
/// semantics deliberately differ from Go's (a plain receive on a closed, drained channel throws; an empty blocking
/// select is rejected), the comment at the assertion says so.</para>
/// </remarks>
public class GoSelectTestPorts
{
    private static readonly SchedulerOptions s_seeded = new() { Seed = 1 };

    // ---------------------------------------------------------------- select.go

    /// <summary>
    /// select.go: a loop of non-blocking selects over two send cases, dropping a case once it fired, sends on each
    /// channel exactly once and then takes the default; every case's operand is evaluated for every select, fired
    /// or not (Go evaluates them even for nil channels), which the counter checks.
    /// </summary>
    [Fact]
    public void Select_SendsWithDefault_EachCaseFiresOnceAndEveryOperandIsEvaluated()
    {
        Scheduler.Run(
            () =>
            {
                uint counter = 0;
                int shift = 0;
                uint GetValue()
                {
                    counter++;
                    return 1u << shift;
                }

                int Send(Channel<uint>? a, Channel<uint>? b)
                {
                    SendCase<uint>? toA = a?.SendCase(0);
                    SendCase<uint>? toB = b?.SendCase(0);
                    int fired = 0;
                    while (true)
                    {
                        uint forA = GetValue();
                        uint forB = GetValue();
                        var cases = new List<SelectCase>();
                        if (toA is not null)
                        {
                            toA.Item = forA;
                            cases.Add(toA);
                        }

                        if (toB is not null)
                        {
                            toB.Item = forB;
                            cases.Add(toB);
                        }

                        int chosen = Select.Try([.. cases]);
                        if (chosen == -1)
                        {
                            return fired;
                        }

                        if (ReferenceEquals(cases[chosen], toA))
                        {
                            toA = null;
                        }
                        else
                        {
                            toB = null;
                        }

                        fired++;
                        shift++;
                    }
                }

                var a = new Channel<uint>(1);
                var b = new Channel<uint>(1);
                Assert.Equal(2, Send(a, b));
                Assert.True(a.TryReceive(out uint av));
                Assert.True(b.TryReceive(out uint bv));
                Assert.Equal(3u, av | bv);
                Assert.Equal(1, Send(a, null));
                Assert.Equal(10u, counter);
                return Task.CompletedTask;
            },
            s_seeded);
    }

    // ---------------------------------------------------------------- select2.go

    /// <summary>
    /// select2.go: selects do not consume undue memory. Go allows 110,000 bytes of heap growth for the second round
    /// of 100,000 selects (after a warm-up round); here the same bound applies to everything the second round
    /// allocates on the scheduler's thread, since a select over reused cases is meant to allocate nothing.
    /// </summary>
    [Fact]
    public void Select2_ManySelectsOverReusedCases_AllocateAlmostNothing()
    {
        const int N = 100_000; // as Go
        long allocated = Scheduler.Run(
            async () =>
            {
                var c = new Channel<int>();
                var dummy = new Channel<int>();
                ReceiveCase<int> fromC = c.ReceiveCase();
                ReceiveCase<int> fromDummy = dummy.ReceiveCase();
                int wrong = 0;

                async Task RoundAsync()
                {
                    Tasklet sender = Tasklet.Go(async () =>
                    {
                        for (int i = 0; i < N; i++)
                        {
                            await c.SendAsync(1);
                        }
                    });
                    for (int i = 0; i < N; i++)
                    {
                        if (await Select.WaitAsync(fromC, fromDummy) != 0)
                        {
                            wrong++;
                        }
                    }

                    await sender;
                }

                await RoundAsync(); // warm-up
                long before = GC.GetAllocatedBytesForCurrentThread();
                await RoundAsync();
                long after = GC.GetAllocatedBytesForCurrentThread();
                Assert.Equal(0, wrong);
                return after - before;
            },
            s_seeded);
        Assert.True(allocated <= 110_000, $"too much memory for {N} selects: {allocated} bytes allocated");
    }

    // ---------------------------------------------------------------- select3.go

    /// <summary>
    /// select3.go, "empty selects always block" and "selects with only nil channels always block", and the same
    /// with a default, which never blocks. Deviation: a blocking select with no case at all is rejected with
    /// <see cref="ArgumentException"/> at the call (it could never fire), where Go blocks forever.
    /// </summary>
    [Fact]
    public void Select3_NoCaseOrOnlyNilCases_DefaultNeverBlocksAndEmptyBlockingSelectIsRejected()
    {
        AssertDoesNotBlock("select with only a default", () =>
        {
            Assert.Equal(-1, Select.Try());
            return Task.CompletedTask;
        });
        Assert.Throws<ArgumentException>(() => { _ = Select.WaitAsync(); });
    }

    /// <summary>select3.go, "sending to an async channel with free buffer space never blocks".</summary>
    [Fact]
    public void Select3_SendToBufferWithRoom_DoesNotBlock()
    {
        AssertDoesNotBlock("send to a buffered channel with room", async () =>
        {
            var ch = new Channel<int>(1);
            await ch.SendAsync(7);
        });
    }

    /// <summary>
    /// select3.go, "receiving from a closed channel never blocks", ten times, in both receive forms. Deviation: Go's
    /// plain receive yields the zero value; ours throws <see cref="ChannelClosedException"/>. The two-value form is
    /// a receive case, which fires with <see cref="ReceiveCase{T}.IsClosed"/> and the default value.
    /// </summary>
    [Fact]
    public void Select3_ReceiveFromClosed_NeverBlocks()
    {
        AssertDoesNotBlock("receive from a closed channel", async () =>
        {
            var closed = new Channel<int>();
            closed.Close();
            ReceiveCase<int> rc = closed.ReceiveCase();
            for (int i = 0; i < 10; i++)
            {
                await Assert.ThrowsAsync<ChannelClosedException>(async () => await closed.ReceiveAsync());
                Assert.Equal(0, await Select.WaitAsync(rc));
                Assert.True(rc.IsClosed);
                Assert.Equal(0, rc.Value);
                Assert.False(closed.TryReceive(out _));
            }
        });
    }

    /// <summary>select3.go, "sending to a closed channel panics", plain and as a select case (Go's panic is our exception).</summary>
    [Fact]
    public void Select3_SendToClosed_Throws()
    {
        AssertDoesNotBlock("send to a closed channel", async () =>
        {
            var closed = new Channel<int>();
            closed.Close();
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await closed.SendAsync(7));
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await Select.WaitAsync(closed.SendCase(7)));
            Assert.Throws<ChannelClosedException>(() => Select.Try(closed.SendCase(7)));
            Assert.False(closed.TrySend(7)); // the Try pattern reports instead of throwing
        });
    }

    /// <summary>select3.go, "receiving from a non-ready channel always blocks" (unbuffered, and buffered but empty).</summary>
    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public void Select3_ReceiveFromNotReady_Blocks(int capacity)
    {
        var ch = new Channel<int>(capacity);
        AssertBlocks("receive from an empty channel", async () => await ch.ReceiveAsync());
        Assert.Equal(0, ch.Balance); // the killed receiver left nothing queued
    }

    /// <summary>
    /// select3.go, "selects with non-ready non-nil channels always block", and the same next to "nil" cases (left
    /// out) and with a send case that has no receiver.
    /// </summary>
    [Fact]
    public void Select3_SelectOnNotReadyChannels_Blocks()
    {
        AssertBlocks("select receiving from an empty channel", async () =>
        {
            var ch = new Channel<int>();
            await Select.WaitAsync(ch.ReceiveCase());
        });
        AssertBlocks("select sending on an unbuffered channel with no receiver", async () =>
        {
            var ch = new Channel<int>();
            await Select.WaitAsync(ch.SendCase(7));
        });
        AssertBlocks("select over a full buffer's send and an empty channel's receive", async () =>
        {
            var full = new Channel<int>(1);
            var empty = new Channel<int>(1);
            Assert.True(full.TrySend(1));
            await Select.WaitAsync(full.SendCase(2), empty.ReceiveCase());
        });
    }

    /// <summary>select3.go, "selects with default cases don't block", with nothing ready.</summary>
    [Fact]
    public void Select3_SelectWithDefault_DoesNotBlock()
    {
        AssertDoesNotBlock("non-blocking selects over channels that are not ready", () =>
        {
            var ch = new Channel<int>();
            var full = new Channel<int>(1);
            Assert.True(full.TrySend(1));
            Assert.Equal(-1, Select.Try(ch.ReceiveCase()));
            Assert.Equal(-1, Select.Try(ch.SendCase(7)));
            Assert.Equal(-1, Select.Try(ch.ReceiveCase(), full.SendCase(2)));
            Assert.Equal(0, ch.Balance);
            Assert.Equal(1, full.Count);
            return Task.CompletedTask;
        });
    }

    /// <summary>select3.go, "selects with ready channels don't block" (and must not take the default).</summary>
    [Fact]
    public void Select3_SelectOnReadyChannels_DoesNotBlockNorTakeDefault()
    {
        AssertDoesNotBlock("selects over ready channels", async () =>
        {
            var ch = new Channel<int>(1);
            Assert.Equal(0, Select.Try(ch.SendCase(7)));
            ReceiveCase<int> rc = ch.ReceiveCase();
            Assert.Equal(0, Select.Try(rc));
            Assert.Equal(7, rc.Value);

            Assert.Equal(0, await Select.WaitAsync(ch.SendCase(8)));
            Assert.Equal(0, await Select.WaitAsync(rc));
            Assert.Equal(8, rc.Value);
            Assert.False(rc.IsClosed);
        });
    }

    /// <summary>select3.go, "selects with closed channels behave like ordinary operations".</summary>
    [Fact]
    public void Select3_SelectOnClosedChannel_BehavesLikePlainOperations()
    {
        AssertDoesNotBlock("select receiving from a closed channel", async () =>
        {
            var closed = new Channel<int>();
            closed.Close();
            ReceiveCase<int> rc = closed.ReceiveCase();
            Assert.Equal(0, await Select.WaitAsync(rc));
            Assert.True(rc.IsClosed);
            Assert.Equal(0, rc.Value);
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await Select.WaitAsync(closed.SendCase(7)));
        });
    }

    /// <summary>
    /// select3.go, "select should not get confused if it sees itself": a select that sends and receives on one
    /// unbuffered channel must block rather than rendezvous with itself. Added: once a partner comes, exactly one
    /// of its cases fires, with that partner.
    /// </summary>
    [Fact]
    public void Select3_SelectSendingAndReceivingOnOneChannel_BlocksRatherThanMatchingItself()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>();
        ReceiveCase<int> receive = c.ReceiveCase();
        int fired = -2;
        Tasklet selector = s.Go(async () =>
        {
            fired = await Select.WaitAsync(c.SendCase(1), receive);
        });
        s.RunUntilIdle();
        Assert.True(selector.State == TaskletState.Blocked, $"a select that sees itself must block, but it is {selector.State}");
        Assert.Equal(-2, fired);

        Assert.True(c.TryReceive(out int got), "the select's send case is parked, so a receive must take it");
        Assert.Equal(1, got);
        s.RunUntilIdle();
        Assert.Equal(0, fired);
        Assert.Equal(0, c.Balance);
        Assert.False(c.TrySend(5), "the select's receive case must have been withdrawn");
    }

    // ---------------------------------------------------------------- select4.go

    /// <summary>
    /// select4.go: only the case that fires assigns its received value; the other case's target is left alone (Go
    /// checks that the other case's left-hand side is not even evaluated). Here: the losing case's Value and
    /// IsClosed stay untouched and its registration leaves nothing behind.
    /// </summary>
    [Fact]
    public void Select4_OnlyTheFiredCaseTakesAValue()
    {
        Scheduler.Run(
            async () =>
            {
                var c = new Channel<int>(1);
                var c1 = new Channel<int>();
                await c.SendAsync(42);
                ReceiveCase<int> fromC1 = c1.ReceiveCase();
                ReceiveCase<int> fromC = c.ReceiveCase();
                Assert.Equal(1, await Select.WaitAsync(fromC1, fromC));
                Assert.Equal(42, fromC.Value);
                Assert.Equal(0, fromC1.Value);
                Assert.False(fromC1.IsClosed);
                Assert.Equal(0, c1.Balance);
            },
            s_seeded);
    }

    // ---------------------------------------------------------------- select6.go

    /// <summary>
    /// select6.go (Go issue 2075): G1 waits on c1; G2's select waits on c1 (behind G1) and c2; c2 fires. G2's losing
    /// registration on c1 must be withdrawn without corrupting c1's queue: both later sends on c1 must wake their
    /// receivers (G1, then G2's plain receive), and G2's c1 case must never fire.
    /// </summary>
    [Fact]
    public void Select6_LosingCaseBehindAnotherWaiterWithdrawn_LaterWaitersStillWake()
    {
        Scheduler.Run(Select6ScenarioAsync, s_seeded);
    }

    /// <summary>select6.go under 300 random interleavings (seeded, <see cref="Explore"/>): the same must hold in every one.</summary>
    [Fact]
    public void Select6_LosingCaseWithdrawn_HoldsUnderExploredInterleavings()
    {
        Explore.Run(300, Select6ScenarioAsync);
    }

    private static async Task Select6ScenarioAsync()
    {
        var c1 = new Channel<bool>();
        var c2 = new Channel<bool>();
        var c3 = new Channel<bool>();
        int wrongCase = 0;
        Tasklet g1 = Tasklet.Go(async () => await c1.ReceiveAsync());
        Tasklet g2 = Tasklet.Go(async () =>
        {
            if (await Select.WaitAsync(c1.ReceiveCase(), c2.ReceiveCase()) == 0)
            {
                wrongCase++;
            }
            else
            {
                await c3.SendAsync(true);
            }

            await c1.ReceiveAsync();
        });
        Tasklet g3 = Tasklet.Go(async () => await c2.SendAsync(true));
        await c3.ReceiveAsync();
        await c1.SendAsync(true);
        await c1.SendAsync(true);
        await g1;
        await g2;
        await g3;
        Assert.Equal(0, wrongCase);
        Assert.Equal(0, c1.Balance);
    }

    // ---------------------------------------------------------------- select7.go

    /// <summary>Which receive form select7.go's receiver uses.</summary>
    public enum ReceiveForm
    {
        /// <summary>A plain receive, value discarded.</summary>
        Plain,

        /// <summary>A select with one receive case.</summary>
        OneCaseSelect,

        /// <summary>A select with the receive case and a case on a channel nobody sends on.</summary>
        TwoCaseSelect,
    }

    /// <summary>Which send form select7.go's sender uses.</summary>
    public enum SendForm
    {
        /// <summary>A plain send.</summary>
        Plain,

        /// <summary>A select with one send case.</summary>
        OneCaseSelect,

        /// <summary>A select with the send case and a case on a channel nobody receives on.</summary>
        TwoCaseSelect,
    }

    /// <summary>All nine receive × send combinations, with the receiver parked first (Go's Gosched) or the sender.</summary>
    public static TheoryData<ReceiveForm, SendForm, bool> Select7Combinations
    {
        get
        {
            var data = new TheoryData<ReceiveForm, SendForm, bool>();
            foreach (ReceiveForm receive in Enum.GetValues<ReceiveForm>())
            {
                foreach (SendForm send in Enum.GetValues<SendForm>())
                {
                    data.Add(receive, send, true);
                    data.Add(receive, send, false);
                }
            }

            return data;
        }
    }

    /// <summary>
    /// select7.go: a receive that discards its value, in each of three forms, against a send in each of three forms,
    /// on an unbuffered channel. Every pairing must complete, and the extra cases' channels are left with nothing
    /// queued. Go lets the receiver park first; the reversed order is run too.
    /// </summary>
    [Theory]
    [MemberData(nameof(Select7Combinations))]
    public void Select7_DiscardedValue_EveryReceiveFormMeetsEverySendForm(ReceiveForm receiveForm, SendForm sendForm, bool receiverFirst)
    {
        Scheduler.Run(
            async () =>
            {
                var c = new Channel<int>();
                var receiverDummy = new Channel<int>();
                var senderDummy = new Channel<int>();
                Tasklet receiver = Tasklet.Go(async () =>
                {
                    if (!receiverFirst)
                    {
                        await Tasklet.Yield();
                    }

                    switch (receiveForm)
                    {
                        case ReceiveForm.Plain:
                            await c.ReceiveAsync();
                            break;
                        case ReceiveForm.OneCaseSelect:
                            Assert.Equal(0, await Select.WaitAsync(c.ReceiveCase()));
                            break;
                        default:
                            Assert.Equal(0, await Select.WaitAsync(c.ReceiveCase(), receiverDummy.ReceiveCase()));
                            break;
                    }
                });
                await Tasklet.Yield(); // Go's runtime.Gosched: the receiver parks first (unless it yields itself)
                switch (sendForm)
                {
                    case SendForm.Plain:
                        await c.SendAsync(1);
                        break;
                    case SendForm.OneCaseSelect:
                        Assert.Equal(0, await Select.WaitAsync(c.SendCase(1)));
                        break;
                    default:
                        Assert.Equal(0, await Select.WaitAsync(c.SendCase(1), senderDummy.SendCase(1)));
                        break;
                }

                await receiver;
                Assert.Equal(0, c.Balance);
                Assert.Equal(0, receiverDummy.Balance);
                Assert.Equal(0, senderDummy.Balance);
            },
            s_seeded);
    }

    // ---------------------------------------------------------------- doubleselect.go

    /// <summary>
    /// doubleselect.go: a sender selects over four unbuffered send cases for each counter value; four forwarders
    /// relay each channel to one mux channel; the receiver checks that no value arrives twice, which happens if two
    /// cases of one select both fire. Real threads (Go sets GOMAXPROCS 2): the sender and one forwarder are tasklets
    /// of one scheduler, two forwarders tasklets of a second, one forwarder an OS thread, the receiver another. Added:
    /// every value arrives (nothing lost); all four channels are closed at the end (Go closes two).
    /// </summary>
    [Fact]
    public void DoubleSelect_FourSendCases_EachValueDeliveredExactlyOnce()
    {
        const int Iterations = 20_000; // Go: 100,000
        Channel<int>[] c = [new(), new(), new(), new()];
        var mux = new Channel<int>();
        int forwardersLeft = c.Length;
        void ForwarderDone()
        {
            if (Interlocked.Decrement(ref forwardersLeft) == 0)
            {
                mux.Close();
            }
        }

        async Task ForwardAsync(Channel<int> input)
        {
            try
            {
                await foreach (int v in input)
                {
                    await mux.SendAsync(v);
                }
            }
            finally
            {
                ForwarderDone();
            }
        }

        using var a = new Scheduler();
        using var b = new Scheduler();
        _ = a.Go(async () =>
        {
            try
            {
                SendCase<int>[] cases = [c[0].SendCase(0), c[1].SendCase(0), c[2].SendCase(0), c[3].SendCase(0)];
                for (int i = 0; i < Iterations; i++)
                {
                    foreach (SendCase<int> sc in cases)
                    {
                        sc.Item = i;
                    }

                    await Select.WaitAsync(cases[0], cases[1], cases[2], cases[3]);
                }
            }
            finally
            {
                foreach (Channel<int> ch in c)
                {
                    ch.Close();
                }
            }
        });
        _ = a.Go(() => ForwardAsync(c[3]));
        _ = b.Go(() => ForwardAsync(c[0]));
        _ = b.Go(() => ForwardAsync(c[1]));
        int[] seen = new int[Iterations];
        int duplicates = 0;
        int firstDuplicate = -1;
        var h = new GoChanTestPorts.Harness();
        h.OnThread(a.Run, "sender and forwarder 3");
        h.OnThread(b.Run, "forwarders 0 and 1");
        h.OnThread(
            () =>
            {
                try
                {
                    while (true)
                    {
                        mux.Send(c[2].Receive());
                    }
                }
                catch (ChannelClosedException)
                {
                    // c[2] closed and drained
                }
                finally
                {
                    ForwarderDone();
                }
            },
            "forwarder 2 thread");
        h.OnThread(
            () =>
            {
                try
                {
                    while (true)
                    {
                        int v = mux.Receive();
                        if (++seen[v] == 2 && duplicates++ == 0)
                        {
                            firstDuplicate = v;
                        }
                    }
                }
                catch (ChannelClosedException)
                {
                    // every forwarder is done
                }
            },
            "receiver thread");
        h.Run();
        Assert.True(duplicates == 0, $"got duplicate values: {duplicates}, the first {firstDuplicate}");
        int missing = seen.Count(n => n == 0);
        Assert.True(missing == 0, $"{missing} of {Iterations} values never arrived");
    }

    // ---------------------------------------------------------------- nonblock.go

    /// <summary>Buffer size × which non-blocking form: the Try methods, or a select with a default.</summary>
    public static TheoryData<int, bool> NonblockCombinations => new()
    {
        { 0, false },
        { 0, true },
        { 1, false },
        { 1, true },
    };

    /// <summary>
    /// nonblock.go, for int, long, bool and string items and buffers of 0 and 1: a non-blocking receive from an
    /// empty channel fails; once a receiver is parked a non-blocking send succeeds and delivers; once a sender is
    /// parked (unbuffered) or has buffered its item, a non-blocking receive succeeds with that item. Go sleeps to let
    /// the other goroutine park; here a yield does it exactly, and the balance proves it.
    /// </summary>
    [Theory]
    [MemberData(nameof(NonblockCombinations))]
    public void Nonblock_TryOperations_SucceedExactlyWhenAPartnerOrSlotIsThere(int buffer, bool viaSelect)
    {
        Scheduler.Run(
            async () =>
            {
                await NonblockRoundAsync(buffer, viaSelect, 123, 234);
                await NonblockRoundAsync(buffer, viaSelect, 123456L, 234567L);
                await NonblockRoundAsync(buffer, viaSelect, true, true);
                await NonblockRoundAsync(buffer, viaSelect, "hello", "hello again");
            },
            s_seeded);
    }

    private static async Task NonblockRoundAsync<T>(int buffer, bool viaSelect, T toReceiver, T fromSender)
    {
        var c = new Channel<T>(buffer);
        var received = new Channel<T>();
        var strobe = new Channel<bool>();
        string what = $"{typeof(T).Name}, buffer {buffer}, {(viaSelect ? "select with default" : "Try methods")}";

        Assert.False(NonblockingReceive(c, viaSelect, out _), $"{what}: a non-blocking receive from an empty channel succeeded");

        Tasklet receiver = Tasklet.Go(async () => await received.SendAsync(await c.ReceiveAsync()));
        await Tasklet.Yield(); // the receiver parks on c
        Assert.Equal(-1, c.Balance);
        Assert.True(NonblockingSend(c, viaSelect, toReceiver), $"{what}: a non-blocking send to a parked receiver failed");
        Assert.Equal(toReceiver, await received.ReceiveAsync());
        await receiver;

        Tasklet sender = Tasklet.Go(async () =>
        {
            await c.SendAsync(fromSender);
            await strobe.SendAsync(true);
        });
        if (buffer > 0)
        {
            await strobe.ReceiveAsync(); // the item is buffered
        }
        else
        {
            await Tasklet.Yield(); // the sender parks on c
            Assert.Equal(1, c.Balance);
        }

        Assert.True(NonblockingReceive(c, viaSelect, out T? got), $"{what}: a non-blocking receive from a ready channel failed");
        Assert.Equal(fromSender, got);
        if (buffer == 0)
        {
            await strobe.ReceiveAsync();
        }

        await sender;
    }

    private static bool NonblockingSend<T>(Channel<T> c, bool viaSelect, T item)
        => viaSelect ? Select.Try(c.SendCase(item)) == 0 : c.TrySend(item);

    private static bool NonblockingReceive<T>(Channel<T> c, bool viaSelect, out T? item)
    {
        if (!viaSelect)
        {
            return c.TryReceive(out item);
        }

        ReceiveCase<T> rc = c.ReceiveCase();
        bool fired = Select.Try(rc) == 0 && !rc.IsClosed;
        item = fired ? rc.Value : default;
        return fired;
    }

    // ---------------------------------------------------------------- fifo.go

    /// <summary>fifo.go, AsynchFifo: a buffered channel delivers in the order sent.</summary>
    [Fact]
    public void Fifo_Buffered_DeliversInSendOrder()
    {
        Scheduler.Run(
            async () =>
            {
                const int N = 10; // as Go
                var ch = new Channel<int>(N);
                for (int i = 0; i < N; i++)
                {
                    await ch.SendAsync(i);
                }

                for (int i = 0; i < N; i++)
                {
                    Assert.Equal(i, await ch.ReceiveAsync());
                }
            },
            s_seeded);
    }

    /// <summary>
    /// fifo.go, SynchFifo: a daisy chain of tasklets, each waiting for its predecessor's signal before it receives
    /// from one unbuffered channel, reads the values in the order they were sent.
    /// </summary>
    [Fact]
    public void Fifo_UnbufferedDaisyChain_ReadsInSendOrder()
    {
        const int N = 100; // Go: 10
        var wrong = new List<string>();
        Scheduler.Run(
            async () =>
            {
                var ch = new Channel<int>();
                var start = new Channel<int>();
                Channel<int> input = start;
                for (int i = 0; i < N; i++)
                {
                    var output = new Channel<int>();
                    int expected = i;
                    Channel<int> from = input;
                    _ = Tasklet.Go(async () =>
                    {
                        await from.ReceiveAsync();
                        int got = await ch.ReceiveAsync();
                        if (got != expected)
                        {
                            wrong.Add($"link {expected} read {got}");
                        }

                        await output.SendAsync(1);
                    });
                    input = output;
                }

                await start.SendAsync(0);
                for (int i = 0; i < N; i++)
                {
                    await ch.SendAsync(i);
                }

                await input.ReceiveAsync();
            },
            s_seeded);
        Assert.Empty(wrong);
    }

    /// <summary>
    /// fifo.go's claim, "unbuffered channels act as pure fifos", checked directly: receivers parked in some order
    /// are served in that order, and so are parked senders.
    /// </summary>
    [Fact]
    public void Fifo_ParkedReceiversAndSenders_ServedInArrivalOrder()
    {
        const int N = 10;
        Scheduler.Run(
            async () =>
            {
                var ch = new Channel<int>();
                int[] gotBy = new int[N];
                var receivers = new List<Tasklet>();
                for (int i = 0; i < N; i++)
                {
                    int k = i;
                    receivers.Add(Tasklet.Go(async () => gotBy[k] = await ch.ReceiveAsync()));
                    await Tasklet.Yield(); // receiver k parks before receiver k + 1 starts
                }

                Assert.Equal(-N, ch.Balance);
                for (int i = 0; i < N; i++)
                {
                    await ch.SendAsync(i);
                }

                foreach (Tasklet t in receivers)
                {
                    await t;
                }

                Assert.Equal(Enumerable.Range(0, N), gotBy);

                var senders = new List<Tasklet>();
                for (int i = 0; i < N; i++)
                {
                    int k = i;
                    senders.Add(Tasklet.Go(async () => await ch.SendAsync(k)));
                    await Tasklet.Yield(); // sender k parks before sender k + 1 starts
                }

                Assert.Equal(N, ch.Balance);
                for (int i = 0; i < N; i++)
                {
                    Assert.Equal(i, await ch.ReceiveAsync());
                }

                foreach (Tasklet t in senders)
                {
                    await t;
                }
            },
            s_seeded);
    }

    // ---------------------------------------------------------------- helpers

    /// <summary>
    /// select3.go's testBlock(always, f), made exact: runs <paramref name="operation"/> as a tasklet until the
    /// scheduler is idle; it must then be parked on a library wait. Disposing the scheduler kills it.
    /// </summary>
    private static void AssertBlocks(string what, Func<Task> operation)
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Tasklet t = s.Go(operation);
        s.RunUntilIdle();
        Assert.True(t.State == TaskletState.Blocked, $"{what}: must block, but the tasklet is {t.State}");
    }

    /// <summary>
    /// select3.go's testBlock(never, f), made exact: <paramref name="operation"/> runs as a tasklet with nothing else
    /// that could wake it, so if it is dead once the scheduler is idle it never waited. A failure inside it surfaces
    /// from the scheduler as an unobserved failure.
    /// </summary>
    private static void AssertDoesNotBlock(string what, Func<Task> operation)
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Tasklet t = s.Go(operation);
        s.RunUntilIdle();
        Assert.True(t.State == TaskletState.Dead, $"{what}: must not block, but the tasklet is {t.State}");
    }
}
