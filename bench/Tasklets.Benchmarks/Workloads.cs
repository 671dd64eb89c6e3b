using System.Diagnostics;
using StcChannel = System.Threading.Channels.Channel;

namespace Tasklets.Benchmarks;

/// <summary>One timed run: elapsed time and bytes allocated on the measuring thread (or process-wide for pool runs).</summary>
internal readonly record struct Sample(TimeSpan Elapsed, long Allocated, long Operations)
{
    public double NsPerOp => Elapsed.TotalNanoseconds / Operations;

    public double BytesPerOp => (double)Allocated / Operations;
}

/// <summary>
/// The workloads of goless's benchmark.py (chan_sync, chan_buff, chan_async, select, select_default) and the
/// scheduler rows, for Tasklets and for System.Threading.Channels used the usual ways. Each returns one timed sample
/// of the measured loop only (set-up and the producer's final close are outside it, as in benchmark.py).
/// </summary>
internal static class Workloads
{
    // ---------------------------------------------------------------- Tasklets

    /// <summary>A producer tasklet sends n values and closes; main's n receives are timed. capacity: 0, n, or -1 unbounded.</summary>
    public static Sample TaskletsChannel(int capacity, int n) => Scheduler.Run(async () =>
    {
        Channel<int> c = capacity < 0 ? Channel<int>.CreateUnbounded() : new Channel<int>(capacity);
        _ = Tasklet.Go(async () =>
        {
            for (int i = 0; i < n; i++)
            {
                await c.SendAsync(i);
            }

            c.Close();
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            await c.ReceiveAsync();
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    });

    /// <summary>goless select: one unbuffered channel, a partner looping {send; receive}, n selects over [send, recv, send, recv].</summary>
    public static Sample TaskletsSelect(int n, bool withDefault) => Scheduler.Run(async () =>
    {
        var c = new Channel<int>();
        _ = Tasklet.Go(async () =>
        {
            while (true)
            {
                await c.SendAsync(0);
                await c.ReceiveAsync();
            }
        });
        SendCase<int> send1 = c.SendCase(1), send2 = c.SendCase(1);
        ReceiveCase<int> receive1 = c.ReceiveCase(), receive2 = c.ReceiveCase();
        int defaults = 0;
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            if (withDefault)
            {
                if (Select.Try(send1, receive1, send2, receive2) < 0)
                {
                    defaults++;
                }
            }
            else
            {
                await Select.WaitAsync(send1, receive1, send2, receive2);
            }
        }

        var sample = new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
        if (withDefault && defaults != n)
        {
            throw new InvalidOperationException($"select_default: {n - defaults} selects did not take the default.");
        }

        return sample; // main ends: Scheduler.Run kills the partner
    });

    /// <summary>
    /// Memory per tasklet blocked on a receive (DESIGN.md's row, Go's goroutine for comparison): n tasklets on one
    /// scheduler each await ReceiveAsync on one shared channel; bytes retained after a full collection, per tasklet.
    /// Everything a blocked tasklet holds counts: the tasklet, its waiter, the compiler's state-machine box, the
    /// queue node, and its share of the scheduler's lists. Then the channel is closed and the tasklets end.
    /// </summary>
    public static double BlockedTaskletBytes(int n)
    {
        var scheduler = new Scheduler();
        var channel = new Channel<int>();
        // The delegate type an async lambda written inline in Tasklet.Go binds to (the library's builder, issue 17),
        // held in a variable so that the n spawns share one delegate.
        Func<TaskletTask> body = async () =>
        {
            try
            {
                await channel.ReceiveAsync();
            }
            catch (ChannelClosedException)
            {
            }
        };
        long before = GC.GetTotalMemory(forceFullCollection: true);

        // Spawned by a tasklet, as a server would: a spawn from outside goes through the scheduler's inbox, whose
        // buffer would be counted too.
        _ = scheduler.Go(() =>
        {
            for (int i = 0; i < n; i++)
            {
                _ = Tasklet.Go(body);
            }

            return Task.CompletedTask;
        });
        scheduler.RunOnce(); // the spawner
        scheduler.RunOnce(); // each tasklet runs to its receive and parks
        long after = GC.GetTotalMemory(forceFullCollection: true);
        if (channel.Balance != -n)
        {
            throw new InvalidOperationException($"Expected {n} blocked receivers, found {-channel.Balance}.");
        }

        channel.Close();
        scheduler.Run();
        return (double)(after - before) / n;
    }

    /// <summary>Spawn + run + finish of n empty tasklets, in batches of 10,000 (main yields once per batch).</summary>
    public static Sample TaskletsSpawn(int n) => Scheduler.Run(async () =>
    {
        Func<Task> empty = static () => Task.CompletedTask;
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int done = 0; done < n; done += 10_000)
        {
            for (int i = 0; i < 10_000; i++)
            {
                _ = Tasklet.Go(empty);
            }

            await Tasklet.Yield(); // FIFO: the whole batch runs before main resumes
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    });

    /// <summary>Two tasklets yield to each other n times each; one op = one switch.</summary>
    public static Sample TaskletsYieldPing(int n) => Scheduler.Run(async () =>
    {
        Tasklet other = Tasklet.Go(async () =>
        {
            for (int i = 0; i < n; i++)
            {
                await Tasklet.Yield();
            }
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            await Tasklet.Yield();
        }

        await other;
        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, 2L * n);
    });

    /// <summary>Unbuffered ping-pong: one op = one round trip (two handoffs).</summary>
    public static Sample TaskletsPingPong(int n) => Scheduler.Run(async () =>
    {
        var ping = new Channel<int>();
        var pong = new Channel<int>();
        _ = Tasklet.Go(async () =>
        {
            for (int i = 0; i < n; i++)
            {
                await pong.SendAsync(await ping.ReceiveAsync());
            }
        });
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            await ping.SendAsync(i);
            await pong.ReceiveAsync();
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    });

    // ---------------------------------------------------------------- System.Threading.Channels

    private static System.Threading.Channels.Channel<int> StcChannelOf(int capacity) => capacity switch
    {
        < 0 => StcChannel.CreateUnbounded<int>(),
        0 => StcChannel.CreateBounded<int>(1), // STC has no rendezvous: bounded(1), as in the peer measurements (docs/performance.md)
        _ => StcChannel.CreateBounded<int>(capacity),
    };

    /// <summary>STC "the usual way": producer started with Task.Run, the timed consumer loop on the thread pool.</summary>
    public static Sample StcPool(int capacity, int n) => Task.Run(async () =>
    {
        var c = StcChannelOf(capacity);
        _ = Task.Run(async () =>
        {
            for (int i = 0; i < n; i++)
            {
                await c.Writer.WriteAsync(i);
            }

            c.Writer.Complete();
        });
        long allocated = GC.GetTotalAllocatedBytes(true);
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            await c.Reader.ReadAsync();
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetTotalAllocatedBytes(true) - allocated, n);
    }).GetAwaiter().GetResult();

