using Xunit;

namespace Tasklets.Tests.Sync;

internal static class SyncTestExtensions
{
    /// <summary>
    /// Run() for tests whose primitives were made outside a tasklet (so externally reachable: a wait left hanging
    /// would make Run() idle forever instead of reporting a deadlock): runs until idle, fails at once if a tasklet is
    /// still blocked, then lets Run() rethrow the failures of tasklets.
    /// </summary>
    public static void RunToEnd(this Scheduler scheduler)
    {
        Infrastructure.SchedulerExtensions.RunUntilIdle(scheduler);
        Assert.True(scheduler.Tasklets.Count == 0, "tasklets left blocked:" + Environment.NewLine + scheduler.Dump());
        scheduler.Run();
    }
}
