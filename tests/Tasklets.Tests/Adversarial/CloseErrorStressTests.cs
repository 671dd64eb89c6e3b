using System.Collections.Concurrent;
using Tasklets.Tests.Infrastructure;
using Xunit;
using Stc = System.Threading.Channels;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// <see cref="Channel{T}.Close(Exception?)"/> racing live sends and receives on real threads: tasklets of two
/// schedulers (each on its own thread), an OS thread with the blocking <c>Send</c>/<c>Receive</c>, and plain
/// thread-pool code through the STC adapters (<c>ReadAsync</c>, and <c>WaitToReadAsync</c> then <c>TryRead</c>).
/// A closer thread closes with an error at a seeded point of the stream.
/// </summary>
/// <remarks>
/// Asserts conservation, never timing: every value sent is either received exactly once or its send failed with
/// the close's error inside; a failed send's value never arrives; every party that stopped learnt the error; and
/// <see cref="Channel{T}.Completion"/> completes exactly at the drain: no receive begun after it completed got an item,
/// and it does complete, faulted with the error. Waits for threads are hang guards.
/// </remarks>
[Trait("Category", "Stress")]
public class CloseErrorStressTests
{
    private const int Rounds = 12;
    private const int PerProducer = 400;

    public static TheoryData<int> Capacities => new() { 0, 1, 8, -1 };

    [Theory]
    [MemberData(nameof(Capacities))]
    public void CloseWithError_RacesSendsAndReceivesOfEveryParty_ReceivedPlusFailedIsSent(int capacity)
    {
        for (int round = 1; round <= Rounds; round++)
        {
            RunRound(capacity, seed: (capacity * 1000) + round);
        }
    }

