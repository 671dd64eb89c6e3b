using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A send case for <see cref="Select"/>, reusable: set <see cref="Item"/> before each select to send another value.
/// </summary>
/// <typeparam name="T">The channel's item type.</typeparam>
[DebuggerDisplay("send {Item} on {Channel}")]
public class SendCase<T> : SelectCase
{
    internal SendCase()
        : base(isSend: true)
    {
    }

    internal SendCase(Channel<T> channel, T item)
        : base(isSend: true)
    {
        _source = channel;
        Item = item;
    }

    /// <summary>The channel this case sends on.</summary>
    public Channel<T> Channel => Typed;

    // Set only to a Channel<T> (constructor, Bind), so no type check is needed.
    private Channel<T> Typed => Unsafe.As<Channel<T>>(_source!);

    /// <summary>The item to send. Settable, so that one case serves many selects.</summary>
    public T Item { get; set; } = default!;

    internal void Bind(Channel<T> channel) => BindSource(channel);

    internal override string DescribeWait() => "send on " + Typed.Describe();

    internal override bool IsReadyLocked() => Typed.IsSendReadyLocked();

    internal override bool MaybeReadyUnlocked() => Typed.MaybeSendReady();

    internal override int GateSequenceUnlocked() => Typed.GateSequence;

    internal override bool TryExecuteLocked(out Waiter? partner) => Typed.TrySendLocked(Item, out partner);

    internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        => Typed.EnqueueSenderLocked(this, waiter, generation, caseIndex);

    internal override bool PartnerPreferred => Typed.Preference == ChannelPreference.Receiver;
}
