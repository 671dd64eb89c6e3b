using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// One case of a <see cref="Select"/>: a <see cref="ReceiveCase{T}"/> or a <see cref="SendCase{T}"/>, created by
/// <see cref="Channel{T}.ReceiveCase"/> and <see cref="Channel{T}.SendCase(T)"/> and reusable across selects.
/// </summary>
/// <remarks>
/// A case is also the queue node that a blocked select leaves in its channel, so a reused case allocates
/// nothing. A case may take part in one select at a time.
/// </remarks>
public abstract class SelectCase
{
    // Queue links and registration, written under the channel's lock while queued.
    internal SelectCase? _prev;
    internal SelectCase? _next;
    internal bool _queued;
    internal Waiter? _waiter;
    internal long _generation;
    internal int _caseIndex;

    // The channel, typed by the subclass (Channel<T>). Kept here rather than in the subclasses, so that a select reads
    // it with no virtual call (sorting, locking, withdrawing).
    private protected IChannel? _channel;

    private protected SelectCase()
    {
    }

    /// <summary>The channel this case operates on.</summary>
    internal IChannel ChannelCore => _channel!;

    /// <summary>Binds the case to <paramref name="channel"/> (the subclass passes its typed channel).</summary>
    private protected void BindChannel(IChannel channel)
    {
        // A cached node is usually bound to the same channel again: skip the store and its write barrier.
        if (!ReferenceEquals(_channel, channel))
        {
            _channel = channel;
        }
    }

    /// <summary>True for a send case (diagnostics).</summary>
    internal abstract bool IsSendCase { get; }

    /// <summary>A lock-free hint: false only if the case is not ready now. May say true for a case that is not.</summary>
    internal abstract bool MaybeReadyUnlocked();

    /// <summary>True when executing the case now would not block. Caller holds the channel's gate.</summary>
    internal abstract bool IsReadyLocked();

    /// <summary>
    /// Performs the ready case. Caller holds the gate. Returns the partner waiter to wake (already claimed and
    /// given its outcome), or null. Throws <see cref="ChannelClosedException"/> for a send on a closed channel.
    /// </summary>
    internal abstract Waiter? ExecuteLocked();

    /// <summary>Queues this case as a registration of <paramref name="waiter"/>'s wait. Caller holds the gate.</summary>
    internal abstract void EnqueueLocked(Waiter waiter, long generation, int caseIndex);

    /// <summary>The preference switch to apply after waking <paramref name="partner"/> from this case.</summary>
    internal abstract bool PartnerPreferred(Waiter partner);
}
