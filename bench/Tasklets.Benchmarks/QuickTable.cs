using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;

namespace Tasklets.Benchmarks;

/// <summary>
/// The README's main job: goless's benchmark workloads and the scheduler rows, Tasklets next to
/// System.Threading.Channels measured in the same run, as a Markdown table. Median of <see cref="Runs"/> runs after
/// a warm-up; steady-state sizes as in anchors-perf.md.
/// </summary>
internal static class QuickTable
{
    public const int Runs = 5;
    private const int WarmUpRuns = 50;
    private static readonly TimeSpan MinWarmUp = TimeSpan.FromMilliseconds(600);
    private const int ChannelOps = 1_000_000;
    private const int SelectOps = 200_000;
    private const int BlockedTasklets = 1_000_000;

    public static void Print(TextWriter output)
    {
        output.WriteLine("# Tasklets quick benchmark table");
        output.WriteLine();
        output.WriteLine($"Machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.ProcessArchitecture}.");
        output.WriteLine($"Each figure: median of {Runs} runs after at least {WarmUpRuns} small warm-up runs and {MinWarmUp.TotalMilliseconds:0} ms of them (so the timed code is tier-1 JIT code); ns/op and allocated B/op of the timed loop. Ratio = baseline ns / Tasklets ns.");
        output.WriteLine();
        output.WriteLine("| workload | Tasklets ns/op | B/op | baseline | baseline ns/op | B/op | ratio |");
        output.WriteLine("|---|---:|---:|---|---:|---:|---:|");

        Row(output, ChannelOps, "chan_sync (unbuffered)", n => Workloads.TaskletsChannel(0, n),
            ("STC bounded(1), Task.Run", n => Workloads.StcPool(0, n)),
            ("STC bounded(1), one thread", n => Workloads.StcSingleThread(0, n)));
        Row(output, ChannelOps, "chan_buff (capacity 1000)", n => Workloads.TaskletsChannel(1000, n),
            ("STC bounded(1000), Task.Run", n => Workloads.StcPool(1000, n)),
            ("STC bounded(1000), one thread", n => Workloads.StcSingleThread(1000, n)));
        Row(output, ChannelOps, "chan_async (unbounded)", n => Workloads.TaskletsChannel(-1, n),
            ("STC unbounded, Task.Run", n => Workloads.StcPool(-1, n)),
            ("STC unbounded, one thread", n => Workloads.StcSingleThread(-1, n)));
        Row(output, SelectOps, "select (4 cases, blocking)", n => Workloads.TaskletsSelect(n, withDefault: false),
            ("STC TryWrite/TryRead + WhenAny, Task.Run", n => Workloads.StcSelect(n, withDefault: false)));
        Row(output, SelectOps, "select_default (4 cases + default)", n => Workloads.TaskletsSelect(n, withDefault: true),
            ("STC TryWrite/TryRead chain", n => Workloads.StcSelect(n, withDefault: true)));
        Row(output, ChannelOps, "ping-pong round trip (unbuffered)", n => Workloads.TaskletsPingPong(n / 2));
        Row(output, ChannelOps, "spawn + run + finish (empty)", n => Workloads.TaskletsSpawn(n),
            ("Task.Run", n => Workloads.TaskRunSpawn(n)),
            ("async Task, one-thread context", n => Workloads.AsyncSpawnSingleThread(n)));
        Row(output, ChannelOps, "yield switch (two tasklets)", n => Workloads.TaskletsYieldPing(n),
            ("Task.Yield, one-thread context", n => Workloads.AsyncYieldPingSingleThread(n)));

        output.WriteLine();
        output.WriteLine($"Memory per tasklet blocked on a receive ({BlockedTasklets:N0} tasklets on one channel, retained bytes after a full GC): {F(Workloads.BlockedTaskletBytes(BlockedTasklets))} B (a Go goroutine: 2.6–4.2 KB).");

        output.WriteLine();
        output.WriteLine("Measured elsewhere on the same kind of machine (2 cores, ../shared/reference/anchors-perf.md, steady-state medians), not in this run:");
        output.WriteLine();
        output.WriteLine("| workload | Go 1.19 GOMAXPROCS=1 | Go 1.19 GOMAXPROCS=2 | goless on PyPy (stackless) |");
        output.WriteLine("|---|---:|---:|---:|");
        output.WriteLine("| chan_sync | 99.7 | 104.1 | 353.2 |");
        output.WriteLine("| chan_buff | 30.3 | 31.0 | 362.1 |");
        output.WriteLine("| chan_async | 34.4 | 37.9 | 349.9 |");
        output.WriteLine("| select | 161.4 | 167.3 | 497.1 |");
        output.WriteLine("| select_default | 39.8 | 42.5 | 35.5 |");
        output.WriteLine("| ping-pong one way (ChanSync) | 97.5 | 101.5 | – |");
        output.WriteLine("| spawn + run | 921.9 | 204.2 | – |");
    }

    private static void Row(TextWriter output, int size, string name, Func<int, Sample> tasklets, params (string Name, Func<int, Sample> Run)[] baselines)
    {
        Sample ours = Median(tasklets, size);
        if (baselines.Length == 0)
        {
            output.WriteLine($"| {name} | {F(ours.NsPerOp)} | {F(ours.BytesPerOp)} | – | – | – | – |");
            return;
        }

        foreach ((string baselineName, Func<int, Sample> run) in baselines)
        {
            Sample theirs = Median(run, size);
            output.WriteLine($"| {name} | {F(ours.NsPerOp)} | {F(ours.BytesPerOp)} | {baselineName} | {F(theirs.NsPerOp)} | {F(theirs.BytesPerOp)} | {(theirs.NsPerOp / ours.NsPerOp).ToString("0.0", CultureInfo.InvariantCulture)}x |");
        }
    }

    private static Sample Median(Func<int, Sample> run, int size)
    {
        // Warm-up: each workload's timed loop lives in one async method that a run calls once, so it takes
        // WarmUpRuns small runs before tiered compilation has promoted it to optimized (tier-1, PGO) code. A count
        // alone is not enough: tiering waits while new methods are still being jitted (each row brings new ones),
        // and select_default was measured on tier-0 code (~110 ns instead of ~12) until the warm-up also lasted
        // long enough in time.
        long warmUpStart = Stopwatch.GetTimestamp();
        for (int i = 0; i < WarmUpRuns || Stopwatch.GetElapsedTime(warmUpStart) < MinWarmUp; i++)
        {
            run(Math.Max(20_000, size / 100));
        }

        var samples = new Sample[Runs];
        for (int i = 0; i < Runs; i++)
        {
            samples[i] = run(size);
        }

        Array.Sort(samples, static (a, b) => a.NsPerOp.CompareTo(b.NsPerOp));
        return samples[Runs / 2];
    }

    private static string F(double value) => value.ToString(value < 10 ? "0.0" : "0", CultureInfo.InvariantCulture);
}
