using BenchmarkDotNet.Running;
using Tasklets.Benchmarks;

// Default: the quick table (the README's main job). `-- --bdn [BenchmarkDotNet args]`: the BenchmarkDotNet suites,
// e.g. `dotnet run -c Release --project bench/Tasklets.Benchmarks -- --bdn --filter '*'`.
if (args.Length > 0 && args[0] == "--bdn")
{
    BenchmarkSwitcher.FromAssembly(typeof(QuickTable).Assembly).Run(args[1..]);
    return;
}

QuickTable.Print(Console.Out);
