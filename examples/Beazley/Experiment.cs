using System.Net;

namespace Beazley;

/// <summary>The four settings of the experiment (the README's table rows a–d).</summary>
internal enum Scenario
{
    /// <summary>(a) The Tasklets server alone.</summary>
    Alone,

    /// <summary>(b) With a CPU-bound tasklet on the server's scheduler that checkpoints.</summary>
    CheckpointingCpu,

    /// <summary>(c) With the same CPU work moved into RunInThread.</summary>
    CpuInThread,

    /// <summary>(d) The control: plain async Task on the thread pool, the CPU work on a thread.</summary>
    PlainAsyncControl,

    /// <summary>(e) The floor of a one-thread loop: plain async Task on one thread, the CPU work on a thread.</summary>
    PlainAsyncOneThread,
}

/// <summary>Runs one setting of seed 002's experiment: an echo server, a load generator, optionally CPU work beside the server.</summary>
internal static class Experiment
{
    public const int Connections = 8;

    public static readonly Scenario[] All = [Scenario.Alone, Scenario.CheckpointingCpu, Scenario.CpuInThread, Scenario.PlainAsyncControl, Scenario.PlainAsyncOneThread];

    public static string Label(Scenario scenario) => scenario switch
    {
        Scenario.Alone => "(a) Tasklets server alone",
        Scenario.CheckpointingCpu => "(b) + CPU tasklet, Checkpoint()",
        Scenario.CpuInThread => "(c) + CPU work in RunInThread",
        Scenario.PlainAsyncControl => "(d) control: async Task + CPU thread",
        Scenario.PlainAsyncOneThread => "(e) floor: async Task on one thread + CPU thread",
        _ => throw new ArgumentOutOfRangeException(nameof(scenario), scenario, null),
    };

    public static LoadResult Run(Scenario scenario, TimeSpan warmUp, TimeSpan measure, int seed = 1)
    {
        var cpu = new CpuWork();
        using IEchoServer server = scenario switch
        {
            Scenario.Alone => new TaskletEchoServer(CpuLoad.None, cpu),
            Scenario.CheckpointingCpu => new TaskletEchoServer(CpuLoad.CheckpointingTasklet, cpu),
            Scenario.CpuInThread => new TaskletEchoServer(CpuLoad.RunInThread, cpu),
            Scenario.PlainAsyncControl => new PlainAsyncEchoServer(CpuLoad.Thread, cpu, oneThread: false),
            Scenario.PlainAsyncOneThread => new PlainAsyncEchoServer(CpuLoad.Thread, cpu, oneThread: true),
            _ => throw new ArgumentOutOfRangeException(nameof(scenario), scenario, null),
        };

        IPEndPoint endPoint = server.EndPoint;
        LoadResult result = LoadGenerator.Run(endPoint, Connections, warmUp, measure, cpu, seed);
        if (result.Requests == 0)
        {
            // Nothing answered in a short window: on a machine loaded far past its cores (CI beside other builds) the
            // clients can spend a 0.3 s window connecting. Measured once more over a window four times longer; the
            // setting fails only if that answers nothing either.
            result = LoadGenerator.Run(endPoint, Connections, warmUp, 4 * measure, cpu, seed);
        }

        server.Stop();
        if (result.Requests == 0)
        {
            throw new InvalidOperationException($"{Label(scenario)}: no request was answered inside the window.");
        }

        if (scenario != Scenario.Alone && result.CpuChunks == 0)
        {
            throw new InvalidOperationException($"{Label(scenario)}: the CPU work made no progress, so the setting measured nothing.");
        }

        return result;
    }
}
