using System.Collections.Concurrent;
using System.Globalization;
using System.Text;
using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// Adversarial, bounded, cross-thread conservation: "an item is either received exactly once, or its sender got an
/// exception", under kill, timeout, cancellation, close and select, for every channel kind.
/// </summary>
/// <remarks>
/// <para>Parties run all at once: tasklets of two schedulers, each on its own thread; plain async code on the thread
/// pool (with cancellation tokens); OS threads with the blocking <c>Send</c>/<c>Receive</c>. A disturber thread kills
/// tasklets and cancels tokens while they operate; killed tasklets are replaced by a supervisor, which continues with
/// the next value. Every value is unique and &gt; 0. Each party records an attempt before the operation, and its
/// outcome right after the operation returns, before anything else can throw (a kill raised after a completed send
/// does not undo it; a receiver killed after it received keeps the value).</para>
/// <para>The ledger asserts: received is a set; received is a subset of attempted (no phantom, no default 0);
/// every send reported as completed was received exactly once; and after the test drains the buffers, received
/// equals reported-sent exactly (a value whose sender got an exception, or whose select/Try reported another case,
/// must not arrive). Loops are bounded by counts; waits for threads are hang guards, never timing assertions.</para>
/// </remarks>
[Trait("Category", "Stress")]
public class ConservationStressTests
{
    private const int PerProducer = 25_000;
    private const int ProducerCount = 6;
    private const int FloodCount = 40_000;
    private const int MinTryAttempts = 20_000;
    private const int MaxTryAttempts = 2_000_000;
    private static readonly TimeSpan s_hangGuard = TimeSpan.FromSeconds(60);

    public static TheoryData<int> Capacities => new() { 0, 1, 8, -1 };

    // ------------------------------------------------------------------ tests

    [Theory]
    [MemberData(nameof(Capacities))]
    public void PlainOps_KillTimeoutCancellation_ReceivedOnceOrSenderThrew(int capacity)
    {
        // SendAsync/ReceiveAsync (plain, in tiny timeout scopes, with tokens cancelled from another thread),
        // TrySend/TryReceive, await foreach, blocking Send/Receive; tasklets killed from another thread; a final close.
        RunMixed(capacity, useSelect: false, closeMidStream: false);
    }

    [Theory]
    [MemberData(nameof(Capacities))]
    public void SelectsAndPlainOps_KillTimeoutCancellation_ReceivedOnceOrSenderThrew(int capacity)
    {
        // As above, plus Select.WaitAsync (plain, with a timeout, with a token, inside timeout scopes) and Select.Try
        // mixing send and receive cases over three channels, with reused case objects.
        RunMixed(capacity, useSelect: true, closeMidStream: false);
    }

    [Theory]
    [MemberData(nameof(Capacities))]
    public void CloseMidStream_RacesLiveSendersAndReceivers_ReceivedOnceOrSenderThrew(int capacity)
    {
        // Everything above, and a closer thread closes the three channels once half of the planned sends started,
        // while senders and receivers of every kind are parked or in flight.
        RunMixed(capacity, useSelect: true, closeMidStream: true);
    }

    [Theory]
    [MemberData(nameof(Capacities))]
    public void SelectReceiver_TrySendRacesBlockingFlood_EveryReportedSendArrivesOnce(int capacity)
    {
        // A tasklet parks in Select.WaitAsync(x.ReceiveCase(), y.ReceiveCase()) in a loop; an OS thread floods y with
        // blocking sends; another OS thread polls Select.Try(x.SendCase(v)). A Try that reports 0 must have handed v
        // over, although the flood may claim the same select at the same moment.
        Channel<int> x = Make(capacity);
        Channel<int> y = Make(capacity);
        var ledger = new Ledger();
        var stop = new Flag();
        using var a = new Scheduler();
        var rx = x.ReceiveCase();
        var ry = y.ReceiveCase();
        a.Go(() => SelectLoopAsync(ledger, stop, rx, ry, cancel: null), "selector");

        var floodDone = new Flag();
        var threads = new List<Thread>
        {
            RunThread(a, ledger, "scheduler A"),
            FloodThread(y, ledger, floodDone),
            TrySendThread(x, ledger, floodDone),
        };
        StartAll(threads, ledger);
        Assert.True(threads[1].Join(s_hangGuard), "hang guard: the flood thread did not finish");
        Assert.True(threads[2].Join(s_hangGuard), "hang guard: the Select.Try thread did not finish");
        stop.Set();
        x.Close();
        y.Close();
        Assert.True(threads[0].Join(s_hangGuard), "hang guard: scheduler A's Run() did not return");
        ledger.Drain(x, y);
        ledger.AssertConserved($"capacity {capacity}, select receiver vs Select.Try + flood");
    }

