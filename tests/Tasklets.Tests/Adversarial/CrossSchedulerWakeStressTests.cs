using System.Collections.Concurrent;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// Issue 17: cross-thread wake-ups land while the woken scheduler's owner runs, spins in its idle wait, or sleeps
/// (Scheduler.Idle.cs). None may be lost (a lost one is a hang, caught by the hang guards) and nothing may be lost or
/// duplicated: received + failed sends = sent. Two schedulers, each inside Run on a thread of its own, plus plain
/// async code on the thread pool and a plain OS thread; kills, timeouts, cancellations and a close race the handoffs.
/// Bounded by counts; the waits for threads are hang guards, never timing assertions.
/// </summary>
[Trait("Category", "Stress")]
public class CrossSchedulerWakeStressTests
{
    private const int Items = 20_000;
    private const int Supervisors = 2;
    private static readonly TimeSpan s_hangGuard = TimeSpan.FromSeconds(60);

    public static TheoryData<int> Capacities => new() { 0, 1, 64 };

    [Theory]
    [MemberData(nameof(Capacities))]
    public void Handoff_ProducerAndConsumerOnTwoSchedulersOnTwoThreads_EveryItemArrivesOnceInOrder(int capacity)
    {
        // One producer tasklet on A, one consumer tasklet on B: every item is a wake-up across threads (two for an
        // unbuffered channel), landing at whatever point the other owner is: running, spinning or asleep.
        var channel = new Channel<int>(capacity);
        // Not `using`: after a failed hang guard, a Dispose would wait for the hung owner forever; disposed once joined.
        var a = new Scheduler();
        var b = new Scheduler();
        a.Go(async () =>
        {
            for (int i = 0; i < Items; i++)
            {
                await channel.SendAsync(i);
            }

            channel.Close();
        }, "producer");
        var received = new List<int>(Items);
        b.Go(async () =>
        {
            await foreach (int item in channel)
            {
                received.Add(item);
            }
        }, "consumer");

        var ra = RunningScheduler.Start(a);
        var rb = RunningScheduler.Start(b);
        Assert.Null(ra.Join()); // a hang here is a lost wake-up
        Assert.Null(rb.Join());
        a.Dispose();
        b.Dispose();
        Assert.Equal(Enumerable.Range(0, Items), received);
    }

    [Theory]
    [MemberData(nameof(Capacities))]
    public void Handoff_KillsTimeoutsAndCancellationsRacing_ReceivedPlusFailedSendsEqualsSent(int capacity)
        => RunRacing(capacity, closeMidStream: false);

    [Theory]
    [MemberData(nameof(Capacities))]
    public void Handoff_CloseMidStreamRacingTheParties_ReceivedPlusFailedSendsEqualsSent(int capacity)
        => RunRacing(capacity, closeMidStream: true);

    /// <summary>
    /// Producers: tasklets of scheduler A (some sends in 20 µs timeout scopes) and plain async code on the pool (some
    /// sends with a token cancelled after a moment). Consumers: tasklets of scheduler B (some receives in timeout
    /// scopes) and a plain OS thread with the blocking Receive. A disturber thread kills the producer and consumer
    /// tasklets while they operate; supervisor tasklets replace them. The channel is closed once every value was tried
    /// (or, with <paramref name="closeMidStream"/>, once half of them were: the rest fail with ChannelClosedException).
    /// </summary>
    private static void RunRacing(int capacity, bool closeMidStream)
    {
        var channel = new Channel<int>(capacity);
        var ledger = new Ledger();
        // Not `using`: after a failed hang guard, a Dispose would wait for the hung owner forever; disposed once joined.
        var a = new Scheduler();
        var b = new Scheduler();
        var killable = new Tasklet?[2 * Supervisors];
        int producersDone = 0;
        int next = 0;
        int NextValue() => Interlocked.Increment(ref next);

        for (int s = 0; s < Supervisors; s++)
        {
            int slot = s;
            a.Go(async () =>
            {
                while (Volatile.Read(ref next) < Items)
                {
                    Tasklet producer = Tasklet.Go(() => ProduceAsync(channel, ledger, NextValue), $"producer {slot}");
                    Volatile.Write(ref killable[slot], producer);
                    try
                    {
                        await producer;
                    }
                    catch (TaskletExitException)
                    {
                        // Killed by the disturber: its in-flight send was recorded as failed; replace it.
                    }
                }

                Interlocked.Increment(ref producersDone);
            }, $"producer supervisor {slot}");

            b.Go(async () =>
            {
                while (true)
                {
                    Tasklet<bool> consumer = Tasklet.Go(() => ConsumeAsync(channel, ledger), $"consumer {slot}");
                    Volatile.Write(ref killable[Supervisors + slot], consumer);
                    try
                    {
                        if (await consumer)
                        {
                            return; // the channel is closed and drained
                        }
                    }
                    catch (TaskletExitException)
                    {
                    }
                }
            }, $"consumer supervisor {slot}");
        }

        Task poolProducer = Task.Run(async () =>
        {
            for (int k = 0; ; k++)
            {
                int v = NextValue();
                if (v > Items)
                {
                    return;
                }

                ledger.Attempt(v);
                using var cancel = k % 5 == 0 ? new CancellationTokenSource(TimeSpan.FromMilliseconds(k % 3)) : null;
                try
                {
                    await channel.SendAsync(v, cancel?.Token ?? default);
                    ledger.Sent(v);
                }
                catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
                {
                    ledger.Failed(v);
                }
            }
        });

        var threadConsumer = new Thread(() =>
        {
            try
            {
                while (true)
                {
                    ledger.Received(channel.Receive());
                }
            }
            catch (ChannelClosedException)
            {
            }
        })
        { IsBackground = true, Name = "OS thread consumer" };

        var stop = new ManualResetEventSlim();
        var disturber = new Thread(() =>
        {
            for (int i = 0; !stop.IsSet && i < 20_000; i++)
            {
                Volatile.Read(ref killable[i % killable.Length])?.Kill();
                Thread.SpinWait(2_000 + (i * 7919 % 20_000)); // pacing of the disturbance, not a synchronisation
            }
        })
        { IsBackground = true, Name = "disturber" };

        var ra = RunningScheduler.Start(a);
        var rb = RunningScheduler.Start(b);
        threadConsumer.Start();
        disturber.Start();

        if (closeMidStream)
        {
            WaitUntil(() => Volatile.Read(ref next) >= Items / 2, "half of the values were never tried");
            channel.Close();
        }

        WaitUntil(() => Volatile.Read(ref producersDone) == Supervisors && poolProducer.IsCompleted, "the producers did not finish");
        poolProducer.GetAwaiter().GetResult();
        channel.Close();
        Assert.Null(ra.Join());
        Assert.Null(rb.Join());
        a.Dispose();
        b.Dispose();
        Assert.True(threadConsumer.Join(s_hangGuard), "hang guard: the OS thread's Receive did not end");
        stop.Set();
        Assert.True(disturber.Join(s_hangGuard), "hang guard: the disturber did not stop");

        ledger.AssertConserved(Items, $"capacity {capacity}, close mid-stream: {closeMidStream}");
    }

