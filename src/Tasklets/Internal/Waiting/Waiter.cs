using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// The one mechanism every blocking operation parks on: a reusable <see cref="IValueTaskSource"/> whose waits
/// are ended by exactly one party (DESIGN.md, "The waiter core").
/// </summary>
/// <remarks>
/// <para>State is one word, <c>(generation &lt;&lt; 2) | phase</c>, changed by compare-and-swap only where
/// parties race:</para>
/// <code>
///   Idle(g) --BeginWait (owner)--&gt; Parked(g+1) --TryClaim (any thread, exactly one wins)--&gt; Claimed(g+1)
///   Claimed --MarkCompleted (resumer)--&gt; Completed --EndWait/GetResult (owner)--&gt; Idle(g+1)
/// </code>
/// <para>Whoever ends a wait (a partner with an item, a timer, a kill, a cancellation, a closing channel) must
/// win <see cref="TryClaim"/> first; it then writes the outcome with <see cref="SetOutcome"/> and calls
/// <see cref="Wake"/>, outside any channel lock. A loser leaves the waiter alone.</para>
/// <para>The registrations of a wait (queue nodes in channels) are recorded here so that the owner withdraws the
/// ones still queued when the wait ends (select's losing cases, a wait ended by kill or timeout).</para>
/// <para>A waiter derives from <see cref="SynchronizationContext"/> only so that a tasklet's waiter can double as
/// the tasklet's context (one object per tasklet, not two); <see cref="ExternalWaiter"/> never installs itself.</para>
/// </remarks>
internal abstract class Waiter : SynchronizationContext, IValueTaskSource, IValueTaskSource<int>
{
    private const long PhaseMask = 3;
    private const long PhaseIdle = 0;
    private const long PhaseParked = 1;
    private const long PhaseClaimed = 2;
    private const long PhaseCompleted = 3;

    // (generation << 2) | phase. Written by the owner in BeginWait/EndWait, by CAS in TryClaim.
    private long _state;

    // The outcome, written by the claimer before Wake, read by the owner after resumption.
    private int _firedIndex;
    private Exception? _exception;

    // Queue nodes registered by the current wait; owner-only. The first is kept in a field, so that a plain send or
    // receive (one registration) touches no array; a select's further cases go to the cold state's array. A ushort
    // (Select caps its cases at MaxRegistrations) so that the small fields of a waiter pack into one 8-byte block.
    private SelectCase? _registration0;
    private ushort _registrationCount;

    // What few waits need (select arrays, cancellation, join target): allocated on first use, owner-only.
    private WaiterColdState? _cold;

    // The queue node of plain sends and receives, reused across waits; owner-only. A second kind (a tasklet that
    // alternates between a send and a receive, or two item types) is kept in the cold state; a third evicts the older.
    private SelectCase? _node0;

    /// <summary>The most registrations one wait can have: the number of cases a select may have (Go's limit too).</summary>
    public const int MaxRegistrations = ushort.MaxValue;

    /// <summary>The generation of the current (or last) wait.</summary>
    public long Generation => Volatile.Read(ref _state) >> 2;

    /// <summary>True when no wait is in progress: the owner may begin one.</summary>
    public bool IsIdle => (Volatile.Read(ref _state) & PhaseMask) == PhaseIdle;

    /// <summary>True while the current wait can still be claimed.</summary>
    public bool IsParked => (Volatile.Read(ref _state) & PhaseMask) == PhaseParked;

    /// <summary>True between a claim and the owner's resumption: a wake-up is on its way (maybe still in another thread).</summary>
    public bool IsClaimed => (Volatile.Read(ref _state) & PhaseMask) == PhaseClaimed;

    /// <summary>True when the wait with generation <paramref name="generation"/> can still be claimed.</summary>
    public bool IsParkedWith(long generation) => Volatile.Read(ref _state) == ((generation << 2) | PhaseParked);

    /// <summary>The tasklet that owns this waiter, or null for a waiter of plain async code or an OS thread.</summary>
    public abstract Tasklet? Owner { get; }

    /// <summary>What the current wait is for (diagnostics, deadlock reports); no string is built per wait.</summary>
    public WaitKind WaitKind { get; private set; }

    /// <summary>The object waited on: a channel, a tasklet being joined, or null.</summary>
    /// <remarks>A send or receive waits on the channel of its one registration, so only a join stores its target.</remarks>
    public object? WaitTarget => WaitKind is WaitKind.Receive or WaitKind.Send ? _registration0?.ChannelCore : _cold?.JoinTarget;