    [Theory]
    [MemberData(nameof(Capacities))]
    public void SelectReceivers_WaitsEndedByCancellationAndKill_EveryReportedSendArrivesOnce(int capacity)
    {
        // As above, but the parked selects (tasklets on schedulers A and B, and plain async code on the pool) wait
        // with a token that a disturber cancels from another thread, and the disturber also kills the tasklets (a
        // supervisor respawns them, reusing the case objects). Claims by the flood, by Select.Try, by cancellation
        // and by kill race on the same waits.
        Channel<int> x = Make(capacity);
        Channel<int> y = Make(capacity);
        var ledger = new Ledger();
        var stop = new Flag();
        using var cancel = new CancelBox();
        using var a = new Scheduler();
        using var b = new Scheduler();
        var slots = new List<Slot>();
        foreach (Scheduler s in new[] { a, b })
        {
            var rx = x.ReceiveCase();
            var ry = y.ReceiveCase();
            var slot = new Slot();
            slots.Add(slot);
            Supervise(s, slot, () => stop.IsSet, () => KillableSelectLoopAsync(ledger, stop, rx, ry, cancel), "selector");
        }

        Task pool = Task.Run(async () =>
        {
            ledger.AwaitStart();
            await SelectLoopAsync(ledger, stop, x.ReceiveCase(), y.ReceiveCase(), cancel);
        });
        var floodDone = new Flag();
        var threads = new List<Thread>
        {
            RunThread(a, ledger, "scheduler A"),
            RunThread(b, ledger, "scheduler B"),
            FloodThread(y, ledger, floodDone),
            TrySendThread(x, ledger, floodDone),
            DisturberThread(slots, cancel, stop, ledger, seed: 17 + capacity),
        };
        StartAll(threads, ledger);
        Assert.True(threads[2].Join(s_hangGuard), "hang guard: the flood thread did not finish");
        Assert.True(threads[3].Join(s_hangGuard), "hang guard: the Select.Try thread did not finish");
        stop.Set();
        x.Close();
        y.Close();
        Assert.True(threads[0].Join(s_hangGuard), "hang guard: scheduler A's Run() did not return");
        Assert.True(threads[1].Join(s_hangGuard), "hang guard: scheduler B's Run() did not return");
        Assert.True(threads[4].Join(s_hangGuard), "hang guard: the disturber did not finish");
        WaitGuarded(pool, "the pool selector");
        ledger.Drain(x, y);
        ledger.AssertConserved(
            $"capacity {capacity}, select receivers vs Select.Try + flood, cancels {cancel.Cancels}");
    }

    // ------------------------------------------------------------------ the mixed scenario

    private static void RunMixed(int capacity, bool useSelect, bool closeMidStream)
    {
        using var rig = new Rig(capacity, useSelect);
        Ledger ledger = rig.Ledger;
        using var producersDone = new CountdownEvent(ProducerCount);
        using var a = new Scheduler();
        using var b = new Scheduler();
        var slots = new List<Slot>();
        int nextId = 0;
        foreach (Scheduler s in new[] { a, b })
        {
            for (int k = 0; k < 2; k++)
            {
                var producer = new Producer(++nextId, rig, producersDone, seed: (nextId * 7919) + capacity);
                var slot = new Slot();
                slots.Add(slot);
                Supervise(s, slot, () => producer.IsDone, () => ProducerTaskletAsync(rig, producer), $"producer {producer.Id}");
            }

            for (int k = 0; k < 2; k++)
            {
                var consumer = new Consumer(rig, seed: (++nextId * 104_729) + capacity);
                var slot = new Slot();
                slots.Add(slot);
                Supervise(s, slot, () => rig.IsStopped, () => ConsumerTaskletAsync(rig, consumer), "consumer");
            }
        }

        var poolProducer = new Producer(++nextId, rig, producersDone, seed: nextId);
        var osProducer = new Producer(++nextId, rig, producersDone, seed: nextId);
        var poolConsumer = new Consumer(rig, seed: ++nextId);
        var osConsumer = new Consumer(rig, seed: ++nextId);
        var threads = new List<Thread>
        {
            RunThread(a, ledger, "scheduler A"),
            RunThread(b, ledger, "scheduler B"),
            new(() => OsProducer(rig, osProducer)) { IsBackground = true, Name = "OS producer" },
            new(() => OsConsumer(rig, osConsumer)) { IsBackground = true, Name = "OS consumer" },
            DisturberThread(slots, rig.Cancel, rig.StopFlag, ledger, seed: 31 + capacity),
        };
        if (closeMidStream)
        {
            // The trigger is a count (half of the planned sends started), not a time.
            const int half = ProducerCount * PerProducer / 2;
            threads.Add(new Thread(() =>
            {
                ledger.AwaitStart();
                while (ledger.AttemptCount < half && !rig.IsStopped)
                {
                    Thread.Yield();
                }

                rig.CloseAll();
            })
            { IsBackground = true, Name = "closer" });
        }

        Task poolSends = Task.Run(() => PoolProducerAsync(rig, poolProducer));
        Task poolReceives = Task.Run(() => PoolConsumerAsync(rig, poolConsumer));
        StartAll(threads, ledger);

        Assert.True(producersDone.Wait(s_hangGuard), "hang guard: the producers did not finish their counts");
        rig.Stop();
        rig.CloseAll();
        string[] names = ["scheduler A", "scheduler B", "OS producer", "OS consumer", "disturber", "closer"];
        for (int i = 0; i < threads.Count; i++)
        {
            Assert.True(threads[i].Join(s_hangGuard), $"hang guard: {names[i]} did not finish");
        }

        WaitGuarded(poolSends, "the pool producer");
        WaitGuarded(poolReceives, "the pool consumer");
        ledger.Drain(rig.C, rig.D, rig.E);
        ledger.AssertConserved(
            $"capacity {capacity}, select {useSelect}, close mid-stream {closeMidStream}, cancels {rig.Cancel.Cancels}");
    }

