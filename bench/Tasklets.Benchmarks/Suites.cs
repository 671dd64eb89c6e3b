using BenchmarkDotNet.Attributes;

namespace Tasklets.Benchmarks;

// BenchmarkDotNet suites (run with `-- --bdn`), named after Go's runtime benchmarks so the tables line up.
// Each invocation runs a whole workload of N operations; OperationsPerInvoke makes the figures per operation.
// Tasklets and the baselines of the same workload sit in one class, so they are measured in the same run.

/// <summary>goless chan_sync / chan_buff / chan_async: producer to consumer, one op = one item.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class ChanProdCons
{
    private const int N = 100_000;

    [Params(0, 1000, -1)]
    public int Capacity { get; set; }

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan Tasklets() => Workloads.TaskletsChannel(Capacity, N).Elapsed;

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public TimeSpan StcTaskRun() => Workloads.StcPool(Capacity, N).Elapsed;

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan StcSingleThread() => Workloads.StcSingleThread(Capacity, N).Elapsed;
}

/// <summary>Go's ChanSync shape: an unbuffered round trip between two tasklets, one op = one round trip.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class ChanPingPong
{
    private const int N = 100_000;

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan Tasklets() => Workloads.TaskletsPingPong(N).Elapsed;
}

/// <summary>goless select and select_default, one op = one select.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class SelectGoless
{
    private const int N = 50_000;

    [Params(false, true)]
    public bool WithDefault { get; set; }

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan Tasklets() => Workloads.TaskletsSelect(N, WithDefault).Elapsed;

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public TimeSpan StcWhenAny() => Workloads.StcSelect(N, WithDefault).Elapsed;
}

/// <summary>Spawn + run + finish of an empty tasklet, a yield switch, and a checkpoint, against plain async and Task.Run.</summary>
[MemoryDiagnoser]
[ShortRunJob]
public class SchedulerRows
{
    private const int N = 100_000;

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan SpawnTasklets() => Workloads.TaskletsSpawn(N).Elapsed;

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public TimeSpan SpawnTaskRun() => Workloads.TaskRunSpawn(N).Elapsed;

    [Benchmark(OperationsPerInvoke = N)]
    public TimeSpan SpawnAsyncSingleThread() => Workloads.AsyncSpawnSingleThread(N).Elapsed;

    [Benchmark(OperationsPerInvoke = 2 * N)]
    public TimeSpan YieldTasklets() => Workloads.TaskletsYieldPing(N).Elapsed;

    [Benchmark(OperationsPerInvoke = 2 * N)]
    public TimeSpan YieldAsyncSingleThread() => Workloads.AsyncYieldPingSingleThread(N).Elapsed;

    /// <summary>A checkpoint that gives way to nobody (a timer an hour away pending): issue 13's "one cheap check".</summary>
    [Benchmark(OperationsPerInvoke = 10 * N)]
    public TimeSpan CheckpointNothingWaiting() => IoPriority.Checkpoints(10 * N).Elapsed;
}
