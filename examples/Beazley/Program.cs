// Seed 002's experiment (Beazley, "Embracing the GIL"): a request/reply server for size-prefixed messages, measured
// alone and beside CPU-bound work. Under Python's GIL one CPU-bound thread made it 7-10x slower; here a checkpointing
// CPU tasklet on the server's own scheduler should cost at most 2x, and RunInThread should match plain async code.
// Every reply is checked byte for byte; the program exits non-zero if one differs or a setting made no progress.
//
//   dotnet run -c Release --project examples/Beazley [-- seconds]
using System.Globalization;
using Beazley;

double seconds = args.Length > 0 ? double.Parse(args[0], CultureInfo.InvariantCulture) : 2.0;
var measure = TimeSpan.FromSeconds(seconds);
var warmUp = TimeSpan.FromSeconds(Math.Min(0.5, seconds / 2));

Console.WriteLine($"Echo server on 127.0.0.1, {Experiment.Connections} connections, messages of 1-{Protocol.MaxPayload} bytes, {seconds:0.0} s per setting.");
Console.WriteLine();
Console.WriteLine("| setting | requests/s | p50 µs | p99 µs | CPU chunks/s | throughput vs (a) |");
Console.WriteLine("|---|---:|---:|---:|---:|---:|");
double alone = 0;
foreach (Scenario scenario in Experiment.All)
{
    LoadResult r = Experiment.Run(scenario, warmUp, measure);
    if (scenario == Scenario.Alone)
    {
        alone = r.RequestsPerSecond;
    }

    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"| {Experiment.Label(scenario)} | {r.RequestsPerSecond:0} | {r.LatencyMicroseconds(0.50):0} | {r.LatencyMicroseconds(0.99):0} | {r.CpuChunksPerSecond:0} | {r.RequestsPerSecond / alone:0.00}x |"));
}

Console.WriteLine();
Console.WriteLine("Seed 002 (Python with the GIL, one CPU-bound thread): 7x (0mq), 8.9x (multiprocessing), ~10x (sockets) slower.");
return 0;
