using System.Diagnostics;
using BenchmarkDotNet.Attributes;

namespace Tasklets.Benchmarks;

// BenchmarkDotNet suites for the coordination primitives (src/Tasklets/Sync), with their .NET counterparts as
// baselines in the same class so that they are measured in the same run. Each invocation runs a whole workload of N
// operations; OperationsPerInvoke makes the figures per operation.

/// <summary>An uncontended semaphore: WaitAsync (a free permit) then Release, one op = one pair.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class SemaphoreUncontended
{
    private const int N = 100_000;

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan Tasklets() => Scheduler.Run(async () =>
    {
        var sem = new AsyncSemaphore(1, 1);
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            await sem.WaitAsync();
            sem.Release();
        }

        return Stopwatch.GetElapsedTime(start);
    });

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public TimeSpan SemaphoreSlim() => SingleThreadContext.Run(async () =>
    {
        using var sem = new SemaphoreSlim(1, 1);
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            await sem.WaitAsync();
            sem.Release();
        }

        return Stopwatch.GetElapsedTime(start);
    });
}

/// <summary>
/// An event: <c>Uncontended</c> is Set, WaitAsync (completes at once), Reset on one tasklet; <c>PingPong</c> is two
/// tasklets waking each other through two events, one op = one round trip (two parks and two wake-ups).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class EventSetWait
{
    private const int N = 100_000;

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan TaskletsUncontended() => Scheduler.Run(async () =>
    {
        var ev = new AsyncManualResetEvent();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            ev.Set();
            await ev.WaitAsync();
            ev.Reset();
        }

        return Stopwatch.GetElapsedTime(start);
    });

    /// <summary>The usual async event: a TaskCompletionSource per Reset (what Nito-style events do).</summary>
    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public TimeSpan TcsUncontended() => SingleThreadContext.Run(async () =>
    {
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            tcs.SetResult();
            await tcs.Task;
        }

        return Stopwatch.GetElapsedTime(start);
    });

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan TaskletsPingPong() => Scheduler.Run(async () =>
    {
        var ping = new AsyncManualResetEvent();
        var pong = new AsyncManualResetEvent();
        Tasklet echo = Tasklet.Go(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                await ping.WaitAsync();
                ping.Reset();
                pong.Set();
            }
        });
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            ping.Set();
            await pong.WaitAsync();
            pong.Reset();
        }

        await echo;
        return Stopwatch.GetElapsedTime(start);
    });

    /// <summary>The same round trip with TaskCompletionSource pairs on one thread.</summary>
    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan TcsPingPong() => SingleThreadContext.Run(async () =>
    {
        var ping = new TaskCompletionSource();
        var pong = new TaskCompletionSource();
        Task echo = Echo();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < N; i++)
        {
            TaskCompletionSource p = pong;
            ping.SetResult();
            await p.Task;
        }

        await echo;
        return Stopwatch.GetElapsedTime(start);

        async Task Echo()
        {
            for (int i = 0; i < N; i++)
            {
                await ping.Task;
                ping = new TaskCompletionSource();
                TaskCompletionSource p = pong;
                pong = new TaskCompletionSource();
                p.SetResult();
            }
        }
    });
}

/// <summary>
/// Go's WaitGroup pattern with 1,000 parties, one op = one round: Add(1000), 1,000 parties call Done, one WaitAsync.
/// <c>TaskletsSpawn</c> spawns 1,000 tasklets per round (their spawn cost included); <c>TaskletsReused</c> keeps 1,000
/// tasklets that an <see cref="AsyncBarrier"/> releases each round (the steady state: no allocation).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class WaitGroup1000
{
    private const int Parties = 1_000;
    private const int Rounds = 100;

    [Benchmark(OperationsPerInvoke = Rounds)]
    public TimeSpan TaskletsSpawn() => Scheduler.Run(async () =>
    {
        var group = new WaitGroup();
        Func<Task> done = () =>
        {
            group.Done();
            return Task.CompletedTask;
        };
        long start = Stopwatch.GetTimestamp();
        for (int round = 0; round < Rounds; round++)
        {
            group.Add(Parties);
            for (int i = 0; i < Parties; i++)
            {
                _ = Tasklet.Go(done);
            }

            await group.WaitAsync();
        }

        return Stopwatch.GetElapsedTime(start);
    });

    [Benchmark(OperationsPerInvoke = Rounds)]
    public TimeSpan TaskletsReused() => Scheduler.Run(async () =>
    {
        var group = new WaitGroup();
        var go = new AsyncBarrier(Parties + 1);
        for (int i = 0; i < Parties; i++)
        {
            _ = Tasklet.Go(async () =>
            {
                for (int round = 0; round < Rounds; round++)
                {
                    await go.SignalAndWaitAsync();
                    group.Done();
                }
            });
        }

        long start = Stopwatch.GetTimestamp();
        for (int round = 0; round < Rounds; round++)
        {
            group.Add(Parties);
            await go.SignalAndWaitAsync();
            await group.WaitAsync();
        }

        return Stopwatch.GetElapsedTime(start);
    });

    [Benchmark(Baseline = true, OperationsPerInvoke = Rounds)]
    public TimeSpan TaskWhenAllTaskRun()
    {
        var tasks = new Task[Parties];
        Action empty = static () => { };
        long start = Stopwatch.GetTimestamp();
        for (int round = 0; round < Rounds; round++)
        {
            for (int i = 0; i < Parties; i++)
            {
                tasks[i] = Task.Run(empty);
            }

            Task.WhenAll(tasks).Wait();
        }

        return Stopwatch.GetElapsedTime(start);
    }

    [Benchmark(OperationsPerInvoke = Rounds)]
    public TimeSpan CountdownEventThreadPool()
    {
        using var countdown = new CountdownEvent(Parties);
        long start = Stopwatch.GetTimestamp();
        for (int round = 0; round < Rounds; round++)
        {
            countdown.Reset(Parties);
            for (int i = 0; i < Parties; i++)
            {
                ThreadPool.UnsafeQueueUserWorkItem(static c => c.Signal(), countdown, preferLocal: false);
            }

            countdown.Wait();
        }

        return Stopwatch.GetElapsedTime(start);
    }
}