    /// <summary>The cold state, allocated on first use. Owner only.</summary>
    private protected WaiterColdState Cold => _cold ??= new WaiterColdState();

    /// <summary>The cold state if it exists.</summary>
    private protected WaiterColdState? ColdOrNull => _cold;

    /// <summary>The scheduler's coarse clock when the current wait began (diagnostics: how long).</summary>
    public long WaitStart { get; set; }

    /// <summary>The number of registrations of the current wait, at most <see cref="MaxRegistrations"/>.</summary>
    public int RegistrationCount => _registrationCount;

    /// <summary>Registration <paramref name="index"/> of the current wait (diagnostics, deadlock detection). Owner or stopped scheduler only.</summary>
    public SelectCase? RegistrationAt(int index) => index == 0 ? _registration0 : _cold!.MoreRegistrations![index - 1].Node;

    /// <summary>Starts a new wait. Precondition: the waiter is idle. Returns the new generation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long BeginWait(WaitKind kind, object? target) => Begin(kind, target, PhaseParked);

    /// <summary>
    /// Starts a wait that is already claimed by its owner (a yield): no other party can end it, so no CAS is needed.
    /// Precondition: the waiter is idle. Returns the new generation.
    /// </summary>
    public long BeginClaimedWait(WaitKind kind) => Begin(kind, null, PhaseClaimed);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long Begin(WaitKind kind, object? target, long phase)
    {
        long state = _state;
        Debug.Assert((state & PhaseMask) == PhaseIdle, "a wait began on a waiter that is not idle");
        long generation = (state >> 2) + 1;
        _firedIndex = -1;
        _exception = null;
        _registrationCount = 0;
        WaitKind = kind;
        if (target is not null && kind == WaitKind.Join)
        {
            Cold.JoinTarget = target;
        }
        // Publish the phase last: from here on, if Parked, any thread may claim.
        Volatile.Write(ref _state, (generation << 2) | phase);
        return generation;
    }

    /// <summary>Records a queue node of the current wait, so that it is withdrawn if still queued when the wait ends.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddRegistration(SelectCase node)
    {
        if (_registrationCount == 0)
        {
            // Skipping the store when the node is the same as last time (a cached node) saves a write barrier.
            if (!ReferenceEquals(_registration0, node))
            {
                _registration0 = node;
            }

            _registrationCount = 1;
            return;
        }

        AddMoreRegistration(node);
    }

    private void AddMoreRegistration(SelectCase node)
    {
        WaiterColdState cold = Cold;
        cold.MoreRegistrations ??= new RegistrationSlot[4];
        if (_registrationCount - 1 == cold.MoreRegistrations.Length)
        {
            Array.Resize(ref cold.MoreRegistrations, cold.MoreRegistrations.Length * 2);
        }

        Debug.Assert(_registrationCount < MaxRegistrations, "Select validates the number of cases");
        cold.MoreRegistrations[_registrationCount - 1].Node = node;
        _registrationCount++;
    }

    /// <summary>Ends the wait of <paramref name="generation"/> if nobody else has: exactly one caller wins.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryClaim(long generation)
    {
        long parked = (generation << 2) | PhaseParked;
        return Interlocked.CompareExchange(ref _state, (generation << 2) | PhaseClaimed, parked) == parked;
    }

    /// <summary>Claims whatever wait is parked now (kill, deadline). Returns false when none is.</summary>
    public bool TryClaimCurrent()
    {
        long state = Volatile.Read(ref _state);
        return (state & PhaseMask) == PhaseParked && TryClaim(state >> 2);
    }

    /// <summary>Writes the outcome. Precondition: the caller won <see cref="TryClaim"/>; call before <see cref="Wake"/>.</summary>
    public void SetOutcome(int firedIndex, Exception? exception)
    {
        _firedIndex = firedIndex;
        _exception = exception;
    }

    /// <summary>The case index the claimer recorded (select), or -1.</summary>
    public int FiredIndex => _firedIndex;

    /// <summary>
    /// Makes the owner runnable again. Precondition: the caller won <see cref="TryClaim"/> and wrote the outcome;
    /// it holds no channel lock. <paramref name="front"/> puts a tasklet at the head of its run queue.
    /// </summary>
    public abstract void Wake(bool front);