    private static async Task ProducerTaskletAsync(Rig rig, Producer p)
    {
        try
        {
            while (p.Next < PerProducer)
            {
                if (p.Random.Next(8) == 0)
                {
                    await Tasklet.Yield(); // a switch point, so that posted kills land between sends too
                }

                int v = p.TakeNextValue();
                await SendOneAsync(rig, p, v, inTasklet: true);
            }

            p.MarkDone();
        }
        catch (TaskletExitException)
        {
            // Killed: the supervisor spawns a replacement, which continues with the next value.
        }
    }

    private static async Task PoolProducerAsync(Rig rig, Producer p)
    {
        rig.Ledger.AwaitStart();
        try
        {
            while (p.Next < PerProducer)
            {
                int v = p.TakeNextValue();
                await SendOneAsync(rig, p, v, inTasklet: false);
            }
        }
        finally
        {
            p.MarkDone();
        }
    }

    /// <summary>One send of <paramref name="v"/> by one of several means; records its outcome as soon as it is known.</summary>
    private static async Task SendOneAsync(Rig rig, Producer p, int v, bool inTasklet)
    {
        Ledger ledger = rig.Ledger;
        Random r = p.Random;
        try
        {
            int fired;
            switch (r.Next(rig.UseSelect ? 8 : 4))
            {
                case 0:
                    await rig.C.SendAsync(v);
                    ledger.Sent(v);
                    break;
                case 1:
                    if (inTasklet)
                    {
                        using (Tasklet.Timeout(TinyTimeout(r)))
                        {
                            await rig.C.SendAsync(v);
                            ledger.Sent(v);
                        }
                    }
                    else
                    {
                        await rig.C.SendAsync(v, rig.Cancel.Token);
                        ledger.Sent(v);
                    }

                    break;
                case 2:
                    await rig.C.SendAsync(v, rig.Cancel.Token);
                    ledger.Sent(v);
                    break;
                case 3:
                    ledger.Outcome(v, rig.C.TrySend(v));
                    break;
                case 4:
                    p.ToC.Item = v;
                    p.ToD.Item = v;
                    fired = await Select.WaitAsync(p.ToC, p.ToD);
                    ledger.Outcome(v, fired is 0 or 1);
                    ledger.ExpectIndex(fired, 0, 1, "Select.WaitAsync(send c, send d)");
                    break;
                case 5:
                    p.ToC.Item = v;
                    if (inTasklet && r.Next(2) == 0)
                    {
                        using (Tasklet.Timeout(TinyTimeout(r)))
                        {
                            fired = await Select.WaitAsync(TimeSpan.FromMilliseconds(1), p.ToC, p.FromD);
                            ledger.Outcome(v, fired == 0);
                        }
                    }
                    else
                    {
                        fired = await Select.WaitAsync(TimeSpan.FromMilliseconds(1), p.ToC, p.FromD);
                        ledger.Outcome(v, fired == 0);
                    }

                    ledger.ReceivedIf(fired == 1, p.FromD);
                    ledger.ExpectIndex(fired, -1, 1, "Select.WaitAsync(1 ms, send c, receive d)");
                    break;
                case 6:
                    p.ToC.Item = v;
                    p.ToD.Item = v;
                    fired = await Select.WaitAsync(rig.Cancel.Token, p.ToC, p.FromE, p.ToD);
                    ledger.Outcome(v, fired is 0 or 2);
                    ledger.ReceivedIf(fired == 1, p.FromE);
                    ledger.ExpectIndex(fired, 0, 2, "Select.WaitAsync(token, send c, receive e, send d)");
                    break;
                default:
                    p.ToC.Item = v;
                    p.ToE.Item = v;
                    fired = Select.Try(p.ToC, p.FromD, p.ToE);
                    ledger.Outcome(v, fired is 0 or 2);
                    ledger.ReceivedIf(fired == 1, p.FromD);
                    ledger.ExpectIndex(fired, -1, 2, "Select.Try(send c, receive d, send e)");
                    break;
            }
        }
        catch (TaskletExitException e)
        {
            ledger.Failed(v);
            ledger.Note(e);
            throw;
        }
        catch (Exception e)
        {
            ledger.Failed(v);
            ledger.UnexpectedUnless(IsReportedFailure(e), "send", e);
        }
    }

