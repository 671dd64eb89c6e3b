using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using Beazley;

namespace Tasklets.Benchmarks;

/// <summary>
/// The README's main job: goless's benchmark workloads and the scheduler rows as Markdown tables, each row with the
/// min / median / max of its <see cref="Rounds"/> rounds, DESIGN.md's target and whether the median meets it, and the
/// peer figures of <see cref="PeerFigures"/>; then System.Threading.Channels measured in the same run, and the I/O
/// section. A header names the machine and warns when its load average exceeds the core count.
/// </summary>
/// <remarks>
/// Each figure is measured in a process of its own (this program, started with <see cref="MeasureArgument"/>), as
/// BenchmarkDotNet does: in one process the workloads share methods (the consumer loop, the channel's receive), and
/// tiered compilation optimises a shared method for the profile of the workload that ran first. chan_buff measured
/// 29 ns per item right after chan_sync in one process, and 17 ns on its own. The rounds of one figure run in its
/// process one after another, after the warm-up: the spread they show is the noise of the machine, not the one
/// between processes (which PGO's choices add to; docs/performance.md).
/// </remarks>
internal static class QuickTable
{
    /// <summary>The timed rounds of every row (the memory line's too), after the warm-up.</summary>
    public const int Rounds = 5;

    /// <summary>The first argument of a child process that measures one figure and prints it.</summary>
    public const string MeasureArgument = "--measure";

    private const int WarmUpRuns = 50;
    private static readonly TimeSpan MinWarmUp = TimeSpan.FromMilliseconds(600);
    private const int ChannelOps = 1_000_000;
    private const int SelectOps = 200_000;
    private const int BlockedTasklets = 1_000_000;
    private const int CrossOps = 100_000;
    private const int CrossWarmUpOps = 2_000;

    // Each row: Tasklets first, then its baselines. A child process is told a row and a column of this table.
    private static readonly Row[] s_rows =
    [
        new(QuickTableKeys.ChanSync, "chan_sync (unbuffered)", ChannelOps, n => Workloads.TaskletsChannel(0, n),
            ("STC bounded(1), Task.Run", n => Workloads.StcPool(0, n)),
            ("STC bounded(1), one thread", n => Workloads.StcSingleThread(0, n)),
            ("floor: ValueTask + IValueTaskSource (HandoffFloor.MinimalHandoff)", n => HandoffFloor.Timed(n, static k => MiniScheduler.Handoff(k, unbounded: false))),
            ("floor: own builder + own awaiter (HandoffFloor.OwnBuilderHandoff)", n => HandoffFloor.Timed(n, OwnBuilderScheduler.Handoff))),
        new(QuickTableKeys.ChanBuff, "chan_buff (capacity 1000)", ChannelOps, n => Workloads.TaskletsChannel(1000, n),
            ("STC bounded(1000), Task.Run", n => Workloads.StcPool(1000, n)),
            ("STC bounded(1000), one thread", n => Workloads.StcSingleThread(1000, n))),
        new(QuickTableKeys.ChanAsync, "chan_async (unbounded)", ChannelOps, n => Workloads.TaskletsChannel(-1, n),
            ("STC unbounded, Task.Run", n => Workloads.StcPool(-1, n)),
            ("STC unbounded, one thread", n => Workloads.StcSingleThread(-1, n))),
        new(QuickTableKeys.Select, "select (4 cases, blocking)", SelectOps, n => Workloads.TaskletsSelect(n, withDefault: false),
            ("STC TryWrite/TryRead + WhenAny, Task.Run", n => Workloads.StcSelect(n, withDefault: false))),
        new(QuickTableKeys.SelectDefault, "select_default (4 cases + default)", SelectOps, n => Workloads.TaskletsSelect(n, withDefault: true),
            ("STC TryWrite/TryRead chain", n => Workloads.StcSelect(n, withDefault: true))),
        new(QuickTableKeys.PingPong, "ping-pong round trip (unbuffered)", ChannelOps, n => Workloads.TaskletsPingPong(n / 2)),
        new(QuickTableKeys.Spawn, "spawn + run + finish (empty)", ChannelOps, n => Workloads.TaskletsSpawn(n),
            ("Task.Run", n => Workloads.TaskRunSpawn(n)),
            ("async Task, one-thread context", n => Workloads.AsyncSpawnSingleThread(n))),
        new(QuickTableKeys.Yield, "yield switch (two tasklets)", ChannelOps, n => Workloads.TaskletsYieldPing(n),
            ("Task.Yield, one-thread context", n => Workloads.AsyncYieldPingSingleThread(n))),
        new(QuickTableKeys.Checkpoint, "checkpoint, nothing waiting (a timer pending)", 10 * ChannelOps, n => IoPriority.Checkpoints(n)),

        // Issue 17: two threads. Smaller runs (a wake-up across threads costs microseconds, not nanoseconds) and
        // small warm-up runs, so that the four figures add seconds, not minutes, to the main job.
        new(QuickTableKeys.CrossScheduler, "cross-scheduler handoff (unbuffered, two schedulers on two threads)", CrossOps, n => CrossSchedulerWorkloads.Tasklets(0, n),
            ("STC bounded(1), two dedicated threads", n => CrossSchedulerWorkloads.StcDedicatedThreads(0, n))) { WarmUpSize = CrossWarmUpOps },
        new(QuickTableKeys.CrossSchedulerBuffered, "cross-scheduler handoff (capacity 64, two schedulers on two threads)", CrossOps, n => CrossSchedulerWorkloads.Tasklets(64, n),
            ("STC bounded(64), two dedicated threads", n => CrossSchedulerWorkloads.StcDedicatedThreads(64, n))) { WarmUpSize = CrossWarmUpOps },
    ];

