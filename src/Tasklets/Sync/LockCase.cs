using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A case for <see cref="Select"/> that acquires an <see cref="AsyncLock"/>, reusable: after the select returned its
/// index, <see cref="Releaser"/> holds the releaser of the acquisition, which the caller must dispose once.
/// </summary>
/// <example><code>
/// var jobCase = jobs.ReceiveCase();
/// var lockCase = dbLock.LockCase();
/// if (await Select.WaitAsync(jobCase, lockCase) == 1)
/// {
///     using (lockCase.Releaser) { ... }
/// }
/// </code></example>
/// <remarks>
/// The case is ready when the lock is free (then nobody waits for it) or, for a reentrant lock, held by the selecting
/// tasklet. A blocked select queues the case behind the lock's other waiters (FIFO); if another case fires first, or
/// the select ends by kill, timeout or cancellation, the lock was not acquired. A non-reentrant lock that the selecting
/// tasklet holds is never ready (as <see cref="AsyncLock.TryLock"/> returns false), so a select that only waits for it
/// waits forever, which deadlock detection reports.
/// </remarks>
[DebuggerDisplay("acquire of {Lock}")]
public class LockCase : SelectCase
{
    // The party the lock is granted to (the selecting tasklet, or null for a party that is not a tasklet), and what a
    // condition's reacquire restores (0: a fresh acquisition). Written under the lock's gate when the node is queued,
    // read under it by the release that grants the lock.
    internal Tasklet? _party;
    internal long _restoreToken;
    internal int _restoreDepth;

    internal LockCase()
    {
    }

    internal LockCase(AsyncLock owner)
    {
        _source = owner;
    }

    /// <summary>The lock this case acquires.</summary>
    public AsyncLock Lock => Typed;

    /// <summary>
    /// The releaser of the acquisition, once this case fired; dispose it to release the lock. Written by the party that
    /// granted the lock before the select resumed, so it is valid when the select returns this case's index.
    /// </summary>
    public AsyncLock.Releaser Releaser { get; internal set; }

    // Set only to an AsyncLock (constructor, Bind), so no type check is needed.
    private AsyncLock Typed => Unsafe.As<AsyncLock>(_source!);

    internal void Bind(AsyncLock owner) => BindSource(owner);

    internal override string DescribeWait() => "acquire of " + Typed.Describe();

    internal override bool MaybeReadyUnlocked() => Typed.MaybeAcquirableUnlocked();

    internal override int GateSequenceUnlocked() => Typed.GateSequence;

    internal override bool IsReadyLocked() => Typed.IsAcquirableLocked(Tasklet.CurrentOrNull);

    internal override bool TryExecuteLocked(out Waiter? partner)
    {
        partner = null; // acquiring wakes nobody
        if (Typed.TryAcquireLocked(Tasklet.CurrentOrNull, 0, 0, out AsyncLock.Releaser releaser) != AsyncLock.Acquisition.Acquired)
        {
            return false;
        }

        Releaser = releaser;
        return true;
    }

    internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        => Typed.EnqueueLocked(this, Tasklet.CurrentOrNull, 0, 0, waiter, generation, caseIndex);

    internal override bool PartnerPreferred => false;
}