    private static async Task ConsumerTaskletAsync(Rig rig, Consumer k)
    {
        try
        {
            while (!rig.IsStopped)
            {
                if (!await ReceiveOneAsync(rig, k, inTasklet: true))
                {
                    await Tasklet.Yield(); // nothing taken (Try, closed, timed out): let this scheduler's producers run
                }
            }
        }
        catch (TaskletExitException)
        {
            // Killed: the supervisor spawns a replacement until the test stops.
        }
    }

    private static async Task PoolConsumerAsync(Rig rig, Consumer k)
    {
        rig.Ledger.AwaitStart();
        while (!rig.IsStopped)
        {
            if (!await ReceiveOneAsync(rig, k, inTasklet: false))
            {
                await Task.Yield();
            }
        }
    }

    /// <summary>One receive by one of several means; records the value right after the operation returns. True if it took a value.</summary>
    private static async Task<bool> ReceiveOneAsync(Rig rig, Consumer k, bool inTasklet)
    {
        Ledger ledger = rig.Ledger;
        Random r = k.Random;
        try
        {
            int fired;
            switch (r.Next(rig.UseSelect ? 9 : 5))
            {
                case 0:
                    ledger.Received(await rig.C.ReceiveAsync());
                    return true;
                case 1:
                    if (inTasklet)
                    {
                        using (Tasklet.Timeout(TinyTimeout(r)))
                        {
                            ledger.Received(await rig.C.ReceiveAsync());
                        }
                    }
                    else
                    {
                        ledger.Received(await rig.C.ReceiveAsync(rig.Cancel.Token));
                    }

                    return true;
                case 2:
                    ledger.Received(await rig.C.ReceiveAsync(rig.Cancel.Token));
                    return true;
                case 3:
                    if (rig.C.TryReceive(out int item))
                    {
                        ledger.Received(item);
                        return true;
                    }

                    return false;
                case 4:
                    if (inTasklet && r.Next(2) == 0)
                    {
                        using (Tasklet.Timeout(TinyTimeout(r)))
                        {
                            return await ReceiveSomeAsync(rig, r.Next(1, 16), ledger);
                        }
                    }

                    return await ReceiveSomeAsync(rig, r.Next(1, 16), ledger);
                case 5:
                    fired = await Select.WaitAsync(k.FromC, k.FromD, k.FromE);
                    return ledger.ReceivedCase(fired, k.FromC, k.FromD, k.FromE);
                case 6:
                    if (inTasklet && r.Next(2) == 0)
                    {
                        using (Tasklet.Timeout(TinyTimeout(r)))
                        {
                            fired = await Select.WaitAsync(TimeSpan.FromMilliseconds(1), k.FromC, k.FromD, k.FromE);
                            return ledger.ReceivedCase(fired, k.FromC, k.FromD, k.FromE);
                        }
                    }

                    fired = await Select.WaitAsync(TimeSpan.FromMilliseconds(1), k.FromC, k.FromD, k.FromE);
                    return ledger.ReceivedCase(fired, k.FromC, k.FromD, k.FromE);
                case 7:
                    fired = await Select.WaitAsync(rig.Cancel.Token, k.FromC, k.FromD, k.FromE);
                    return ledger.ReceivedCase(fired, k.FromC, k.FromD, k.FromE);
                default:
                    fired = Select.Try(k.FromC, k.FromD, k.FromE);
                    return ledger.ReceivedCase(fired, k.FromC, k.FromD, k.FromE);
            }
        }
        catch (TaskletExitException e)
        {
            ledger.Note(e);
            throw;
        }
        catch (Exception e)
        {
            ledger.UnexpectedUnless(IsReportedFailure(e), "receive", e);
            return false;
        }
    }

    /// <summary><c>await foreach</c> with a token, for up to <paramref name="count"/> items; each is recorded as it arrives.</summary>
    private static async Task<bool> ReceiveSomeAsync(Rig rig, int count, Ledger ledger)
    {
        int taken = 0;
        await foreach (int v in rig.C.WithCancellation(rig.Cancel.Token))
        {
            ledger.Received(v);
            if (++taken == count)
            {
                break;
            }
        }

        return taken > 0;
    }

