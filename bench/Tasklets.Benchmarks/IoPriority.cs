using System.Diagnostics;
using Beazley;

namespace Tasklets.Benchmarks;

/// <summary>
/// Issue 13's figures (seeds 002 and 004: I/O that CPU work cannot starve): the cost of a checkpoint that gives way
/// to nobody, the lateness of a 1 ms sleep beside a checkpointing CPU tasklet, the overshoot of RunFor(4 ms), and the
/// Beazley experiment (examples/Beazley).
/// </summary>
internal static class IoPriority
{
    private static readonly TimeSpan s_sleep = TimeSpan.FromMilliseconds(1);
    private static readonly TimeSpan s_frame = TimeSpan.FromMilliseconds(4);

    /// <summary>n checkpoints in a loop with nothing waiting but a timer an hour away (so the timer check is not skipped).</summary>
    public static Sample Checkpoints(int n) => Scheduler.Run(async () =>
    {
        _ = Tasklet.Go(() => Tasklet.Sleep(TimeSpan.FromHours(1)).AsTask(), "timer an hour away");
        await Tasklet.Yield(); // the sleeper's timer is pending from here on
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        for (int i = 0; i < n; i++)
        {
            await Tasklet.Checkpoint();
        }

        return new Sample(Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    });

    /// <summary>
    /// How long <c>Tasklet.Sleep(1 ms)</c> takes, <paramref name="count"/> times in a row, while a CPU-bound tasklet on the
    /// same scheduler runs chunks of about 5 µs with a <see cref="Tasklet.Checkpoint"/> after each. Microseconds, sorted.
    /// </summary>
    public static double[] SleepBesideCpu(int count) => Scheduler.Run(async () =>
    {
        var cpu = new CpuWork();
        _ = Tasklet.Go(async () =>
        {
            while (true)
            {
                cpu.Chunk();
                await Tasklet.Checkpoint();
            }
        }, "cpu");

        var took = new double[count];
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await Tasklet.Sleep(s_sleep);
            took[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        Array.Sort(took);
        return took; // returning ends main; Run kills the CPU tasklet at its next checkpoint
    });

    /// <summary>
    /// A host loop calling <c>RunFor(4 ms)</c> <paramref name="frames"/> times, with a checkpointing CPU tasklet and
    /// 1,000 NPC tasklets that each yield once per frame: how far each call overshot its budget. Microseconds, sorted.
    /// </summary>
    public static double[] RunForOvershoot(int frames)
    {
        using var scheduler = new Scheduler();
        var cpu = new CpuWork();
        scheduler.Go(async () =>
        {
            while (true)
            {
                cpu.Chunk();
                await Tasklet.Checkpoint();
            }
        }, "cpu");
        for (int i = 0; i < 1000; i++)
        {
            scheduler.Go(async () =>
            {
                while (true)
                {
                    await Tasklet.Yield();
                }
            }, "npc");
        }

        var overshoot = new double[frames];
        for (int i = 0; i < frames; i++)
        {
            long start = Stopwatch.GetTimestamp();
            scheduler.RunFor(s_frame);
            overshoot[i] = (Stopwatch.GetElapsedTime(start) - s_frame).TotalMicroseconds;
        }

        Array.Sort(overshoot);
        return overshoot;
    }

    /// <summary>The value at quantile <paramref name="q"/> of sorted <paramref name="values"/>.</summary>
    public static double Quantile(double[] values, double q)
        => values[Math.Clamp((int)Math.Ceiling(q * values.Length) - 1, 0, values.Length - 1)];
}
