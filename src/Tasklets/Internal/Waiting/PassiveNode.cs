namespace Tasklets.Internal;

/// <summary>
/// The registration of a wait that only its source ends: a semaphore's release, a wait group reaching zero, a
/// barrier's trip or break, a condition's notification, a thread's work. It is never a select case, so every question
/// of the select protocol answers "not ready", and nothing but the source (or the claim of a kill, timeout or
/// cancellation) ends a wait through it. A subclass says where it queues and which gate guards the queue.
/// </summary>
internal abstract class PassiveNode : SelectCase
{
    internal override string DescribeWait() => "wait on " + Source.Describe();

    // "Maybe" sends a caller to the locked path, which says no: the node has no state to read without the gate.
    internal sealed override bool MaybeReadyUnlocked() => true;

    internal sealed override bool IsReadyLocked() => false;

    internal sealed override bool TryExecuteLocked(out Waiter? partner)
    {
        partner = null;
        return false;
    }

    internal sealed override bool PartnerPreferred => false;
}