    private static void OsProducer(Rig rig, Producer p)
    {
        Ledger ledger = rig.Ledger;
        ledger.AwaitStart();
        try
        {
            while (p.Next < PerProducer)
            {
                int v = p.TakeNextValue();
                try
                {
                    switch (p.Random.Next(rig.UseSelect ? 4 : 3))
                    {
                        case 0:
                        case 1:
                            rig.C.Send(v);
                            ledger.Sent(v);
                            break;
                        case 2:
                            ledger.Outcome(v, rig.C.TrySend(v));
                            break;
                        default:
                            p.ToC.Item = v;
                            p.ToE.Item = v;
                            int fired = Select.Try(p.ToC, p.FromD, p.ToE);
                            ledger.Outcome(v, fired is 0 or 2);
                            ledger.ReceivedIf(fired == 1, p.FromD);
                            ledger.ExpectIndex(fired, -1, 2, "Select.Try(send c, receive d, send e) on an OS thread");
                            break;
                    }
                }
                catch (Exception e)
                {
                    ledger.Failed(v);
                    ledger.UnexpectedUnless(e is ChannelClosedException, "blocking send", e);
                }
            }
        }
        finally
        {
            p.MarkDone();
        }
    }

    private static void OsConsumer(Rig rig, Consumer k)
    {
        Ledger ledger = rig.Ledger;
        ledger.AwaitStart();
        while (!rig.IsStopped)
        {
            try
            {
                switch (k.Random.Next(rig.UseSelect ? 4 : 3))
                {
                    case 0:
                    case 1:
                        ledger.Received(rig.C.Receive());
                        break;
                    case 2:
                        if (rig.C.TryReceive(out int item))
                        {
                            ledger.Received(item);
                        }
                        else
                        {
                            Thread.Yield();
                        }

                        break;
                    default:
                        if (!ledger.ReceivedCase(Select.Try(k.FromC, k.FromD, k.FromE), k.FromC, k.FromD, k.FromE))
                        {
                            Thread.Yield();
                        }

                        break;
                }
            }
            catch (Exception e)
            {
                ledger.UnexpectedUnless(e is ChannelClosedException, "blocking receive", e);
            }
        }
    }

    // ------------------------------------------------------------------ the select scenarios

    /// <summary>A select receiver over x and y; <paramref name="cancel"/> null for plain waits. Kills end it.</summary>
    private static async Task SelectLoopAsync(Ledger ledger, Flag stop, ReceiveCase<int> rx, ReceiveCase<int> ry, CancelBox? cancel)
    {
        while (!stop.IsSet)
        {
            try
            {
                int fired = cancel is null
                    ? await Select.WaitAsync(rx, ry)
                    : await Select.WaitAsync(cancel.Token, rx, ry);
                ledger.ReceivedCase(fired, rx, ry);
                ledger.ExpectIndex(fired, 0, 1, "Select.WaitAsync(receive x, receive y)");
            }
            catch (TaskletExitException e)
            {
                ledger.Note(e);
                throw;
            }
            catch (Exception e)
            {
                ledger.UnexpectedUnless(e is OperationCanceledException, "select receive", e);
                if (Tasklet.Current is not null)
                {
                    await Tasklet.Yield();
                }
                else
                {
                    await Task.Yield();
                }
            }
        }
    }

    private static async Task KillableSelectLoopAsync(Ledger ledger, Flag stop, ReceiveCase<int> rx, ReceiveCase<int> ry, CancelBox cancel)
    {
        try
        {
            await SelectLoopAsync(ledger, stop, rx, ry, cancel);
        }
        catch (TaskletExitException)
        {
            // Killed: the supervisor spawns a replacement on the same case objects.
        }
    }

    private static Thread FloodThread(Channel<int> y, Ledger ledger, Flag done)
        => new(() =>
        {
            ledger.AwaitStart();
            try
            {
                for (int i = 0; i < FloodCount; i++)
                {
                    int v = 1_000_000 + i + 1;
                    ledger.Attempt(v);
                    try
                    {
                        y.Send(v);
                        ledger.Sent(v);
                    }
                    catch (Exception e)
                    {
                        ledger.Failed(v);
                        ledger.UnexpectedUnless(false, "flood send", e);
                    }
                }
            }
            finally
            {
                done.Set();
            }
        })
        { IsBackground = true, Name = "flood" };

