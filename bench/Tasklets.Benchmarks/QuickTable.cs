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
    private const int ChannelOps = 1_000_000;
    private const int SelectOps = 200_000;

    public static void Print(TextWriter output)
    {
        output.WriteLine("# Tasklets quick benchmark table");
        output.WriteLine();
        output.WriteLine($"Machine: {Environment.ProcessorCount} cores, {RuntimeInformation.OSDescription}, {RuntimeInformation.FrameworkDescription}, {RuntimeInformation.ProcessArchitecture}.");
        output.WriteLine($"Each figure: median of {Runs} runs after a warm-up run; ns/op and allocated B/op of the timed loop. Ratio = baseline ns / Tasklets ns.");
        output.WriteLine();
        output.WriteLine("| workload | Tasklets ns/op | B/op | baseline | baseline ns/op | B/op | ratio |");
        output.WriteLine("|---|---:|---:|---|---:|---:|---:|");

        Row(output, "chan_sync (unbuffered)", () => Workloads.TaskletsChannel(0, ChannelOps),
            ("STC bounded(1), Task.Run", () => Workloads.StcPool(0, ChannelOps)),
            ("STC bounded(1), one thread", () => Workloads.StcSingleThread(0, ChannelOps)));
        Row(output, "chan_buff (capacity 1000)", () => Workloads.TaskletsChannel(1000, ChannelOps),
            ("STC bounded(1000), Task.Run", () => Workloads.StcPool(1000, ChannelOps)),
            ("STC bounded(1000), one thread", () => Workloads.StcSingleThread(1000, ChannelOps)));
        Row(output, "chan_async (unbounded)", () => Workloads.TaskletsChannel(-1, ChannelOps),
            ("STC unbounded, Task.Run", () => Workloads.StcPool(-1, ChannelOps)),
            ("STC unbounded, one thread", () => Workloads.StcSingleThread(-1, ChannelOps)));
        Row(output, "select (4 cases, blocking)", () => Workloads.TaskletsSelect(SelectOps, withDefault: false),
            ("STC TryWrite/TryRead + WhenAny, Task.Run", () => Workloads.StcSelect(SelectOps, withDefault: false)));
        Row(output, "select_default (4 cases + default)", () => Workloads.TaskletsSelect(SelectOps, withDefault: true),
            ("STC TryWrite/TryRead chain", () => Workloads.StcSelect(SelectOps, withDefault: true)));
        Row(output, "ping-pong round trip (unbuffered)", () => Workloads.TaskletsPingPong(ChannelOps / 2));
        Row(output, "spawn + run + finish (empty)", () => Workloads.TaskletsSpawn(ChannelOps),
            ("Task.Run", () => Workloads.TaskRunSpawn(ChannelOps)),
            ("async Task, one-thread context", () => Workloads.AsyncSpawnSingleThread(ChannelOps)));
        Row(output, "yield switch (two tasklets)", () => Workloads.TaskletsYieldPing(ChannelOps),
            ("Task.Yield, one-thread context", () => Workloads.AsyncYieldPingSingleThread(ChannelOps)));

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

    private static void Row(TextWriter output, string name, Func<Sample> tasklets, params (string Name, Func<Sample> Run)[] baselines)
    {
        Sample ours = Median(tasklets);
        if (baselines.Length == 0)
        {
            output.WriteLine($"| {name} | {F(ours.NsPerOp)} | {F(ours.BytesPerOp)} | – | – | – | – |");
            return;
        }

        foreach ((string baselineName, Func<Sample> run) in baselines)
        {
            Sample theirs = Median(run);
            output.WriteLine($"| {name} | {F(ours.NsPerOp)} | {F(ours.BytesPerOp)} | {baselineName} | {F(theirs.NsPerOp)} | {F(theirs.BytesPerOp)} | {(theirs.NsPerOp / ours.NsPerOp).ToString("0.0", CultureInfo.InvariantCulture)}x |");
        }
    }

    private static Sample Median(Func<Sample> run)
    {
        run(); // warm-up: tiered JIT, pools
        var samples = new Sample[Runs];
        for (int i = 0; i < Runs; i++)
        {
            samples[i] = run();
        }

        Array.Sort(samples, static (a, b) => a.NsPerOp.CompareTo(b.NsPerOp));
        return samples[Runs / 2];
    }

    private static string F(double value) => value.ToString(value < 10 ? "0.0" : "0", CultureInfo.InvariantCulture);
}
