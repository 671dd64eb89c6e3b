using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// The schedulers whose tasklets have used a wait source (made it, sent, received, locked, set...). They may end each
/// other's waits on it, so they are one deadlock group (Scheduler.Deadlock.cs): a group is declared deadlocked only
/// when all of its schedulers are stuck. The source keeps only its first party; every later party is merged into the
/// first one's group on its first use, so the group stands for them all.
/// </summary>
/// <remarks>
/// <para>Lock-free and bounded: one reference, set once by a CAS from null. A use by the first party, the steady
/// state of most programs, costs one reference compare; a use by another party walks two short parent chains
/// (<see cref="Scheduler.JoinDeadlockGroups"/>'s lock-free check) and takes the detector's lock only the first time
/// the two groups meet.</para>
/// <para>A party's group is merged before its use claims anything (the record is made at the start of the
/// operation), so a detector that sees two schedulers in different groups knows neither has yet acted on a source
/// the other used. A use that begins after the detector's verdict is the documented blind spot (a primitive handed
/// to a party that had not used it yet); the kills that follow a verdict and that use race on the waiter's one
/// claim, so exactly one of them ends the wait and nothing is lost.</para>
/// </remarks>
internal struct Parties
{
    private Scheduler? _first;

    /// <summary>
    /// Records a use by a tasklet of <paramref name="scheduler"/>. Returns true when that use made it a party: the
    /// first party, or a scheduler whose group this source's group had not met yet (so that the caller decides whether
    /// the group meets the outside world through this source: see <see cref="OpenAll"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool Record(Scheduler scheduler)
    {
        // A plain read: a stale null or another scheduler only sends the call to the slow path, which rereads with
        // CAS semantics. A reference equal to the scheduler can only have been written for this scheduler.
        return !ReferenceEquals(_first, scheduler) && RecordSlow(scheduler);
    }

    /// <summary>
    /// True if <paramref name="scheduler"/> is the first party. A plain read: true can only come from a write of this
    /// very scheduler; a stale false only sends the caller to <see cref="Record"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool IsFirst(Scheduler scheduler) => ReferenceEquals(_first, scheduler);

    /// <summary>
    /// The source has become reachable by plain code: every party's group (the first party's, which holds them all)
    /// is open. The caller published that (a volatile write) and then a full fence before this reads the first party;
    /// a new party merges (a lock, a full fence) or CASes itself in before it reads the caller's flag, so one of the two
    /// sees the other.
    /// </summary>
    public readonly void OpenAll()
    {
        if (Volatile.Read(ref Unsafe.AsRef(in _first)) is { } first)
        {
            Scheduler.OpenDeadlockGroup(first);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private bool RecordSlow(Scheduler scheduler)
    {
        Scheduler? first = Volatile.Read(ref _first) ?? Interlocked.CompareExchange(ref _first, scheduler, null);
        if (first is null)
        {
            return true; // the first party
        }

        // Another party: one group with the first (a lock-free check, then a merge the first time the groups meet).
        return !ReferenceEquals(first, scheduler) && Scheduler.JoinDeadlockGroups(first, scheduler);
    }
}
