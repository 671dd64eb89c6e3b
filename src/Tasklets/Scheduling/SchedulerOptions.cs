using Tasklets.Internal;

namespace Tasklets;

/// <summary>Options of a <see cref="Scheduler"/>.</summary>
public sealed record SchedulerOptions
{
    /// <summary>
    /// The clock of the scheduler's timers (<see cref="Tasklet.Sleep(TimeSpan)"/>, timeouts). Default
    /// <see cref="TimeProvider.System"/>; in deterministic mode (with <see cref="Seed"/>) a virtual clock unless this is set.
    /// </summary>
    public TimeProvider? Time { get; init; }

    /// <summary>
    /// Set for deterministic mode: a virtual clock that jumps to the next timer when nothing is ready, and seeded
    /// choices in select. The same seed gives the same interleaving.
    /// </summary>
    public int? Seed { get; init; }

    /// <summary>With <see cref="Seed"/>: pick a seeded-random ready tasklet at each step instead of FIFO, to explore interleavings.</summary>
    public bool RandomizeOrder { get; init; }

    /// <summary>On deadlock, kill the blocked tasklets (so their <c>finally</c> blocks run) before throwing. Default true.</summary>
    public bool KillOnDeadlock { get; init; } = true;

    /// <summary>How long a tasklet may run before <see cref="Tasklet.Checkpoint"/> yields. Default 10 ms.</summary>
    public TimeSpan TimeSlice { get; init; } = TimeSpan.FromMilliseconds(10);

    /// <summary>
    /// Called on the scheduler's thread, once, for a tasklet that died failed while nobody joined it and that nobody
    /// observed since: at the end of the pass after the one it died in, or as soon as nothing is ready, whichever comes
    /// first (a join in the next pass observes it, and it is not reported; a <see cref="TaskletGroup"/> or a
    /// <see cref="Tasklet.WhenAll(Tasklet[])"/> that will rethrow it holds the report until it ends). So a
    /// long-running service hears of the failure while it runs instead of when <see cref="Scheduler.Run()"/> returns.
    /// A notification: the Run method still reports the failure unless a join observes it later. An exception the
    /// callback throws is reported by the Run method too. Kills are not failures. See docs/semantics.md.
    /// </summary>
    public Action<Tasklet, Exception>? OnUnobservedFailure { get; init; }

    private readonly TimeSpan _stallTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long a scheduler inside <see cref="Scheduler.Run()"/> may go without progress before it raises
    /// <see cref="Scheduler.Stalled"/>: one step without a switch, a likely deadlock, or (under <see cref="Seed"/>)
    /// tasklets that only yield. Default 10 s; <see cref="Timeout.InfiniteTimeSpan"/> turns stall reports off.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">Set to zero or a negative value other than <see cref="Timeout.InfiniteTimeSpan"/>.</exception>
    public TimeSpan StallTimeout
    {
        get => _stallTimeout;
        init
        {
            if (value <= TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
            {
                ThrowHelper.ThrowArgumentOutOfRange(
                    nameof(StallTimeout),
                    value,
                    "StallTimeout must be positive (how long without progress before Scheduler.Stalled is raised), or Timeout.InfiniteTimeSpan to turn stall reports off.");
            }

            _stallTimeout = value;
        }
    }
}
