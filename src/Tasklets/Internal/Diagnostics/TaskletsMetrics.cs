using System.Diagnostics.Metrics;

namespace Tasklets.Internal;

/// <summary>
/// The runtime's instruments on the <c>Tasklets</c> meter (System.Diagnostics.Metrics), observable with
/// dotnet-counters, OpenTelemetry or a <see cref="MeterListener"/>. Names are documented in docs/diagnostics.md.
/// </summary>
/// <remarks>
/// Hot paths never touch a shared cache line per operation: schedulers count switches and channel operations in
/// plain owner-thread fields and flush them here every 64 steps and when a Run method returns. Channel operations
/// of parties that are not tasklets are added directly (Interlocked).
/// </remarks>
internal static class TaskletsMetrics
{
    private static long s_alive;
    private static long s_spawned;
    private static long s_switches;
    private static long s_channelOperations;

    private static readonly Meter s_meter = new(Scheduler.MeterName, typeof(TaskletsMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> s_deadlocks = s_meter.CreateCounter<long>(
        "tasklets.deadlocks", "{deadlock}", "Deadlocks detected by Scheduler.Run.");

    static TaskletsMetrics()
    {
        s_meter.CreateObservableUpDownCounter("tasklets.alive", static () => Volatile.Read(ref s_alive), "{tasklet}", "Tasklets spawned and not yet dead, over all schedulers.");
        s_meter.CreateObservableCounter("tasklets.spawned", static () => Volatile.Read(ref s_spawned), "{tasklet}", "Tasklets spawned since the process started.");
        s_meter.CreateObservableCounter("tasklets.switches", static () => Volatile.Read(ref s_switches), "{switch}", "Steps run by schedulers: each is a switch to a tasklet.");
        s_meter.CreateObservableCounter("tasklets.channel.operations", static () => Volatile.Read(ref s_channelOperations), "{operation}", "Channel sends, receives and closes, including Try and select cases that fired.");
    }

    public static void Spawned()
    {
        Interlocked.Increment(ref s_alive);
        Interlocked.Increment(ref s_spawned);
    }

    public static void Died() => Interlocked.Decrement(ref s_alive);

    public static void ExternalChannelOperation() => Interlocked.Increment(ref s_channelOperations);

    public static void Flush(long switches, long channelOperations)
    {
        if (switches != 0)
        {
            Interlocked.Add(ref s_switches, switches);
        }

        if (channelOperations != 0)
        {
            Interlocked.Add(ref s_channelOperations, channelOperations);
        }
    }

    public static void Deadlock() => s_deadlocks.Add(1);
}
