using System.Diagnostics;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A send case for <see cref="Select"/>, reusable: set <see cref="Item"/> before each select to send another value.
/// </summary>
/// <typeparam name="T">The channel's item type.</typeparam>
[DebuggerDisplay("send {Item} on {Channel}")]
public class SendCase<T> : SelectCase
{
    private Channel<T>? _channel;

    internal SendCase()
    {
    }

    internal SendCase(Channel<T> channel, T item)
    {
        _channel = channel;
        Item = item;
    }

    /// <summary>The channel this case sends on.</summary>
    public Channel<T> Channel => _channel!;

    /// <summary>The item to send. Settable, so that one case serves many selects.</summary>
    public T Item { get; set; } = default!;

    internal void Bind(Channel<T> channel)
    {
        // A cached node is usually bound to the same channel again: skip the store and its write barrier.
        if (!ReferenceEquals(_channel, channel))
        {
            _channel = channel;
        }
    }

    internal override IChannel ChannelCore => _channel!;

    internal override bool IsSendCase => true;

    internal override bool IsReadyLocked() => _channel!.IsSendReadyLocked();

    internal override bool MaybeReadyUnlocked() => _channel!.MaybeSendReady();

    internal override Waiter? ExecuteLocked()
    {
        bool done = _channel!.TrySendLocked(Item, out Waiter? partner);
        Debug.Assert(done, "executed a send case that was not ready");
        return partner;
    }

    internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        => _channel!.EnqueueSenderLocked(this, waiter, generation, caseIndex);

    internal override bool PartnerPreferred(Waiter partner) => _channel!.Preference == ChannelPreference.Receiver;
}
