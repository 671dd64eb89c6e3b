using System.Collections.Concurrent;
using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// Real threads, bounded in count and time; asserts conservation only (every item received exactly once), never
/// timing. Producers: tasklets of two schedulers each on its own thread, an OS thread with blocking Send, and plain
/// async code on the thread pool. Consumers: tasklets of a third scheduler and an OS thread with blocking Receive.
/// </summary>
[Trait("Category", "Stress")]
public class ChannelStressTests
{
    private const int PerProducer = 2_000;

    public static TheoryData<int> Capacities => new() { 0, 16, -1 };

    [Theory]
    [MemberData(nameof(Capacities))]
    public void MixedParties_EveryItemReceivedExactlyOnce(int capacity)
    {
        Channel<int> c = capacity < 0 ? Channel<int>.CreateUnbounded() : new Channel<int>(capacity);
        var received = new ConcurrentBag<int>();
        int producersLeft = 6;
        void ProducerDone()
        {
            if (Interlocked.Decrement(ref producersLeft) == 0)
            {
                c.Close();
            }
        }

        async Task ProduceAsync(int id)
        {
            for (int i = 0; i < PerProducer; i++)
            {
                await c.SendAsync((id * PerProducer) + i);
            }

            ProducerDone();
        }

        var producerSchedulers = new[] { new Scheduler(), new Scheduler() };
        for (int s = 0; s < 2; s++)
        {
            for (int p = 0; p < 2; p++)
            {
                int id = (s * 2) + p;
                producerSchedulers[s].Go(() => ProduceAsync(id));
            }
        }

        using var consumerScheduler = new Scheduler();
        for (int k = 0; k < 2; k++)
        {
            consumerScheduler.Go(async () =>
            {
                await foreach (int x in c)
                {
                    received.Add(x);
                }
            });
        }

        var threads = new List<Thread>
        {
            new(() => producerSchedulers[0].Run()),
            new(() => producerSchedulers[1].Run()),
            new(() => consumerScheduler.Run()),
            new(() =>
            {
                for (int i = 0; i < PerProducer; i++)
                {
                    c.Send((4 * PerProducer) + i);
                }

                ProducerDone();
            }),
            new(() =>
            {
                try
                {
                    while (true)
                    {
                        received.Add(c.Receive());
                    }
                }
                catch (ChannelClosedException)
                {
                }
            }),
        };
        var poolDone = new ManualResetEventSlim();
        ThreadPool.QueueUserWorkItem(async _ =>
        {
            await ProduceAsync(5); // plain async code on the thread pool
            poolDone.Set();
        });
        foreach (Thread t in threads)
        {
            t.IsBackground = true;
            t.Start();
        }

        foreach (Thread t in threads)
        {
            Assert.True(t.Join(TimeSpan.FromSeconds(60)), "a party hung (hang guard, not a timing assertion)");
        }

        Assert.True(poolDone.Wait(TimeSpan.FromSeconds(60)));
        foreach (Scheduler s in producerSchedulers)
        {
            s.Dispose();
        }

        int[] all = [.. received];
        Array.Sort(all);
        Assert.Equal(Enumerable.Range(0, 6 * PerProducer), all);
    }

    [Fact]
    public void CrossScheduler_SelectAndKill_NothingLostNothingDuplicated()
    {
        // A selector on one scheduler takes from two channels fed by another scheduler's tasklets; some of its
        // receive attempts are cancelled by timeouts. Every value sent is received once.
        var a = new Channel<int>();
        var b = new Channel<int>(4);
        var got = new ConcurrentBag<int>();
        const int N = 3_000;
        using var producers = new Scheduler();
        producers.Go(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                await (i % 2 == 0 ? a : b).SendAsync(i);
            }

            a.Close();
            b.Close();
        });
        using var consumer = new Scheduler();
        consumer.Go(async () =>
        {
            var ra = a.ReceiveCase();
            var rb = b.ReceiveCase();
            bool aOpen = true, bOpen = true;
            while (aOpen || bOpen)
            {
                int fired = aOpen && bOpen
                    ? await Select.WaitAsync(TimeSpan.FromMilliseconds(1), ra, rb)
                    : aOpen ? await Select.WaitAsync(ra) : 1 + await Select.WaitAsync(rb);
                if (fired == 0)
                {
                    if (ra.IsClosed) { aOpen = false; } else { got.Add(ra.Value); }
                }
                else if (fired == 1)
                {
                    if (rb.IsClosed) { bOpen = false; } else { got.Add(rb.Value); }
                }
            }
        });
        var tp = new Thread(() => producers.Run()) { IsBackground = true };
        var tc = new Thread(() => consumer.Run()) { IsBackground = true };
        tp.Start();
        tc.Start();
        Assert.True(tp.Join(TimeSpan.FromSeconds(60)));
        Assert.True(tc.Join(TimeSpan.FromSeconds(60)));
        int[] all = [.. got];
        Array.Sort(all);
        Assert.Equal(Enumerable.Range(0, N), all);
    }
}