    private static Thread TrySendThread(Channel<int> x, Ledger ledger, Flag floodDone)
        => new(() =>
        {
            ledger.AwaitStart();
            SendCase<int> sx = x.SendCase(0);
            var jitter = new Random(5);
            for (int i = 0; i < MaxTryAttempts && (i < MinTryAttempts || !floodDone.IsSet); i++)
            {
                // Jitter on a log scale (1 to 2,048 spins), so that the polls spread over the moments when the selector
                // parks and the flood arrives: a poll at once after every park would nearly always beat the flood.
                Thread.SpinWait(1 << jitter.Next(0, 12));
                int v = 2_000_000 + i + 1;
                ledger.Attempt(v);
                sx.Item = v;
                try
                {
                    int fired = Select.Try(sx);
                    ledger.Outcome(v, fired == 0);
                    ledger.ExpectIndex(fired, -1, 0, "Select.Try(send x)");
                }
                catch (Exception e)
                {
                    ledger.Failed(v);
                    ledger.UnexpectedUnless(false, "Select.Try(send x)", e);
                }
            }
        })
        { IsBackground = true, Name = "Select.Try sender" };

    // ------------------------------------------------------------------ plumbing

    private static Channel<int> Make(int capacity) => capacity < 0 ? Channel<int>.CreateUnbounded() : new Channel<int>(capacity);

    private static TimeSpan TinyTimeout(Random r) => TimeSpan.FromTicks(r.Next(1, 200));

    /// <summary>The exceptions an operation may end with under these disturbances (it then took no effect).</summary>
    private static bool IsReportedFailure(Exception e)
        => e is ChannelClosedException or TaskletTimeoutException or OperationCanceledException; // TaskletExitException is an OperationCanceledException

    /// <summary>Runs <paramref name="body"/> in a fresh tasklet until <paramref name="done"/>, replacing it whenever it was killed.</summary>
    private static void Supervise(Scheduler s, Slot slot, Func<bool> done, Func<Task> body, string name)
    {
        s.Go(async () =>
        {
            while (!done())
            {
                Tasklet worker = Tasklet.Go(body, name);
                slot.Current = worker;
                try
                {
                    await worker;
                }
                catch (TaskletExitException)
                {
                    // Killed before it started (it never ran its own catch): replace it.
                }
            }

            slot.Current = null;
        }, name + " supervisor");
    }

    private static Thread RunThread(Scheduler s, Ledger ledger, string name)
        => new(() =>
        {
            ledger.AwaitStart();
            try
            {
                s.Run();
            }
            catch (Exception e)
            {
                ledger.UnexpectedUnless(false, name + " Run()", e);
            }
        })
        { IsBackground = true, Name = name };

    /// <summary>Kills the tasklet in a random slot, or cancels the shared token, with a few yields in between; until stopped.</summary>
    private static Thread DisturberThread(IReadOnlyList<Slot> slots, CancelBox cancel, Flag stop, Ledger ledger, int seed)
        => new(() =>
        {
            ledger.AwaitStart();
            var r = new Random(seed);
            while (!stop.IsSet)
            {
                try
                {
                    int k = r.Next(slots.Count + 2);
                    if (k < slots.Count)
                    {
                        if (slots[k].Current is { } victim)
                        {
                            victim.Kill();
                            ledger.CountKill();
                        }
                    }
                    else
                    {
                        cancel.Cancel();
                    }
                }
                catch (Exception e)
                {
                    ledger.UnexpectedUnless(false, "disturber", e);
                }

                // A short, random pause between disturbances (never a wait for another party).
                Thread.SpinWait(r.Next(1, 400));
                if (r.Next(16) == 0)
                {
                    Thread.Yield();
                }
            }
        })
        { IsBackground = true, Name = "disturber" };

    private static void WaitGuarded(Task task, string what)
        => Assert.True(task.Wait(s_hangGuard), $"hang guard: {what} did not finish");

    /// <summary>Starts the threads, then opens the ledger's start gate, so that every party begins at once.</summary>
    private static void StartAll(List<Thread> threads, Ledger ledger)
    {
        foreach (Thread t in threads)
        {
            t.Start();
        }

        ledger.Open();
    }

    private sealed class Flag
    {
        private volatile bool _set;

        public bool IsSet => _set;

        public void Set() => _set = true;
    }

    private sealed class Slot
    {
        private volatile Tasklet? _current;

        public Tasklet? Current
        {
            get => _current;
            set => _current = value;
        }
    }

    /// <summary>A token source that the disturber cancels; the next reader gets a fresh one.</summary>
    private sealed class CancelBox : IDisposable
    {
        private CancellationTokenSource _source = new();
        private int _cancels;

        public int Cancels => Volatile.Read(ref _cancels);

        public CancellationToken Token
        {
            get
            {
                CancellationTokenSource current = Volatile.Read(ref _source);
                if (current.IsCancellationRequested)
                {
                    // Not disposed: the disturber may still be cancelling it. It holds no timer or handle.
                    Interlocked.CompareExchange(ref _source, new CancellationTokenSource(), current);
                    current = Volatile.Read(ref _source);
                }

                return current.Token;
            }
        }

