using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// The schedulers whose tasklets have used a wait source (made it, sent, received, locked, set...). They may end each
/// other's waits on it, so they are one deadlock group (Scheduler.Deadlock.cs): a group is declared deadlocked only
/// when all of its schedulers are stuck.
/// </summary>
/// <remarks>
/// <para>Grows only, by any thread, lock-free: the first party in <see cref="_first"/> (set once by a CAS from null),
/// the others in a copy-on-write array replaced by CAS. A use by a recorded party, the steady state, costs one
/// reference compare for the first party (the only one in most programs) and a scan of the short array for the
/// others; only a party's first use of the source takes the detector's lock, to merge the groups.</para>
/// <para>A party's groups are merged before its use claims anything (the record is made at the start of the
/// operation), so a detector that sees two schedulers in different groups knows neither has yet acted on a source
/// the other used. A use that begins after the detector's verdict is the documented blind spot (a primitive handed
/// to a party that had not used it yet); the kills that follow a verdict and that use race on the waiter's one
/// claim, so exactly one of them ends the wait and nothing is lost.</para>
/// </remarks>
internal struct Parties
{
    private Scheduler? _first;
    private Scheduler[]? _others;

    /// <summary>
    /// Records a use by a tasklet of <paramref name="scheduler"/>. Returns true on its first use (so the caller
    /// decides whether the group meets the outside world through this source: see <see cref="OpenAll"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Record(Scheduler scheduler)
    {
        // A plain read: a stale null or another scheduler only sends the call to the slow path, which rereads with
        // CAS semantics. A reference equal to the scheduler can only have been written for this scheduler.
        return !ReferenceEquals(_first, scheduler) && RecordSlow(scheduler);
    }

    /// <summary>
    /// The source has become reachable by plain code: every recorded party's group is open. The caller published
    /// that (a volatile write) and then a full fence before this reads the parties; a party appended concurrently
    /// does its CAS (a full fence) before it reads the caller's flag, so one of the two sees the other.
    /// </summary>
    public readonly void OpenAll()
    {
        if (Volatile.Read(ref Unsafe.AsRef(in _first)) is { } first)
        {
            Scheduler.OpenDeadlockGroup(first);
        }

        if (Volatile.Read(ref Unsafe.AsRef(in _others)) is { } others)
        {
            foreach (Scheduler other in others)
            {
                Scheduler.OpenDeadlockGroup(other);
            }
        }
    }

    /// <summary>
    /// True if <paramref name="scheduler"/> is the first party. A plain read: true can only come from a write of this
    /// very scheduler; a stale false only sends the caller to <see cref="Record"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool IsFirst(Scheduler scheduler) => ReferenceEquals(_first, scheduler);

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool RecordSlow(Scheduler scheduler)
    {
        Scheduler? first = Interlocked.CompareExchange(ref _first, scheduler, null);
        if (first is null)
        {
            return true; // the first party
        }

        if (ReferenceEquals(first, scheduler))
        {
            return false; // recorded by an earlier use
        }

        while (true)
        {
            Scheduler[]? others = Volatile.Read(ref _others);
            if (others is not null && Array.IndexOf(others, scheduler) >= 0)
            {
                return false; // an earlier use recorded it, and merged the groups before it returned
            }

            Scheduler[] grown;
            if (others is null)
            {
                grown = [scheduler];
            }
            else
            {
                grown = new Scheduler[others.Length + 1];
                others.CopyTo(grown, 0);
                grown[^1] = scheduler;
            }

            // Merge before publishing: a concurrent use by the same scheduler that finds it in the array returns at
            // once, and must find the groups merged already.
            Scheduler.JoinDeadlockGroups(first, scheduler);

            // Lost only to another party's append: reread and retry, so that no party is ever dropped.
            if (ReferenceEquals(Interlocked.CompareExchange(ref _others, grown, others), others))
            {
                return true;
            }
        }
    }
}
