using System.Diagnostics;
using System.Threading.Channels;
using BenchmarkDotNet.Attributes;
using StcChannel = System.Threading.Channels.Channel;

namespace Tasklets.Benchmarks;

/// <summary>
/// Issue 17's cross-thread handoff: a producer and a consumer on two threads, one op = one item. Tasklets: a producer
/// tasklet on scheduler A and a consumer tasklet on scheduler B, each scheduler inside Run on a thread of its own, so
/// that every wake-up crosses threads through the other scheduler's inbox. The baseline: System.Threading.Channels
/// between two dedicated threads that block on the channel (bounded, <see cref="BoundedChannelFullMode.Wait"/>, single
/// reader and single writer; STC has no rendezvous, so the unbuffered row maps to bounded(1), as chan_sync does).
/// </summary>
/// <remarks>
/// The consumer's receives are timed (the producer's set-up and its thread's start are outside the loop); B/op is the
/// process's allocation over the timed loop (<see cref="GC.GetTotalAllocatedBytes(bool)"/>: both threads allocate).
/// </remarks>
internal static class CrossSchedulerWorkloads
{
    /// <summary>Producer tasklet on one scheduler, consumer tasklet on another, each scheduler on its own thread. capacity 0 or n.</summary>
    public static Sample Tasklets(int capacity, int n)
    {
        var channel = new Channel<int>(capacity);
        using var producer = new Scheduler();
        using var consumer = new Scheduler();
        _ = producer.Go(async () =>
        {
            for (int i = 0; i < n; i++)
            {
                await channel.SendAsync(i);
            }

            channel.Close();
        }, "producer");
        Tasklet<Sample> timed = consumer.Go(async () =>
        {
            long allocated = GC.GetTotalAllocatedBytes(precise: true);
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < n; i++)
            {
                int item = await channel.ReceiveAsync();
                if (item != i)
                {
                    throw new InvalidOperationException($"Received {item}, expected {i}.");
                }
            }

            return new Sample(Stopwatch.GetElapsedTime(start), GC.GetTotalAllocatedBytes(precise: true) - allocated, n);
        }, "consumer");

        Exception? producerFailure = null;
        var thread = new Thread(() =>
        {
            try
            {
                producer.Run();
            }
            catch (Exception e)
            {
                producerFailure = e;
            }
        })
        {
            IsBackground = true,
            Name = "producer scheduler",
        };
        thread.Start();
        consumer.Run();
        thread.Join();
        if (producerFailure is not null)
        {
            throw new InvalidOperationException("The producer's scheduler failed.", producerFailure);
        }

        return timed.Result;
    }

    /// <summary>STC bounded(max(1, capacity)) between two dedicated threads, each blocking on the channel's ValueTask.</summary>
    public static Sample StcDedicatedThreads(int capacity, int n)
    {
        System.Threading.Channels.Channel<int> channel = StcChannel.CreateBounded<int>(new BoundedChannelOptions(Math.Max(1, capacity))
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = true,
        });
        var thread = new Thread(() =>
        {
            ChannelWriter<int> writer = channel.Writer;
            for (int i = 0; i < n; i++)
            {
                ValueTask write = writer.WriteAsync(i);
                if (!write.IsCompletedSuccessfully)
                {
                    write.AsTask().GetAwaiter().GetResult(); // a blocking wait: spins briefly, then sleeps on an event
                }
            }

            writer.Complete();
        })
        {
            IsBackground = true,
            Name = "STC producer",
        };
        thread.Start();

        ChannelReader<int> reader = channel.Reader;
        long allocated = GC.GetTotalAllocatedBytes(precise: true);
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            ValueTask<int> read = reader.ReadAsync();
            int item = read.IsCompletedSuccessfully ? read.Result : read.AsTask().GetAwaiter().GetResult();
            if (item != i)
            {
                throw new InvalidOperationException($"Received {item}, expected {i}.");
            }
        }

        var sample = new Sample(Stopwatch.GetElapsedTime(start), GC.GetTotalAllocatedBytes(precise: true) - allocated, n);
        thread.Join();
        return sample;
    }
}

/// <summary>The cross-thread handoff (issue 17), unbuffered and capacity 64, Tasklets beside STC in the same run; one op = one item.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class CrossScheduler
{
    private const int N = 20_000;

    [Params(0, 64)]
    public int Capacity { get; set; }

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan Tasklets() => CrossSchedulerWorkloads.Tasklets(Capacity, N).Elapsed;

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public TimeSpan StcDedicatedThreads() => CrossSchedulerWorkloads.StcDedicatedThreads(Capacity, N).Elapsed;
}