    /// <summary>
    /// <see cref="Wake"/> called by <paramref name="current"/>, the running tasklet (or null): a waker on the owner's
    /// own scheduler thread queues it directly, without asking which thread this is.
    /// </summary>
    /// <remarks>A type test rather than a virtual call: it is on every handoff, and inlined it costs a compare.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WakeFrom(Tasklet? current, bool front)
    {
        if (this is TaskletWaiter tasklet)
        {
            tasklet.WakeOwnerFrom(current, front);
        }
        else
        {
            Wake(front);
        }
    }

    /// <summary>Claimed → Completed. Called by whoever resumes the owner.</summary>
    protected void MarkCompleted()
    {
        long state = Volatile.Read(ref _state);
        Debug.Assert((state & PhaseMask) is PhaseClaimed or PhaseCompleted);
        Volatile.Write(ref _state, (state & ~PhaseMask) | PhaseCompleted);
    }

    /// <summary>Binds a cancellation token to the current wait: cancelling it claims the wait with an <see cref="OperationCanceledException"/>.</summary>
    public void RegisterCancellation(long generation, CancellationToken cancellationToken)
    {
        Debug.Assert(generation != 0, "generations start at 1");
        WaiterColdState cold = Cold;
        cold.CancellationGeneration = generation;
        cold.Cancellation = cancellationToken.UnsafeRegister(
            static (state, token) =>
            {
                var waiter = (Waiter)state!;
                if (waiter.TryClaim(waiter._cold!.CancellationGeneration))
                {
                    waiter.SetOutcome(-1, new OperationCanceledException(Strings.OperationCanceled, token));
                    waiter.Wake(front: false);
                }
            },
            this);
    }

    /// <summary>
    /// Ends the current wait with fired index -1 after <paramref name="timeout"/> of real time: the timeout case of a
    /// select by a party that is not a tasklet (tasklets use their scheduler's timers).
    /// </summary>
    public void RegisterTimeout(long generation, TimeSpan timeout)
    {
        ITimer? timer = null;
        timer = TimeProvider.System.CreateTimer(
            _ =>
            {
                if (TryClaim(generation))
                {
                    SetOutcome(-1, null);
                    Wake(front: false);
                }

                timer?.Dispose();
            },
            null,
            timeout,
            Timeout.InfiniteTimeSpan);
    }

    /// <summary>A queue node of type <typeparamref name="TNode"/> owned by this waiter, reused across waits.</summary>
    /// <remarks>Node types are sealed, so each check is one type-handle comparison.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public TNode RentNode<TNode>()
        where TNode : SelectCase, new()
    {
        if (_node0 is TNode first)
        {
            return first;
        }

        return RentOtherNode<TNode>();
    }

    // Not the kind of the first slot: the cold state's slot, or a new node (the first one goes to the waiter's slot).
    private TNode RentOtherNode<TNode>()
        where TNode : SelectCase, new()
    {
        if (_node0 is not null)
        {
            WaiterColdState cold = Cold;
            if (cold.Node1 is TNode second)
            {
                return second;
            }

            cold.Node1 = _node0;
        }

        var node = new TNode();
        _node0 = node;
        return node;
    }

    /// <summary>
    /// Ends the completed wait whose token is <paramref name="token"/>: withdraws registrations still queued,
    /// releases the cancellation registration, returns the waiter to idle, and throws the outcome's exception.
    /// </summary>
    public int EndWait(short token)
    {
        long state = Volatile.Read(ref _state);
        if ((short)(state >> 2) != token || (state & PhaseMask) != PhaseCompleted)
        {
            ThrowHelper.ThrowInvalidOperation(Strings.StaleAwait);
        }

        // A plain send or receive that a partner completed: its one node, the cached one, was dequeued by that
        // partner. WithdrawRegistrations would only reset the count (a cached node stays referenced); doing that
        // here keeps the common case out of the call.
        if (_registrationCount == 1 && ReferenceEquals(_registration0, _node0) && !_node0!._queued)
        {
            _registrationCount = 0;
        }
        else if (_registrationCount != 0)
        {
            WithdrawRegistrations();
        }

        if (_cold is { CancellationGeneration: not 0 } cancelled)
        {
            cancelled.Cancellation.Dispose(); // waits for a running callback, so it cannot touch a later wait
            cancelled.Cancellation = default;
            cancelled.CancellationGeneration = 0;
        }

        WaitKind = WaitKind.None;
        if (_cold is { JoinTarget: not null } withTarget)
        {
            withTarget.JoinTarget = null;
        }
        int fired = _firedIndex;
        Exception? exception = _exception;
        _exception = null;
        Volatile.Write(ref _state, (state & ~PhaseMask) | PhaseIdle);
        if (this is ExternalWaiter external)
        {
            external.ReturnToThreadCache();
        }

        if (exception is not null)
        {
            ExceptionDispatchInfo.Throw(exception);
        }

        return fired;
    }