    private static void RunRound(int capacity, int seed)
    {
        Channel<int> c = capacity < 0 ? Channel<int>.CreateUnbounded() : new Channel<int>(capacity);
        Task completion = c.Completion; // made before the race: a late first read would be completed trivially
        var error = new FormatException($"producer failed (seed {seed})");
        var sent = new ConcurrentBag<int>();
        var failed = new ConcurrentBag<int>();
        var received = new ConcurrentBag<int>();
        var problems = new ConcurrentQueue<string>();
        int sentCount = 0;
        int closeAfter = new Random(seed).Next(1, 5 * PerProducer);

        // A receive that began after Completion had completed must not get an item: completion came before the drain.
        void Received(int value, bool completedBefore, string who)
        {
            received.Add(value);
            if (completedBefore)
            {
                problems.Enqueue($"{who} received {value} after Completion had completed");
            }
        }

        void Stopped(Exception? inner, string who)
        {
            if (!ReferenceEquals(inner, error))
            {
                problems.Enqueue($"{who} stopped without the close's error: {inner?.GetType().Name ?? "none"}");
            }
        }

        async Task ProduceAsync(int id)
        {
            for (int i = 0; i < PerProducer; i++)
            {
                int value = (id * PerProducer) + i + 1;
                try
                {
                    await c.SendAsync(value);
                }
                catch (ChannelClosedException closed)
                {
                    failed.Add(value);
                    Stopped(closed.InnerException, $"producer {id}");
                    return;
                }

                sent.Add(value); // recorded right after the send returned
                Interlocked.Increment(ref sentCount);
            }
        }

        async Task ConsumeAsync(string who, bool select)
        {
            ReceiveCase<int> rc = c.ReceiveCase();
            while (true)
            {
                bool before = completion.IsCompleted;
                if (select)
                {
                    await Select.WaitAsync(rc);
                    if (rc.IsClosed)
                    {
                        Stopped(rc.CloseError, who);
                        return;
                    }

                    Received(rc.Value, before, who);
                    continue;
                }

                int value;
                try
                {
                    value = await c.ReceiveAsync();
                }
                catch (ChannelClosedException closed)
                {
                    Stopped(closed.InnerException, who);
                    return;
                }

                Received(value, before, who);
            }
        }

        using var a = new Scheduler();
        using var b = new Scheduler();
        a.Go(() => ProduceAsync(0));
        a.Go(() => ProduceAsync(1));
        b.Go(() => ProduceAsync(2));
        a.Go(() => ConsumeAsync("tasklet A receive", select: false));
        b.Go(() => ConsumeAsync("tasklet B select", select: true));
        b.Go(async () =>
        {
            try
            {
                await foreach (int x in c)
                {
                    received.Add(x); // (no completion check: the enumerator's receive begins inside MoveNextAsync)
                }

                problems.Enqueue("await foreach ended quietly on a channel closed with an error");
            }
            catch (ChannelClosedException closed)
            {
                Stopped(closed.InnerException, "tasklet B foreach");
            }
        });

        Stc.ChannelReader<int> reader = c.AsChannelReader();
        Task readAsync = Task.Run(async () =>
        {
            while (true)
            {
                bool before = completion.IsCompleted;
                int value;
                try
                {
                    value = await reader.ReadAsync();
                }
                catch (Stc.ChannelClosedException closed)
                {
                    Stopped(closed.InnerException, "pool ReadAsync");
                    return;
                }

                Received(value, before, "pool ReadAsync");
            }
        });
        Task waitThenTry = Task.Run(async () =>
        {
            try
            {
                while (await reader.WaitToReadAsync())
                {
                    bool before = completion.IsCompleted;
                    if (reader.TryRead(out int value))
                    {
                        Received(value, before, "pool WaitToRead+TryRead");
                    }
                }

                problems.Enqueue("WaitToReadAsync answered false on a channel closed with an error");
            }
            catch (FormatException e)
            {
                Stopped(e, "pool WaitToRead+TryRead"); // STC's rule: the readiness wait throws the error itself
            }
        });

        var threads = new List<Thread>
        {
            new(() => a.Run()) { IsBackground = true, Name = "scheduler A" },
            new(() => b.Run()) { IsBackground = true, Name = "scheduler B" },
            new(() =>
            {
                for (int i = 0; i < PerProducer; i++)
                {
                    int value = (3 * PerProducer) + i + 1;
                    try
                    {
                        c.Send(value);
                    }
                    catch (ChannelClosedException closed)
                    {
                        failed.Add(value);
                        Stopped(closed.InnerException, "thread Send");
                        return;
                    }

                    sent.Add(value);
                    Interlocked.Increment(ref sentCount);
                }
            })
            { IsBackground = true, Name = "blocking sender" },
            new(() =>
            {
                while (true)
                {
                    bool before = completion.IsCompleted;
                    try
                    {
                        Received(c.Receive(), before, "thread Receive");
                    }
                    catch (ChannelClosedException closed)
                    {
                        Stopped(closed.InnerException, "thread Receive");
                        return;
                    }
                }
            })
            { IsBackground = true, Name = "blocking receiver" },
            new(() =>
            {
                // The close lands mid-stream: after a seeded number of completed sends (or once every producer is done).
                RunningScheduler.WaitUntil(() => Volatile.Read(ref sentCount) >= Math.Min(closeAfter, 4 * PerProducer), "the close point");
                c.Close(error);
            })
            { IsBackground = true, Name = "closer" },
        };
        foreach (Thread t in threads)
        {
            t.Start();
        }

        foreach (Thread t in threads)
        {
            Assert.True(t.Join(RunningScheduler.Guard), $"hang guard: {t.Name} (seed {seed})");
        }

        Assert.True(Task.WhenAll(readAsync, waitThenTry).Wait(RunningScheduler.Guard), $"hang guard: the pool consumers (seed {seed})");
        Assert.True(((IAsyncResult)completion).AsyncWaitHandle.WaitOne(RunningScheduler.Guard), $"hang guard: Completion never completed (seed {seed})");
        Assert.Empty(problems);
        Assert.True(completion.IsFaulted);
        Assert.Same(error, completion.Exception!.InnerException);
        Assert.Equal(0, c.Count);

        int[] got = [.. received];
        Array.Sort(got);
        int[] delivered = [.. sent];
        Array.Sort(delivered);
        Assert.True(got.Length == got.Distinct().Count(), $"an item was received twice (seed {seed})");
        Assert.Equal(delivered, got); // every completed send arrived once, and nothing else did
        Assert.Empty(failed.Intersect(received)); // a failed send's item never arrives
        Assert.Equal(4 * PerProducer, sent.Count + failed.Count + Unattempted(sent, failed));
    }

    // Producers stop at their first failure: the values after it were never attempted.
    private static int Unattempted(ConcurrentBag<int> sent, ConcurrentBag<int> failed)
    {
        int unattempted = 0;
        for (int id = 0; id < 4; id++)
        {
            int attempted = sent.Count(v => (v - 1) / PerProducer == id) + failed.Count(v => (v - 1) / PerProducer == id);
            unattempted += PerProducer - attempted;
        }

        return unattempted;
    }
}
