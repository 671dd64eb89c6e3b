namespace Tasklets;

/// <summary>
/// A stall report of <see cref="Scheduler.Stalled"/> (DESIGN.md, "Stalls: every hang explains itself"): what the
/// scheduler was doing when it had made no progress for <see cref="SchedulerOptions.StallTimeout"/>.
/// </summary>
public sealed class SchedulerStalledEventArgs : EventArgs
{
    /// <summary>Creates a report (the library raises them; handlers may make their own, in tests say).</summary>
    /// <param name="scheduler">The scheduler that stalled.</param>
    /// <param name="dump">The explanation and the scheduler's <see cref="Scheduler.Dump"/>.</param>
    /// <param name="stalledFor">How long the stall had lasted at least.</param>
    /// <param name="longStep">True when one step ran without a switch.</param>
    /// <exception cref="ArgumentNullException"><paramref name="scheduler"/> or <paramref name="dump"/> is null.</exception>
    public SchedulerStalledEventArgs(Scheduler scheduler, string dump, TimeSpan stalledFor, bool longStep)
    {
        ArgumentNullException.ThrowIfNull(scheduler);
        ArgumentNullException.ThrowIfNull(dump);
        Scheduler = scheduler;
        Dump = dump;
        StalledFor = stalledFor;
        LongStep = longStep;
    }

    /// <summary>The scheduler that stalled.</summary>
    public Scheduler Scheduler { get; }

    /// <summary>
    /// A first line that says which stall this is and what to do about it ("one step has run without a switch",
    /// "a likely deadlock", "only yielding tasklets: virtual time cannot advance"), then the scheduler's
    /// <see cref="Scheduler.Dump"/> taken when the stall was reported. For a long step the dump is a snapshot taken
    /// while the step still runs.
    /// </summary>
    public string Dump { get; }

    /// <summary>How long the stall had lasted when it was reported: at least <see cref="SchedulerOptions.StallTimeout"/>, measured by the monitor.</summary>
    public TimeSpan StalledFor { get; }

    /// <summary>
    /// True when one step has run for the timeout without a switch (CPU work that never checkpoints, a blocking
    /// call); false for a likely deadlock or, under Seed, tasklets that only yield.
    /// </summary>
    public bool LongStep { get; }
}
