using BenchmarkDotNet.Attributes;

namespace Tasklets.Benchmarks;

// AsyncLock suites (run with `-- --bdn --filter '*Lock*'`), beside SemaphoreSlim, the usual .NET async lock, in the
// same run. Each invocation runs a whole workload of N acquisitions; OperationsPerInvoke makes the figures per one.

/// <summary>An uncontended acquire + release inside one tasklet (Go's BenchmarkMutexUncontended shape).</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class LockUncontended
{
    private const int N = 1_000_000;

    [Benchmark(OperationsPerInvoke = N)]
    public void Tasklets() => Scheduler.Run(async () =>
    {
        var l = new AsyncLock();
        for (int i = 0; i < N; i++)
        {
            using (await l.LockAsync())
            {
            }
        }
    });

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void SemaphoreSlimAsync() => Task.Run(async () =>
    {
        using var gate = new SemaphoreSlim(1, 1);
        for (int i = 0; i < N; i++)
        {
            await gate.WaitAsync();
            gate.Release();
        }
    }).GetAwaiter().GetResult();
}

/// <summary>
/// A contended handoff: two parties take turns, each holding the lock across a yield, so every acquisition waits and
/// is handed the lock by the other's release. One op = one acquisition. Tasklets: two tasklets on one scheduler.
/// SemaphoreSlim: two async loops on the thread pool.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class LockContendedHandoff
{
    private const int N = 100_000;

    [Benchmark(OperationsPerInvoke = 2 * N)]
    public void Tasklets() => Scheduler.Run(async () =>
    {
        var l = new AsyncLock();
        Tasklet other = Tasklet.Go(() => TakeTurnsAsync(l));
        await TakeTurnsAsync(l);
        await other;
    });

    [Benchmark(Baseline = true, OperationsPerInvoke = 2 * N)]
    public void SemaphoreSlimThreadPool()
    {
        using var gate = new SemaphoreSlim(1, 1);
        Task first = Task.Run(() => TakeTurnsAsync(gate));
        Task second = Task.Run(() => TakeTurnsAsync(gate));
        Task.WhenAll(first, second).GetAwaiter().GetResult();
    }

    private static async Task TakeTurnsAsync(AsyncLock l)
    {
        for (int i = 0; i < N; i++)
        {
            using (await l.LockAsync())
            {
                await Tasklet.Yield(); // the other party queues behind us and is handed the lock on release
            }
        }
    }

    private static async Task TakeTurnsAsync(SemaphoreSlim gate)
    {
        for (int i = 0; i < N; i++)
        {
            await gate.WaitAsync();
            try
            {
                await Task.Yield();
            }
            finally
            {
                gate.Release();
            }
        }
    }
}
