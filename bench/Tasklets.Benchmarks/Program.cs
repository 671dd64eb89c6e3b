using System.Globalization;
using BenchmarkDotNet.Running;
using Tasklets.Benchmarks;

// Default: the quick table (the README's main job). `-- --peers-markdown`: the peer table of docs/performance.md. `-- --bdn [BenchmarkDotNet args]`: the BenchmarkDotNet suites,
// e.g. `dotnet run -c Release --project bench/Tasklets.Benchmarks -- --bdn --filter '*'`.
if (args.Length > 0 && args[0] == "--bdn")
{
    BenchmarkSwitcher.FromAssembly(typeof(QuickTable).Assembly).Run(args[1..]);
    return;
}

// The peer figures as docs/performance.md carries them (its table "Peer figures", between the markers).
if (args.Length == 1 && args[0] == "--peers-markdown")
{
    Console.Out.Write(PeerFigures.Markdown());
    return;
}

// A child of the quick table: measures one figure in a fresh process and prints it.
if (args.Length == 3 && args[0] == QuickTable.MeasureArgument)
{
    QuickTable.MeasureAndPrint(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture), Console.Out);
    return;
}

QuickTable.Print(Console.Out);