    /// <summary>STC on one thread: the producer is posted (not run inline) to a single-threaded context.</summary>
    public static Sample StcSingleThread(int capacity, int n) => SingleThreadContext.Run(async () =>
    {
        var c = StcChannelOf(capacity);
        SynchronizationContext.Current!.Post(
            async _ =>
            {
                for (int i = 0; i < n; i++)
                {
                    await c.Writer.WriteAsync(i);
                }

                c.Writer.Complete();
            },
            null);
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            await c.Reader.ReadAsync();
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    });

    /// <summary>
    /// The usual hand-written .NET select over STC: try each case in order with TryWrite/TryRead; with a default,
    /// return; otherwise await Task.WhenAny over WaitToWriteAsync/WaitToReadAsync(...).AsTask() and retry. The
    /// partner runs with Task.Run; one channel cannot carry both directions, so c is split in two bounded(1).
    /// </summary>
    public static Sample StcSelect(int n, bool withDefault) => Task.Run(async () =>
    {
        var toPartner = StcChannel.CreateBounded<int>(1);
        var fromPartner = StcChannel.CreateBounded<int>(1);
        using var stop = new CancellationTokenSource();
        if (!withDefault)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    while (true)
                    {
                        await fromPartner.Writer.WriteAsync(0, stop.Token);
                        await toPartner.Reader.ReadAsync(stop.Token);
                    }
                }
                catch (OperationCanceledException)
                {
                }
            });
        }

        int defaults = 0;
        long allocated = GC.GetTotalAllocatedBytes(true);
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            while (true)
            {
                if (toPartner.Writer.TryWrite(1) || fromPartner.Reader.TryRead(out _))
                {
                    break;
                }

                if (withDefault)
                {
                    defaults++;
                    break;
                }

                await Task.WhenAny(toPartner.Writer.WaitToWriteAsync().AsTask(), fromPartner.Reader.WaitToReadAsync().AsTask());
            }
        }

        var sample = new Sample(Stopwatch.GetElapsedTime(start), GC.GetTotalAllocatedBytes(true) - allocated, n);
        stop.Cancel();
        if (withDefault && defaults < n - 1)
        {
            throw new InvalidOperationException("STC select_default: expected (almost) every select to take the default.");
        }

        return sample;
    }).GetAwaiter().GetResult();

    // ---------------------------------------------------------------- plain async baselines

    /// <summary>n empty async methods started on a single-threaded context, each posted, then awaited.</summary>
    public static Sample AsyncSpawnSingleThread(int n) => SingleThreadContext.Run(async () =>
    {
        static async Task Empty() => await Task.Yield();
        var batch = new Task[10_000];
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int done = 0; done < n; done += batch.Length)
        {
            for (int i = 0; i < batch.Length; i++)
            {
                batch[i] = Empty();
            }

            await Task.WhenAll(batch);
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    });

    /// <summary>n empty work items with Task.Run, awaited in batches.</summary>
    public static Sample TaskRunSpawn(int n)
    {
        var batch = new Task[10_000];
        Action empty = static () => { };
        long allocated = GC.GetTotalAllocatedBytes(true);
        long start = Stopwatch.GetTimestamp();
        for (int done = 0; done < n; done += batch.Length)
        {
            for (int i = 0; i < batch.Length; i++)
            {
                batch[i] = Task.Run(empty);
            }

            Task.WaitAll(batch);
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetTotalAllocatedBytes(true) - allocated, n);
    }

    /// <summary>Two async methods alternating with Task.Yield on a single-threaded context; one op = one switch.</summary>
    public static Sample AsyncYieldPingSingleThread(int n) => SingleThreadContext.Run(async () =>
    {
        static async Task Loop(int count)
        {
            for (int i = 0; i < count; i++)
            {
                await Task.Yield();
            }
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        await Task.WhenAll(Loop(n), Loop(n));
        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, 2L * n);
    });
}
