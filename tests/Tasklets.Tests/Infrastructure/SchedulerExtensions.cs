namespace Tasklets.Tests.Infrastructure;

public static class SchedulerExtensions
{
    /// <summary>Runs passes until nothing is ready (Trio's wait_all_tasks_blocked); blocked tasklets stay blocked.</summary>
    public static void RunUntilIdle(this Scheduler scheduler, int maxPasses = 100_000)
    {
        for (int i = 0; i < maxPasses; i++)
        {
            if (!scheduler.RunOnce())
            {
                return;
            }
        }

        throw new InvalidOperationException($"The scheduler was still busy after {maxPasses} passes.");
    }

    /// <summary>A deterministic scheduler: virtual clock, FIFO.</summary>
    public static Scheduler Deterministic(int seed = 1) => new(new SchedulerOptions { Seed = seed });
}
