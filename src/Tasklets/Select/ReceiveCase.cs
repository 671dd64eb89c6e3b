using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A receive case for <see cref="Select"/>, reusable: after the select returns its index,
/// <see cref="Value"/> holds the received item, or <see cref="IsClosed"/> is true when the channel was closed
/// and drained.
/// </summary>
/// <typeparam name="T">The channel's item type.</typeparam>
[DebuggerDisplay("receive on {Channel}")]
public class ReceiveCase<T> : SelectCase
{
    internal ReceiveCase()
    {
    }

    internal ReceiveCase(Channel<T> channel)
    {
        _source = channel;
    }

    /// <summary>The channel this case receives from.</summary>
    public Channel<T> Channel => Typed;

    // Set only to a Channel<T> (constructor, Bind), so no type check is needed.
    private Channel<T> Typed => Unsafe.As<Channel<T>>(_source!);

    /// <summary>The item received when this case fired; default when it fired because the channel is closed.</summary>
    public T Value { get; internal set; } = default!;

    /// <summary>True when this case fired because the channel is closed and drained (Go's <c>ok == false</c>).</summary>
    public bool IsClosed { get; internal set; }

    /// <summary>
    /// When this case fired because the channel is closed (<see cref="IsClosed"/>), the error it was closed with
    /// (<see cref="Channel{T}.Close(Exception?)"/>), or null for a normal close; null when it fired with an item.
    /// </summary>
    public Exception? CloseError => IsClosed ? Typed.CloseError : null;

    /// <summary>True for the internal node of a plain ReceiveAsync, which throws on close instead of reporting it.</summary>
    internal virtual bool ThrowsOnClosed => false;

    internal void Bind(Channel<T> channel) => BindSource(channel);

    internal override string DescribeWait() => "receive on " + Typed.Describe();

    internal override bool IsReadyLocked() => Typed.IsReceiveReadyLocked();

    internal override bool MaybeReadyUnlocked() => Typed.MaybeReceiveReady();

    internal override int GateSequenceUnlocked() => Typed.GateSequence;

    internal override bool TryExecuteLocked(out Waiter? partner)
    {
        if (!Typed.TryReceiveLocked(out T value, out bool closed, out partner, out Exception? error))
        {
            return false;
        }

        if (error is not null)
        {
            throw error;
        }

        Value = value;
        IsClosed = closed;
        return true;
    }

    internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        => Typed.EnqueueReceiverLocked(this, waiter, generation, caseIndex);

    internal override bool PartnerPreferred => Typed.Preference == ChannelPreference.Sender;
}