    // Figures of the I/O section, each measured in a child process of its own too (negative rows).
    private const int BlockedBytesRow = -1;
    private const int SleepBesideCpuRow = -2;
    private const int RunForOvershootRow = -3;
    private const int SuspendedBytesRow = -4;
    private const int SuspendedMethods = 100_000;
    private const int BeazleyRowBase = -10; // -10 - scenario
    private const int BeazleyRounds = 3;
    private const int Sleeps = 2_000;
    private const int Frames = 500;
    private static readonly TimeSpan s_beazleyWarmUp = TimeSpan.FromSeconds(0.5);
    private static readonly TimeSpan s_beazleyMeasure = TimeSpan.FromSeconds(1.5);

    public static void Print(TextWriter output)
    {
        output.WriteLine("# Tasklets quick benchmark table");
        output.WriteLine();
        foreach (string line in MachineInfo.Describe(DateTimeOffset.UtcNow))
        {
            output.WriteLine(line);
        }

        output.WriteLine();
        output.WriteLine($"Each row: {Rounds} timed rounds after at least {WarmUpRuns} small warm-up runs and {MinWarmUp.TotalMilliseconds:0} ms of them (so the timed code is tier-1 JIT code), in a process of its own; ns/op as median (min–max) of the rounds, allocated B/op of the timed loop in the median round. \"meets\": whether the median meets DESIGN.md's target. Peers: measured by the project on a 2-core machine, not in this run (docs/performance.md, \"Peer figures\"); Go(1) and Go(2) are Go 1.19 with GOMAXPROCS=1 and 2.");
        output.WriteLine();
        output.WriteLine("| workload | ns/op: median (min–max) | B/op | DESIGN.md target | meets | peers (ns/op, not this run) |");
        output.WriteLine("|---|---:|---:|---|---|---|");

        // Measured row by row, each Tasklets figure right before its baselines, so that a ratio compares figures taken
        // under the same load; printed as two tables afterwards.
        var figures = new Figure[s_rows.Length][];
        for (int row = 0; row < s_rows.Length; row++)
        {
            figures[row] = new Figure[1 + s_rows[row].Baselines.Length];
            for (int column = 0; column < figures[row].Length; column++)
            {
                figures[row][column] = MeasureFigure(row, column);
            }
        }

        Figure[] ours = figures.Select(f => f[0]).ToArray();
        for (int row = 0; row < s_rows.Length; row++)
        {
            Row spec = s_rows[row];
            DesignTarget? target = DesignTargets.For(spec.Key);
            string verdict = target?.Verdict(ours[row].Median, ours[row].Bytes, figures[row].Length > 1 ? figures[row][1].Median : null) ?? "–";
            output.WriteLine($"| {spec.Name} | {ours[row].Spread()} | {F(ours[row].Bytes)} | {target?.Text ?? "–"} | {verdict} | {PeerFigures.Column(spec.Key)} |");
        }

        // The memory row: bytes retained per blocked tasklet, its rounds' min / median / max in the B/op column.
        double[] blocked = MeasureInChild(BlockedBytesRow, 0, 3);
        var memory = new Figure(blocked[0], blocked[1], blocked[2], blocked[1]);
        DesignTarget memoryTarget = DesignTargets.For(QuickTableKeys.BlockedMemory)!;
        output.WriteLine($"| memory per tasklet blocked on a receive ({BlockedTasklets:N0} on one channel, retained after a full GC) | – | {memory.Spread()} | {memoryTarget.Text} | {memoryTarget.Verdict(0, memory.Median)} | {PeerFigures.Column(QuickTableKeys.BlockedMemory)} (B) |");

        // The floors' memory: bytes one suspended method holds, in the standard box and in the own builder's.
        double[] suspended = MeasureInChild(SuspendedBytesRow, 0, 6);
        var standardBox = new Figure(suspended[0], suspended[1], suspended[2], suspended[1]);
        var ownBox = new Figure(suspended[3], suspended[4], suspended[5], suspended[4]);
        output.WriteLine($"| floor: memory per suspended async method ({SuspendedMethods:N0}, retained after a full GC): standard box / own builder's box | – | {standardBox.Spread()} / {ownBox.Spread()} | – | – | – |");

        output.WriteLine();
        output.WriteLine("## System.Threading.Channels and async methods, measured in the same run");
        output.WriteLine();
        output.WriteLine("Ratio = baseline median / Tasklets median (above 1: Tasklets is faster). The floors are hand-written one-thread handoffs with nothing else (Floor.cs): ValueTask over a reusable IValueTaskSource, the yardstick today; an own builder and struct awaiter, issue 17's.");
        output.WriteLine();
        output.WriteLine("| workload | baseline | ns/op: median (min–max) | B/op | ratio |");
        output.WriteLine("|---|---|---:|---:|---:|");
        for (int row = 0; row < s_rows.Length; row++)
        {
            Row spec = s_rows[row];
            for (int column = 1; column <= spec.Baselines.Length; column++)
            {
                Figure theirs = figures[row][column];
                string ratio = (theirs.Median / ours[row].Median).ToString("0.0", CultureInfo.InvariantCulture);
                output.WriteLine($"| {spec.Name} | {spec.Baselines[column - 1].Name} | {theirs.Spread()} | {F(theirs.Bytes)} | {ratio}x |");
            }
        }

        PrintIoSection(output);

        double[]? load = MachineInfo.LoadAverage();
        if (load is not null)
        {
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"Load average at the end: {load[0]:0.00}, {load[1]:0.00}, {load[2]:0.00} (1, 5, 15 min)."));
        }
    }

    private static void PrintIoSection(TextWriter output)
    {
        output.WriteLine();
        output.WriteLine("## I/O beside CPU work (seeds 002 and 004)");
        output.WriteLine();
        output.WriteLine($"Seed 002's experiment (examples/Beazley): a size-prefixed echo server on 127.0.0.1, {Experiment.Connections} connections from a load generator on a second scheduler, messages of 1–{Protocol.MaxPayload} bytes, CPU work in chunks of about 5 µs. Each setting in a process of its own, {BeazleyRounds} rounds interleaved, {s_beazleyMeasure.TotalSeconds:0.0} s measured after {s_beazleyWarmUp.TotalSeconds:0.0} s; median of the rounds, (min–max) of requests/s.");
        output.WriteLine();
        var rounds = new double[Experiment.All.Length][][];
        for (int scenario = 0; scenario < Experiment.All.Length; scenario++)
        {
            rounds[scenario] = new double[BeazleyRounds][];
        }

        for (int round = 0; round < BeazleyRounds; round++)
        {
            for (int scenario = 0; scenario < Experiment.All.Length; scenario++)
            {
                rounds[scenario][round] = MeasureInChild(BeazleyRowBase - scenario, 0, 4);
            }
        }

        double MedianOf(int scenario, int field) => MedianValue(rounds[scenario].Select(r => r[field]));
        double alone = MedianOf(0, 0);
        output.WriteLine("| setting | requests/s (min–max) | vs (a) | p50 µs | p99 µs (min–max) | CPU chunks/s |");
        output.WriteLine("|---|---:|---:|---:|---:|---:|");
        for (int scenario = 0; scenario < Experiment.All.Length; scenario++)
        {
            double[] perSecond = rounds[scenario].Select(r => r[0]).ToArray();
            double[] p99 = rounds[scenario].Select(r => r[2]).ToArray();
            output.WriteLine($"| {Experiment.Label(Experiment.All[scenario])} | {F(MedianOf(scenario, 0))} ({F(perSecond.Min())}–{F(perSecond.Max())}) | {R(MedianOf(scenario, 0) / alone)} | {F(MedianOf(scenario, 1))} | {F(MedianOf(scenario, 2))} ({F(p99.Min())}–{F(p99.Max())}) | {F(MedianOf(scenario, 3))} |");
        }

        output.WriteLine();
        string meets = MedianOf(1, 0) / alone >= 0.5 ? "yes" : "no";
        output.WriteLine($"DESIGN.md's target for (b), \"≤ 2x slower than alone\": {R(MedianOf(1, 0) / alone)} of (a), meets: {meets}.");
        output.WriteLine();
        output.WriteLine($"Targets (issue 13): (b) at least 0.5x of (a) with p99 under 2,000 µs: {R(MedianOf(1, 0) / alone)}, p99 {F(MedianOf(1, 2))} µs. (c) no worse than (d): (c)/(d) = {R(MedianOf(2, 0) / MedianOf(3, 0))}. Seed 002, Python's GIL with one CPU-bound thread: 7x, 8.9x, ~10x slower (0.14x, 0.11x, 0.10x).");
        output.WriteLine();

        double[] sleep = MeasureInChild(SleepBesideCpuRow, 0, 3);
        double[] frame = MeasureInChild(RunForOvershootRow, 0, 3);
        output.WriteLine("Timers and the watchdog beside a checkpointing CPU tasklet (chunks of about 5 µs), each in a process of its own:");
        output.WriteLine();
        output.WriteLine("| figure (µs) | p50 | p99 | max | target |");
        output.WriteLine("|---|---:|---:|---:|---|");
        output.WriteLine($"| Tasklet.Sleep(1 ms) takes, {Sleeps:N0} sleeps | {F(sleep[0])} | {F(sleep[1])} | {F(sleep[2])} | p99 ≤ 2,000 |");
        output.WriteLine($"| RunFor(4 ms) overshoots its budget, {Frames} frames, 1,000 NPC tasklets | {F(frame[0])} | {F(frame[1])} | {F(frame[2])} | p99 < 200 |");
    }

    /// <summary>
    /// The child's side: measures column <paramref name="column"/> of row <paramref name="row"/> and prints
    /// "min median max bytes" (ns/op of the rounds, B/op of the median round); negative rows are the figures of the
    /// memory and I/O sections, printed as their fields.
    /// </summary>
    public static void MeasureAndPrint(int row, int column, TextWriter output)
    {
        if (row < 0)
        {
            output.WriteLine(string.Join(' ', MeasureSection(row).Select(Invariant)));
            return;
        }

        if (row >= s_rows.Length || column < 0 || column > s_rows[row].Baselines.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(row), $"No figure at row {row}, column {column}: the quick table has {s_rows.Length} rows.");
        }

        Row spec = s_rows[row];
        Func<int, Sample> run = column == 0 ? spec.Tasklets : spec.Baselines[column - 1].Run;
        Sample[] rounds = MeasureRounds(run, spec.Size, spec.WarmUpSize);
        output.WriteLine(string.Join(' ', new[] { rounds[0].NsPerOp, rounds[Rounds / 2].NsPerOp, rounds[^1].NsPerOp, rounds[Rounds / 2].BytesPerOp }.Select(Invariant)));
    }

    private static double[] MeasureSection(int row)
    {
        switch (row)
        {
            case BlockedBytesRow:
                {
                    var bytes = new double[Rounds];
                    for (int i = 0; i < Rounds; i++)
                    {
                        bytes[i] = Workloads.BlockedTaskletBytes(BlockedTasklets);
                    }

                    Array.Sort(bytes);
                    return [bytes[0], bytes[Rounds / 2], bytes[^1]];
                }

            case SuspendedBytesRow:
                {
                    var standard = new double[Rounds];
                    var own = new double[Rounds];
                    for (int i = 0; i < Rounds; i++)
                    {
                        standard[i] = OwnBuilderScheduler.SuspendedBytes(SuspendedMethods, ownBox: false);
                        own[i] = OwnBuilderScheduler.SuspendedBytes(SuspendedMethods, ownBox: true);
                    }

                    Array.Sort(standard);
                    Array.Sort(own);
                    return [standard[0], standard[Rounds / 2], standard[^1], own[0], own[Rounds / 2], own[^1]];
                }

            case SleepBesideCpuRow:
                {
                    IoPriority.SleepBesideCpu(Sleeps / 10); // warm-up
                    double[] took = IoPriority.SleepBesideCpu(Sleeps);
                    return [IoPriority.Quantile(took, 0.50), IoPriority.Quantile(took, 0.99), took[^1]];
                }

            case RunForOvershootRow:
                {
                    IoPriority.RunForOvershoot(Frames / 10); // warm-up
                    double[] overshoot = IoPriority.RunForOvershoot(Frames);
                    return [IoPriority.Quantile(overshoot, 0.50), IoPriority.Quantile(overshoot, 0.99), overshoot[^1]];
                }

            default:
                {
                    int scenario = BeazleyRowBase - row;
                    if (scenario < 0 || scenario >= Experiment.All.Length)
                    {
                        throw new ArgumentOutOfRangeException(nameof(row), $"No figure at row {row}.");
                    }

                    LoadResult r = Experiment.Run(Experiment.All[scenario], s_beazleyWarmUp, s_beazleyMeasure);
                    return [r.RequestsPerSecond, r.LatencyMicroseconds(0.50), r.LatencyMicroseconds(0.99), r.CpuChunksPerSecond];
                }
        }
    }

    private static Figure MeasureFigure(int row, int column)
    {
        double[] fields = MeasureInChild(row, column, 4);
        return new Figure(fields[0], fields[1], fields[2], fields[3]);
    }

    private static double[] MeasureInChild(int row, int column, int fieldCount)
    {
        // Started the way this process was: as an apphost, or as `dotnet Tasklets.Benchmarks.dll`.
        string host = Environment.ProcessPath ?? throw new InvalidOperationException("The path of this process is unknown.");
        var start = new ProcessStartInfo(host) { RedirectStandardOutput = true, UseShellExecute = false };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet")
        {
            start.ArgumentList.Add(typeof(QuickTable).Assembly.Location);
        }

        start.ArgumentList.Add(MeasureArgument);
        start.ArgumentList.Add(Invariant(row));
        start.ArgumentList.Add(Invariant(column));
        using Process child = Process.Start(start) ?? throw new InvalidOperationException($"Could not start {host}.");
        string result = child.StandardOutput.ReadToEnd();
        child.WaitForExit();
        string[] fields = result.Trim().Split(' ');
        if (child.ExitCode != 0 || fields.Length != fieldCount)
        {
            throw new InvalidOperationException($"Measuring row {row}, column {column} failed (exit code {child.ExitCode}): '{result}'.");
        }

        return fields.Select(f => double.Parse(f, CultureInfo.InvariantCulture)).ToArray();
    }

    private static double MedianValue(IEnumerable<double> values)
    {
        double[] sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static string R(double ratio) => ratio.ToString("0.00", CultureInfo.InvariantCulture) + "x";

    /// <summary>The <see cref="Rounds"/> timed rounds of one workload after its warm-up, sorted by ns/op.</summary>
    private static Sample[] MeasureRounds(Func<int, Sample> run, int size, int warmUpSize)
    {
        // Warm-up: each workload's timed loop lives in one async method that a run calls once, so it takes
        // WarmUpRuns small runs before tiered compilation has promoted it to optimized (tier-1, PGO) code. A count
        // alone is not enough: tiering waits while new methods are still being jitted, and select_default was
        // measured on tier-0 code (~110 ns instead of ~12) until the warm-up also lasted long enough in time.
        long warmUpStart = Stopwatch.GetTimestamp();
        for (int i = 0; i < WarmUpRuns || Stopwatch.GetElapsedTime(warmUpStart) < MinWarmUp; i++)
        {
            run(warmUpSize);
        }

        var samples = new Sample[Rounds];
        for (int i = 0; i < Rounds; i++)
        {
            samples[i] = run(size);
        }

        Array.Sort(samples, static (a, b) => a.NsPerOp.CompareTo(b.NsPerOp));
        return samples;
    }

    private static string Invariant(double value) => value.ToString("R", CultureInfo.InvariantCulture);

    private static string Invariant(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string F(double value) => DesignTarget.AsPrinted(value).ToString(value < 10 ? "0.0" : "0", CultureInfo.InvariantCulture);

    private sealed record Row(string Key, string Name, int Size, Func<int, Sample> Tasklets, params (string Name, Func<int, Sample> Run)[] Baselines)
    {
        /// <summary>The size of each warm-up run.</summary>
        public int WarmUpSize { get; init; } = Math.Max(20_000, Size / 100);
    }

    /// <summary>One figure over its rounds: min, median and max (ns/op, or B for the memory line), and B/op of the median round.</summary>
    private readonly record struct Figure(double Min, double Median, double Max, double Bytes)
    {
        public string Spread() => $"{F(Median)} ({F(Min)}–{F(Max)})";
    }
}