    // Read after resumption: the partner that dequeued a node published _queued = false under the channel lock
    // before waking us. A node still queued belongs to a losing case or a wait that was ended by kill, timeout or
    // cancellation: remove it so it can never match a partner. Nodes of one channel are withdrawn under one
    // acquisition of its gate (a select over several cases of the same channel).
    private void WithdrawRegistrations()
    {
        SelectCase first = _registration0!;
        if (!ReferenceEquals(first, _node0) && !ReferenceEquals(first, _cold?.Node1))
        {
            _registration0 = null; // a select case is the user's: do not keep it (and its channel) alive
        }

        int more = _registrationCount - 1;
        _registrationCount = 0;
        Span<RegistrationSlot> rest = more == 0 ? default : _cold!.MoreRegistrations.AsSpan(0, more);
        if (first._queued)
        {
            first.ChannelCore.WithdrawAll(first, rest);
        }

        for (int i = 0; i < rest.Length; i++)
        {
            SelectCase? node = rest[i].Node;
            if (node is not null && node._queued)
            {
                node.ChannelCore.WithdrawAll(node, rest[(i + 1)..]);
            }
        }

        rest.Clear();
    }

    /// <summary>The status the awaiter sees.</summary>
    public ValueTaskSourceStatus GetStatus(short token)
    {
        long state = Volatile.Read(ref _state);
        if ((short)(state >> 2) != token)
        {
            ThrowHelper.ThrowInvalidOperation(Strings.StaleAwait);
        }

        if ((state & PhaseMask) != PhaseCompleted)
        {
            return ValueTaskSourceStatus.Pending;
        }

        return _exception switch
        {
            null => ValueTaskSourceStatus.Succeeded,
            OperationCanceledException => ValueTaskSourceStatus.Canceled,
            _ => ValueTaskSourceStatus.Faulted,
        };
    }

    /// <inheritdoc/>
    public abstract void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags);

    void IValueTaskSource.GetResult(short token) => EndWait(token);

    int IValueTaskSource<int>.GetResult(short token) => EndWait(token);

    /// <summary>The awaitable for the current wait.</summary>
    public ValueTask AsValueTask() => new(this, (short)Generation);

    /// <summary>The awaitable for the current wait, producing the fired case index.</summary>
    public ValueTask<int> AsValueTaskOfInt() => new(this, (short)Generation);
}

/// <summary>The fields of a <see cref="Waiter"/> that few waits use, kept apart so that every tasklet does not carry them.</summary>
internal sealed class WaiterColdState
{
    /// <summary>Registrations 1.. of a select; registration 0 is in the waiter.</summary>
    public RegistrationSlot[]? MoreRegistrations;

    /// <summary>The cancellation registration of the current wait (valid while <see cref="CancellationGeneration"/> is not 0).</summary>
    public CancellationTokenRegistration Cancellation;

    /// <summary>The generation the cancellation callback claims; 0 when the current wait has no registration.</summary>
    public long CancellationGeneration;

    /// <summary>The tasklet a join waits for; null otherwise.</summary>
    public object? JoinTarget;

    /// <summary>A stored continuation that is not the async-method one every await passes (TaskletWaiter); null otherwise.</summary>
    public Action<object?>? OtherContinuation;

    /// <summary>The second cached queue node of plain sends and receives (the first is in the waiter).</summary>
    public SelectCase? Node1;
}

/// <summary>
/// A registration in <see cref="Waiter"/>'s array: storing a reference into a one-field struct array needs no array
/// covariance check, unlike a store into <c>SelectCase[]</c>.
/// </summary>
internal struct RegistrationSlot
{
    public SelectCase? Node;
}

/// <summary>What a waiter waits for; turned into words only when someone asks (Dump, deadlock report).</summary>
internal enum WaitKind : byte
{
    None,
    Receive,
    Send,
    Select,
    Sleep,
    Join,
    Yield,
}
