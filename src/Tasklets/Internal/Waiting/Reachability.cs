namespace Tasklets.Internal;

/// <summary>
/// Whether a party the deadlock detector cannot see may end waits on a primitive (DESIGN.md, "Deadlock"): one used by
/// such a party (plain code, an OS thread, a tasklet of a scheduler outside Run()), or made outside any tasklet except
/// in a deterministic scheduler's closed world. One field of each coordination primitive's.
/// </summary>
/// <remarks>
/// Lock-free: the used-outside flag is set once and never cleared, by any thread. A detector that reads it a moment
/// before a concurrent use sets it is safe: that use is by a party outside the stuck schedulers, which is not stuck
/// and will end or post the wait, so the scheduler's inbox (checked again before a deadlock is declared) sees it.
/// </remarks>
internal struct Reachability
{
    private readonly bool _createdOutside;
    private volatile bool _usedOutside;

    private Reachability(bool createdOutside, bool usedOutside)
    {
        _createdOutside = createdOutside;
        _usedOutside = usedOutside;
    }

    /// <summary>The reachability of a primitive that <paramref name="creator"/> (null: not a tasklet) makes now.</summary>
    public static Reachability MadeBy(Tasklet? creator)
        => new(createdOutside: creator is null, usedOutside: creator is not null && !creator.Scheduler.IsTrackedForDeadlock);

    /// <summary>The value of <see cref="IWaitSource.IsExternal"/>.</summary>
    public readonly bool IsExternal => WaitSources.IsExternal(_usedOutside, _createdOutside);

    /// <summary>Records a use by <paramref name="current"/>: reachable from outside if it is not a tasklet of a Run() scheduler.</summary>
    public void MarkUsedBy(Tasklet? current)
    {
        if (!_usedOutside && (current is null || !current.Scheduler.IsTrackedForDeadlock))
        {
            _usedOutside = true;
        }
    }
}
