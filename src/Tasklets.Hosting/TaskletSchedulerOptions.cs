namespace Tasklets.Hosting;

/// <summary>
/// Options of the hosted scheduler that
/// <see cref="Microsoft.Extensions.DependencyInjection.TaskletServiceCollectionExtensions.AddTaskletScheduler"/> registers.
/// </summary>
/// <remarks>
/// Read once, when the <see cref="Tasklets.Scheduler"/> singleton is first resolved; changes after that have no effect.
/// </remarks>
public sealed class TaskletSchedulerOptions
{
    /// <summary>
    /// The category of every log entry the hosted scheduler writes (unobserved failures, stalls, deadlocks, shutdown),
    /// for filters such as <c>builder.Logging.AddFilter(TaskletSchedulerOptions.LoggerCategory, LogLevel.Information)</c>.
    /// </summary>
    public const string LoggerCategory = "Tasklets.Hosting";

    /// <summary>
    /// The options the scheduler is created with: <see cref="SchedulerOptions.StallTimeout"/>, <see cref="SchedulerOptions.TimeSlice"/>,
    /// <see cref="SchedulerOptions.KillOnDeadlock"/> and the rest. Default: <c>new SchedulerOptions()</c>.
    /// </summary>
    /// <remarks>
    /// A <see cref="SchedulerOptions.OnUnobservedFailure"/> set here is called after the hosted scheduler has logged the
    /// failure. <see cref="SchedulerOptions"/> is an immutable record: write
    /// <c>o.Scheduler = o.Scheduler with { StallTimeout = TimeSpan.FromSeconds(2) }</c>. A <see cref="SchedulerOptions.Seed"/>
    /// (deterministic mode) is allowed but rarely useful in a host: requests from outside make the run
    /// non-deterministic anyway.
    /// </remarks>
    public SchedulerOptions Scheduler { get; set; } = new();

    /// <summary>
    /// Whether the hosted scheduler is judged for deadlocks while it serves, as a plain <see cref="Tasklets.Scheduler.Run()"/>
    /// is. Default true: when every alive tasklet is blocked on primitives that nothing outside the tasklets can use,
    /// they are killed (with <see cref="SchedulerOptions.KillOnDeadlock"/>) and the deadlock is logged as an error.
    /// </summary>
    /// <remarks>
    /// A primitive made inside a tasklet counts as unreachable from outside until a party outside the tasklets uses it
    /// (the library's one blind spot, docs/semantics.md): a tasklet service that makes its request channel itself, or
    /// first resolves the singleton that makes it, and hands it to request handlers through a field is judged
    /// deadlocked while no request has arrived yet. Make such channels outside the tasklets (a singleton resolved by
    /// <c>AddTasklet&lt;TService&gt;</c> is made on the host's thread), or set this to false: the hosted scheduler then
    /// holds <see cref="Tasklets.Scheduler.KeepAlive"/> for its whole run, so that no deadlock is ever declared (nor a
    /// likely deadlock reported as a stall); long steps are still reported.
    /// </remarks>
    public bool DetectDeadlocks { get; set; } = true;
}
