using System.Diagnostics.Metrics;

namespace Tasklets.Internal;

/// <summary>
/// The runtime's instruments on the <c>Tasklets</c> meter (System.Diagnostics.Metrics), observable with
/// dotnet-counters, OpenTelemetry or a <see cref="MeterListener"/>. Names are documented in docs/diagnostics.md.
/// </summary>
/// <remarks>
/// Hot paths never touch a shared cache line per operation: schedulers count switches and channel operations in
/// plain owner-thread fields and flush them here every 64 steps and when a Run method returns. Channel operations
/// of parties that are not tasklets are added directly (Interlocked). The per-scheduler gauges are read when a
/// listener collects them, from counts the owner maintains anyway (no per-step write for them); the step histogram
/// reads the clock only while a listener has it enabled.
/// </remarks>
internal static class TaskletsMetrics
{
    /// <summary>The tag that names the scheduler of a per-scheduler measurement (its <see cref="Scheduler.Id"/>).</summary>
    public const string SchedulerTag = "tasklets.scheduler";

    private static long s_alive;
    private static long s_spawned;
    private static long s_switches;
    private static long s_channelOperations;

    private static readonly Meter s_meter = new(Scheduler.MeterName, typeof(TaskletsMetrics).Assembly.GetName().Version?.ToString());

    private static readonly Counter<long> s_deadlocks = s_meter.CreateCounter<long>(
        "tasklets.deadlocks", "{deadlock}", "Deadlocks detected by Scheduler.Run.");

    private static readonly Counter<long> s_stalls = s_meter.CreateCounter<long>(
        "tasklets.stalls", "{stall}", "Stalls reported by schedulers inside Run (the Stalled event).");

    // Steps take microseconds; the default bucket boundaries (0 to 10000) suit milliseconds, so seconds get their own.
    private static readonly Histogram<double> s_stepDuration = s_meter.CreateHistogram(
        "tasklets.step.duration", "s", "How long one step ran (a tasklet from a switch to its next await), per scheduler.",
        tags: null,
        advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries = [0.000_001, 0.000_005, 0.000_01, 0.000_05, 0.000_1, 0.000_5, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10],
        });

    static TaskletsMetrics()
    {
        s_meter.CreateObservableUpDownCounter("tasklets.alive", static () => Volatile.Read(ref s_alive), "{tasklet}", "Tasklets spawned and not yet dead, over all schedulers.");
        s_meter.CreateObservableCounter("tasklets.spawned", static () => Volatile.Read(ref s_spawned), "{tasklet}", "Tasklets spawned since the process started.");
        s_meter.CreateObservableCounter("tasklets.switches", static () => Volatile.Read(ref s_switches), "{switch}", "Steps run by schedulers: each is a switch to a tasklet.");
        s_meter.CreateObservableCounter("tasklets.channel.operations", static () => Volatile.Read(ref s_channelOperations), "{operation}", "Channel sends, receives and closes, including Try and select cases that fired.");
        s_meter.CreateObservableUpDownCounter("tasklets.runnable", static () => PerRunningScheduler(static s => s.RunnableCount), "{tasklet}", "Tasklets ready to run, per scheduler inside a Run method.");
        s_meter.CreateObservableUpDownCounter("tasklets.blocked", static () => PerRunningScheduler(static s => s.BlockedCountEstimate), "{tasklet}", "Tasklets alive and not ready to run (waiting), per scheduler inside a Run method.");
    }

    /// <summary>True while a listener records <c>tasklets.step.duration</c>; schedulers sample it per run and every 64 steps.</summary>
    public static bool StepDurationEnabled => s_stepDuration.Enabled;

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

    /// <summary>Counts a stall (the stall monitor calls it when it raises <c>Stalled</c>).</summary>
    public static void Stall() => s_stalls.Add(1);

    /// <summary>Records one step's duration for the scheduler tagged <paramref name="scheduler"/> (a boxed id, so nothing is allocated).</summary>
    public static void StepDuration(TimeSpan duration, object scheduler)
        => s_stepDuration.Record(duration.TotalSeconds, new KeyValuePair<string, object?>(SchedulerTag, scheduler));

    // One measurement per scheduler inside a Run method, read cross-thread from the counts its owner maintains: a
    // snapshot that may be a step old, which is what a gauge sampled every few seconds needs.
    private static List<Measurement<long>> PerRunningScheduler(Func<Scheduler, int> read)
    {
        Scheduler[] running = Scheduler.Running;
        var measurements = new List<Measurement<long>>(running.Length);
        foreach (Scheduler scheduler in running)
        {
            measurements.Add(new Measurement<long>(read(scheduler), new KeyValuePair<string, object?>(SchedulerTag, scheduler.MetricTagValue)));
        }

        return measurements;
    }
}