        public void Cancel()
        {
            Volatile.Read(ref _source).Cancel();
            Interlocked.Increment(ref _cancels);
        }

        public void Dispose() => Volatile.Read(ref _source).Dispose(); // after every party stopped
    }

    private sealed class Rig : IDisposable
    {
        private readonly Flag _stop = new();

        public Rig(int capacity, bool useSelect)
        {
            C = Make(capacity);
            D = Make(capacity);
            E = Make(capacity);
            UseSelect = useSelect;
        }

        public Channel<int> C { get; }

        public Channel<int> D { get; }

        public Channel<int> E { get; }

        public bool UseSelect { get; }

        public Ledger Ledger { get; } = new();

        public CancelBox Cancel { get; } = new();

        public Flag StopFlag => _stop;

        public bool IsStopped => _stop.IsSet;

        public void Stop() => _stop.Set();

        public void CloseAll()
        {
            C.Close();
            D.Close();
            E.Close();
        }

        public void Dispose() => Cancel.Dispose();
    }

    /// <summary>A sender's state, kept across the tasklets that replace a killed one; one party uses it at a time.</summary>
    private sealed class Producer
    {
        private readonly Ledger _ledger;
        private readonly CountdownEvent _done;
        private volatile bool _isDone;

        public Producer(int id, Rig rig, CountdownEvent done, int seed)
        {
            Id = id;
            _ledger = rig.Ledger;
            _done = done;
            Random = new Random(seed);
            ToC = rig.C.SendCase(0);
            ToD = rig.D.SendCase(0);
            ToE = rig.E.SendCase(0);
            FromD = rig.D.ReceiveCase();
            FromE = rig.E.ReceiveCase();
        }

        public int Id { get; }

        public int Next { get; private set; }

        public Random Random { get; }

        public SendCase<int> ToC { get; }

        public SendCase<int> ToD { get; }

        public SendCase<int> ToE { get; }

        public ReceiveCase<int> FromD { get; }

        public ReceiveCase<int> FromE { get; }

        public bool IsDone => _isDone;

        /// <summary>The next unique value, recorded as attempted; a replacement never retries it.</summary>
        public int TakeNextValue()
        {
            int v = (Id * 1_000_000) + Next + 1;
            Next++;
            _ledger.Attempt(v);
            return v;
        }

        public void MarkDone()
        {
            if (!_isDone)
            {
                _isDone = true;
                _done.Signal();
            }
        }
    }

    /// <summary>A receiver's state, kept across replacements.</summary>
    private sealed class Consumer
    {
        public Consumer(Rig rig, int seed)
        {
            Random = new Random(seed);
            FromC = rig.C.ReceiveCase();
            FromD = rig.D.ReceiveCase();
            FromE = rig.E.ReceiveCase();
        }

        public Random Random { get; }

        public ReceiveCase<int> FromC { get; }

        public ReceiveCase<int> FromD { get; }

        public ReceiveCase<int> FromE { get; }
    }

    /// <summary>What was attempted, reported sent, reported failed, and received; and the verdict.</summary>
    private sealed class Ledger
    {
        private const int MaxErrors = 20;

        private readonly ConcurrentBag<int> _attempted = [];
        private readonly ConcurrentBag<int> _sent = [];
        private readonly ConcurrentBag<int> _failed = [];
        private readonly ConcurrentBag<int> _received = [];
        private readonly ConcurrentQueue<string> _errors = new();
        private readonly Flag _open = new();
        private int _attemptCount;
        private int _errorCount;
        private int _kills;
        private int _closed;
        private int _timedOut;
        private int _cancelled;
        private int _exited;

        public int AttemptCount => Volatile.Read(ref _attemptCount);

        public int Kills => Volatile.Read(ref _kills);

        public void CountKill() => Interlocked.Increment(ref _kills);

        public void Open() => _open.Set();

        /// <summary>The start gate: parties spin here until every thread was started.</summary>
        public void AwaitStart()
        {
            while (!_open.IsSet)
            {
                Thread.Yield();
            }
        }

        /// <summary>Counts an operation that threw, by kind (reported with the verdict, to show the disturbances landed).</summary>
        public void Note(Exception e)
        {
            switch (e)
            {
                case TaskletExitException:
                    Interlocked.Increment(ref _exited);
                    break;
                case OperationCanceledException:
                    Interlocked.Increment(ref _cancelled);
                    break;
                case TaskletTimeoutException:
                    Interlocked.Increment(ref _timedOut);
                    break;
                case ChannelClosedException:
                    Interlocked.Increment(ref _closed);
                    break;
                default:
                    break;
            }
        }

        public void Attempt(int v)
        {
            _attempted.Add(v);
            Interlocked.Increment(ref _attemptCount);
        }

