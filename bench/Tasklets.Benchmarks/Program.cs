using System.Globalization;
using BenchmarkDotNet.Running;
using Tasklets.Benchmarks;

// Default: the quick table (the README's main job). `-- --bdn [BenchmarkDotNet args]`: the BenchmarkDotNet suites,
// e.g. `dotnet run -c Release --project bench/Tasklets.Benchmarks -- --bdn --filter '*'`.
if (args.Length > 0 && args[0] == "--bdn")
{
    BenchmarkSwitcher.FromAssembly(typeof(QuickTable).Assembly).Run(args[1..]);
    return;
}

// A child of the quick table: measures one figure in a fresh process and prints it.
if (args.Length == 3 && args[0] == QuickTable.MeasureArgument)
{
    QuickTable.MeasureAndPrint(int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture), Console.Out);
    return;
}

QuickTable.Print(Console.Out);
