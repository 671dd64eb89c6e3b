namespace Tasklets.Internal;

/// <summary>
/// Who may end waits on a primitive (DESIGN.md, "Deadlock"): a party the deadlock detector cannot see (plain code, an
/// OS thread, a tasklet of a scheduler outside Run()) once one used it, or, except in a deterministic scheduler's
/// closed world, because it was made outside any tasklet; and the schedulers whose tasklets used it, which form one
/// deadlock group (<see cref="Parties"/>). One field of each coordination primitive's.
/// </summary>
/// <remarks>
/// Lock-free: the used-outside flag is set once and never cleared, by any thread, before the use it records claims
/// anything; groups only merge (<see cref="Parties"/>). The detector reads both while every scheduler it is about to
/// declare is stuck. A use that set them earlier is seen. A use that begins after the read is by a party that had not
/// used the primitive when the verdict was taken, the documented blind spot; the kills that follow the verdict and
/// that use race on the waiter's one claim, so exactly one of them ends the wait and nothing is lost.
/// </remarks>
internal struct Reachability
{
    private bool _createdOutside; // written once, by MadeBy
    private volatile bool _usedOutside;
    private Parties _parties;

    /// <summary>The reachability of a primitive that <paramref name="creator"/> (null: not a tasklet) makes now.</summary>
    public static Reachability MadeBy(Tasklet? creator)
    {
        // Not yet shared with any other thread: the copy returned is the only one.
        var reach = new Reachability { _createdOutside = creator is null };
        reach.MarkUsedBy(creator, countsOutside: false);
        return reach;
    }

    /// <summary>The value of <see cref="IWaitSource.IsExternal"/>.</summary>
    public readonly bool IsExternal => WaitSources.IsExternal(_usedOutside, _createdOutside);

    /// <summary>Records a use by <paramref name="current"/>: reachable from outside if it is not a tasklet of a Run() scheduler.</summary>
    public void MarkUsedBy(Tasklet? current) => MarkUsedBy(current, countsOutside: true);

    private void MarkUsedBy(Tasklet? current, bool countsOutside)
    {
        if (current is null)
        {
            // Plain code; the making of a primitive outside any tasklet is _createdOutside instead.
            if (countsOutside && !_usedOutside)
            {
                BecomeUsedOutside();
            }

            return;
        }

        Scheduler scheduler = current.Scheduler;
        if (!_usedOutside && !scheduler.IsTrackedForDeadlock)
        {
            BecomeUsedOutside();
        }

        // A new party of a primitive plain code holds meets the outside world through it: its group is open (see
        // Channel.MarkUsedByTaskletSlow; Record's CAS is a full fence before the flag is read).
        if (_parties.Record(scheduler) && (_usedOutside || (_createdOutside && !scheduler.IsDeterministic)))
        {
            Scheduler.OpenDeadlockGroup(scheduler);
        }
    }

    // The flag, then a full fence, then the parties: the mirror image of a new party's CAS, then the flag.
    private void BecomeUsedOutside()
    {
        _usedOutside = true;
        Interlocked.MemoryBarrier();
        _parties.OpenAll();
    }
}
