using Microsoft.Extensions.Logging;

namespace Tasklets.Hosting;

/// <summary>
/// The log entries of the hosted scheduler (category <see cref="TaskletSchedulerOptions.LoggerCategory"/>), one
/// method each, with stable event ids: docs/hosting.md lists them.
/// </summary>
internal static partial class HostingLog
{
    [LoggerMessage(EventId = 1, EventName = "SchedulerStarted", Level = LogLevel.Debug,
        Message = "The hosted tasklet scheduler runs on thread '{ThreadName}'.")]
    public static partial void SchedulerStarted(ILogger logger, string threadName);

    [LoggerMessage(EventId = 2, EventName = "SchedulerStopped", Level = LogLevel.Debug,
        Message = "The hosted tasklet scheduler stopped: every tasklet was killed and is dead (their finally blocks ran).")]
    public static partial void SchedulerStopped(ILogger logger);

    [LoggerMessage(EventId = 3, EventName = "UnobservedFailure", Level = LogLevel.Error,
        Message = "Tasklet {TaskletId} '{TaskletName}' failed and nobody observed the failure (join a tasklet to observe it).")]
    public static partial void UnobservedFailure(ILogger logger, Exception exception, long taskletId, string taskletName);

    [LoggerMessage(EventId = 4, EventName = "Stalled", Level = LogLevel.Warning,
        Message = "The hosted tasklet scheduler stalled (long step: {LongStep}). {Report}")]
    public static partial void Stalled(ILogger logger, bool longStep, string report);

    [LoggerMessage(EventId = 5, EventName = "Deadlock", Level = LogLevel.Error,
        Message = "Deadlock in the hosted tasklet scheduler: {BlockedTasklets} blocked and nothing could wake them; the scheduler goes on serving.")]
    public static partial void Deadlock(ILogger logger, Exception exception, string blockedTasklets);

    [LoggerMessage(EventId = 6, EventName = "DeadlockSurvivors", Level = LogLevel.Warning,
        Message = "Tasklets of a deadlock are still alive ({BlockedTasklets}: SchedulerOptions.KillOnDeadlock is false, or their kills could not end them). Deadlock detection is off for the hosted scheduler until the host stops, so that the same deadlock is not reported again and again.")]
    public static partial void DeadlockSurvivors(ILogger logger, string blockedTasklets);

    [LoggerMessage(EventId = 7, EventName = "RunFailure", Level = LogLevel.Error,
        Message = "The hosted tasklet scheduler reported a failure that no tasklet's join observed.")]
    public static partial void RunFailure(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 8, EventName = "StopTimedOut", Level = LogLevel.Warning,
        Message = "The host's shutdown token fired before the hosted tasklet scheduler's tasklets were dead; StopAsync returns and leaves them. Still alive: {Dump}")]
    public static partial void StopTimedOut(ILogger logger, string dump);

    [LoggerMessage(EventId = 9, EventName = "SchedulerCrashed", Level = LogLevel.Critical,
        Message = "The hosted tasklet scheduler stopped running: its tasklets no longer run. The application is asked to stop.")]
    public static partial void SchedulerCrashed(ILogger logger, Exception exception);
}