    private static async Task ProduceAsync(Channel<int> channel, Ledger ledger, Func<int> nextValue)
    {
        for (int k = 0; ; k++)
        {
            int v = nextValue();
            if (v > Items)
            {
                return;
            }

            ledger.Attempt(v);
            try
            {
                if (k % 7 == 0)
                {
                    using (Tasklet.Timeout(TimeSpan.FromMicroseconds(20)))
                    {
                        await channel.SendAsync(v);
                    }
                }
                else
                {
                    await channel.SendAsync(v);
                }

                ledger.Sent(v); // right after the send returned: a kill is raised at the next blocking point only
            }
            catch (Exception e) when (e is TaskletExitException or TaskletTimeoutException or ChannelClosedException)
            {
                ledger.Failed(v);
                if (e is TaskletExitException)
                {
                    throw;
                }
            }
        }
    }

    /// <summary>Receives until the channel is closed and drained (true) or the tasklet is killed (TaskletExitException).</summary>
    private static async Task<bool> ConsumeAsync(Channel<int> channel, Ledger ledger)
    {
        for (int k = 0; ; k++)
        {
            int v;
            try
            {
                if (k % 5 == 0)
                {
                    using (Tasklet.Timeout(TimeSpan.FromMicroseconds(20)))
                    {
                        v = await channel.ReceiveAsync();
                    }
                }
                else
                {
                    v = await channel.ReceiveAsync();
                }
            }
            catch (TaskletTimeoutException)
            {
                continue;
            }
            catch (ChannelClosedException)
            {
                return true;
            }

            ledger.Received(v); // a receiver killed after it received keeps the value
        }
    }

    /// <summary>Spins until <paramref name="condition"/> holds (a state, never a duration); fails after the hang guard.</summary>
    private static void WaitUntil(Func<bool> condition, string what)
    {
        var spin = new SpinWait();
        DateTime deadline = DateTime.UtcNow + s_hangGuard;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "hang guard: " + what);
            spin.SpinOnce();
        }
    }

    /// <summary>What every party did with every value: tried, sent (the send returned), failed (it threw), received.</summary>
    private sealed class Ledger
    {
        private readonly ConcurrentDictionary<int, byte> _attempted = new();
        private readonly ConcurrentDictionary<int, byte> _sent = new();
        private readonly ConcurrentDictionary<int, byte> _failed = new();
        private readonly ConcurrentDictionary<int, int> _received = new();

        public void Attempt(int v) => Assert.True(_attempted.TryAdd(v, 0), $"value {v} was tried twice");

        public void Sent(int v) => _sent.TryAdd(v, 0);

        public void Failed(int v) => _failed.TryAdd(v, 0);

        public void Received(int v) => _received.AddOrUpdate(v, 1, static (_, n) => n + 1);

        public void AssertConserved(int items, string scenario)
        {
            Assert.Equal(items, _attempted.Count);
            int[] both = _sent.Keys.Intersect(_failed.Keys).ToArray();
            Assert.True(both.Length == 0, $"{scenario}: sends reported both completed and failed: {string.Join(", ", both.Take(10))}");
            int[] neither = _attempted.Keys.Except(_sent.Keys).Except(_failed.Keys).ToArray();
            Assert.True(neither.Length == 0, $"{scenario}: sends with no outcome: {string.Join(", ", neither.Take(10))}");
            int[] duplicated = _received.Where(p => p.Value != 1).Select(p => p.Key).ToArray();
            Assert.True(duplicated.Length == 0, $"{scenario}: values received more than once: {string.Join(", ", duplicated.Take(10))}");
            int[] lost = _sent.Keys.Except(_received.Keys).ToArray();
            Assert.True(lost.Length == 0, $"{scenario}: completed sends never received: {string.Join(", ", lost.Take(10))}");
            int[] phantom = _received.Keys.Except(_sent.Keys).ToArray();
            Assert.True(phantom.Length == 0, $"{scenario}: received values whose send failed or never happened: {string.Join(", ", phantom.Take(10))}");
            Assert.Equal(items, _received.Count + _failed.Count);
        }
    }
}
