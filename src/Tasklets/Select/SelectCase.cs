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
    // Queue links and registration, written under the source's lock while queued.
    internal SelectCase? _prev;
    internal SelectCase? _next;
    internal bool _queued;
    internal Waiter? _waiter;
    internal long _generation;
    internal int _caseIndex;
    internal Scheduler? _polledBy; // the scheduler whose use a Select.Try poll of this case last recorded (Select.Try)

    // Go's nil channel in a select (IsEnabled = false). Written by the case's user between selects; read once per
    // select, at its start (Select.Core copies it), so a select never sees it change under it.
    internal bool _disabled;

    // The wait source (a Channel<T>, a tasklet's joiners), typed by the subclass. Kept here rather than in the
    // subclasses, so that a select reads it with no virtual call (sorting, locking, withdrawing).
    private protected IWaitSource? _source;

    private protected SelectCase()
    {
    }

    /// <summary>For <see cref="SendCase{T}"/>: <paramref name="isSend"/> true.</summary>
    private protected SelectCase(bool isSend)
    {
        _isSend = isSend;
    }

    // True for a SendCase<T> (and its internal subclasses): its channel unlinks it from its senders' queue, not its
    // receivers' (Channel<T>.RemoveLocked). A field read instead of a type test against a class that is not sealed,
    // which takes a call to the runtime's cast helper on every withdrawal.
    internal readonly bool _isSend;

    /// <summary>
    /// Whether a select takes this case into account (default true). A disabled case is Go's nil channel in a select:
    /// it is never ready, never waits and never fires, while its index in the case list stays the same, so a loop can
    /// switch a case off (its channel is drained, its work is done) and on again without rebuilding the list.
    /// </summary>
    /// <remarks>
    /// Set it between selects: a select reads it once, at its start, and a select in progress keeps the cases it
    /// registered. A select whose cases are all disabled behaves as one with no case: <see cref="Select.Try(ReadOnlySpan{SelectCase})"/> returns
    /// -1, a timeout is waited for, and a wait with neither a timeout nor a token that can cancel it is refused.
    /// </remarks>
    /// <example><code>
    /// var fromA = a.ReceiveCase();
    /// var fromB = b.ReceiveCase();
    /// SelectCase[] cases = [fromA, fromB];
    /// while (fromA.IsEnabled || fromB.IsEnabled)
    /// {
    ///     int i = await Select.WaitAsync(cases);
    ///     var fired = i == 0 ? fromA : fromB;
    ///     if (fired.IsClosed) fired.IsEnabled = false; // that channel is done: stop selecting on it
    ///     else Handle(fired.Value);
    /// }
    /// </code></example>
    public bool IsEnabled
    {
        get => !_disabled;
        set => _disabled = !value;
    }

    /// <summary>
    /// True while a select that registered this case has not finished: the case is queued, or its wait was ended (a
    /// partner may have written the outcome into it) and its owner has not consumed it yet. Exact under the source's
    /// gate (the registration fields are written under it); a hint elsewhere.
    /// </summary>
    internal bool IsInUse => Volatile.Read(ref _queued) || (_waiter is { } waiter && waiter.IsInWait(_generation));

    /// <summary>The source this case operates on.</summary>
    internal IWaitSource Source => _source!;

    /// <summary>Binds the case to <paramref name="source"/> (the subclass passes its typed source).</summary>
    private protected void BindSource(IWaitSource source)
    {
        // A cached node is usually bound to the same source again: skip the store and its write barrier.
        if (!ReferenceEquals(_source, source))
        {
            _source = source;
        }
    }

    /// <summary>"receive on channel 'jobs' (...)": what a wait registered by this case waits for (Dump, deadlocks).</summary>
    internal abstract string DescribeWait();

    /// <summary>
    /// A lock-free hint, for <see cref="Select.Try(ReadOnlySpan{SelectCase})"/>: reads the case's state with volatile reads and returns false only
    /// if the case is not ready in that state. The state read is one quiescent state of the source if the caller read
    /// the same even <see cref="GateSequenceUnlocked"/> before and after (see <see cref="SpinGate"/>). May say
    /// true for a case that is not ready.
    /// </summary>
    internal abstract bool MaybeReadyUnlocked();

    /// <summary>The sequence word of the source's gate (<see cref="SpinGate.Sequence"/>), read through the typed source (no interface call).</summary>
    internal abstract int GateSequenceUnlocked();

    /// <summary>True when executing the case now would probably not block. A hint: see <see cref="TryExecuteLocked"/>. Caller holds the gate.</summary>
    internal abstract bool IsReadyLocked();

    /// <summary>
    /// Performs the case if it can proceed now. Caller holds the gate. Returns true when it took effect, with the
    /// partner waiter to wake (already claimed and given its outcome) or null. Returns false, having taken no effect,
    /// when it would block after all (a partner that <see cref="IsReadyLocked"/> saw was claimed by someone else
    /// since). Throws <see cref="ChannelClosedException"/> for a send on a closed channel.
    /// </summary>
    internal abstract bool TryExecuteLocked(out Waiter? partner);

    /// <summary>Queues this case as a registration of <paramref name="waiter"/>'s wait. Caller holds the gate.</summary>
    internal abstract void EnqueueLocked(Waiter waiter, long generation, int caseIndex);

    /// <summary>True when the source's preference favours the partner this case wakes (a switch after the handoff).</summary>
    internal abstract bool PartnerPreferred { get; }
}