        public void Sent(int v) => _sent.Add(v);

        public void Failed(int v) => _failed.Add(v);

        public void Outcome(int v, bool sent)
        {
            if (sent)
            {
                _sent.Add(v);
            }
            else
            {
                _failed.Add(v);
            }
        }

        public void Received(int v) => _received.Add(v);

        public void ReceivedIf(bool fired, ReceiveCase<int> c)
        {
            if (fired && !c.IsClosed)
            {
                _received.Add(c.Value);
            }
        }

        /// <summary>Records the value of the receive case that fired (none for -1 or a closed channel). True if a value was taken.</summary>
        public bool ReceivedCase(int fired, params ReadOnlySpan<ReceiveCase<int>> cases)
        {
            if (fired < 0)
            {
                return false;
            }

            if (fired >= cases.Length)
            {
                UnexpectedUnless(false, "select", new InvalidOperationException($"select returned {fired} for {cases.Length} cases"));
                return false;
            }

            if (cases[fired].IsClosed)
            {
                return false;
            }

            _received.Add(cases[fired].Value);
            return true;
        }

        public void ExpectIndex(int fired, int min, int max, string what)
        {
            if (fired < min || fired > max)
            {
                UnexpectedUnless(false, what, new InvalidOperationException($"returned {fired}"));
            }
        }

        public void UnexpectedUnless(bool expected, string where, Exception e)
        {
            Note(e);
            if (expected)
            {
                return;
            }

            if (Interlocked.Increment(ref _errorCount) <= MaxErrors)
            {
                string first = e.ToString().Split('\n')[0];
                _errors.Enqueue($"{where}: {first}");
            }
        }

        /// <summary>Takes what is left in the channels (all parties have stopped): it counts as received.</summary>
        public void Drain(params Channel<int>[] channels)
        {
            foreach (Channel<int> c in channels)
            {
                while (c.TryReceive(out int v))
                {
                    _received.Add(v);
                }
            }
        }

        public void AssertConserved(string context)
        {
            int[] attemptedList = [.. _attempted];
            var attempted = new HashSet<int>(attemptedList);
            var sent = new HashSet<int>(_sent);
            var failed = new HashSet<int>(_failed);
            var receivedCounts = new Dictionary<int, int>();
            foreach (int v in _received)
            {
                receivedCounts[v] = receivedCounts.GetValueOrDefault(v) + 1;
            }

            var problems = new StringBuilder();
            void Problem(string what, IEnumerable<int> values)
            {
                int[] all = [.. values.Order()];
                if (all.Length > 0)
                {
                    problems.Append(CultureInfo.InvariantCulture, $"\n  {all.Length} {what}, e.g. {string.Join(", ", all.Take(8))}");
                }
            }

            if (receivedCounts.GetValueOrDefault(0) is > 0 and int zeros)
            {
                problems.Append(CultureInfo.InvariantCulture, $"\n  default(int) 0 received {zeros} times (a phantom: no sender sends 0)");
            }

            Problem("values received more than once", receivedCounts.Where(kv => kv.Value > 1 && kv.Key != 0).Select(kv => kv.Key));
            Problem("phantom values received (never attempted)", receivedCounts.Keys.Where(v => v != 0 && !attempted.Contains(v)));
            Problem("values lost (the send was reported completed, never received)", sent.Where(v => !receivedCounts.ContainsKey(v)));
            Problem(
                "values received although their send threw or was not reported as sent",
                receivedCounts.Keys.Where(v => attempted.Contains(v) && !sent.Contains(v)));
            Problem("attempts with no outcome (test accounting)", attempted.Where(v => !sent.Contains(v) && !failed.Contains(v)));
            Problem("attempts reported both sent and failed (test accounting)", sent.Where(failed.Contains));
            if (attemptedList.Length != attempted.Count)
            {
                problems.Append(CultureInfo.InvariantCulture, $"\n  {attemptedList.Length - attempted.Count} values attempted twice (test accounting)");
            }

            int errorCount = Volatile.Read(ref _errorCount);
            if (errorCount > 0)
            {
                problems.Append(CultureInfo.InvariantCulture, $"\n  {errorCount} unexpected exceptions or results:");
                foreach (string error in _errors)
                {
                    problems.Append(CultureInfo.InvariantCulture, $"\n    {error}");
                }
            }

            string summary = string.Create(
                CultureInfo.InvariantCulture,
                $"{context}: attempted {attempted.Count}, reported sent {sent.Count}, failed {failed.Count}, received {_received.Count}; "
                + $"kills {_kills}, threw: exit {_exited}, cancelled {_cancelled}, timed out {_timedOut}, closed {_closed}");
            Assert.True(problems.Length == 0, summary + problems);
        }
    }
}
