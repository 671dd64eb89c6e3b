using System.Diagnostics;
using System.Numerics;
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
/// <para><b>One way to park</b>: <see cref="ForParty"/> (the tasklet's own waiter, or a pooled external one),
/// <see cref="BeginWait"/> under the source locks, one queue node per registration (<see cref="AddRegistration"/>),
/// the locks released, then <see cref="Commit"/> (deadline, cancellation, diagnostics). Nothing between
/// <see cref="BeginWait"/> and the release of the locks can throw; a failure inside <see cref="Commit"/> ends the wait
/// with that failure, unless another party ended it first.</para>
/// <para><b>One way to end a wait</b>: claim (<see cref="TryClaim"/>; exactly one party wins), write the outcome
/// (<see cref="SetOutcome"/>), wake (<see cref="Wake"/>) outside any source lock. Sources that pair a party with a node
/// under their lock (channels, joins) claim there with <see cref="WaitQueue.DequeueAndClaim"/> and wake after
/// releasing it; everything else (timers, kills, cancellations) calls <see cref="TryEnd"/>, which does all three. A
/// loser leaves the waiter alone and keeps what it had (a partner keeps its item, a kill stays pending). Whatever
/// a claimer wants to write is decided before it claims: a claim is never followed by "nothing to do".</para>
/// <para><b>One way to hand off</b>: after a partner's claim, <see cref="WakePartner"/> wakes it and applies the
/// source's preference.</para>
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

    /// <summary>
    /// The phase of the current wait, from one read of the state. Readers that decide on the phase (deadlock
    /// detection) read it once: a claim between two reads ("claimed?", then "parked?") would look like neither.
    /// </summary>
    public WaitPhase Phase => (WaitPhase)(Volatile.Read(ref _state) & PhaseMask);

    /// <summary>True when the current wait has a cancellation token bound: whoever holds its source may end it. Owner's scheduler thread.</summary>
    public bool HasCancellation => _cold is { CancellationGeneration: not 0 };

    /// <summary>True from the begin of wait <paramref name="generation"/> until its owner consumed its outcome.</summary>
    public bool IsInWait(long generation)
    {
        long state = Volatile.Read(ref _state);
        return state >> 2 == generation && (state & PhaseMask) != PhaseIdle;
    }

    /// <summary>True when the wait with generation <paramref name="generation"/> can still be claimed.</summary>
    public bool IsParkedWith(long generation) => Volatile.Read(ref _state) == ((generation << 2) | PhaseParked);

    /// <summary>
    /// True while an async method awaits the current wait (its continuation, the runtime's async-method delegate, is
    /// stored) and has not been resumed. Other continuations (<c>AsTask()</c>, custom awaiters) do not count: code
    /// behind them is foreign to the scheduler, so deadlock detection and interrupts treat such a wait as stored.
    /// </summary>
    public abstract bool IsAwaited { get; }

    /// <summary>The tasklet that owns this waiter, or null for a waiter of plain async code or an OS thread.</summary>
    public abstract Tasklet? Owner { get; }

    /// <summary>What the current wait is for (diagnostics, deadlock reports); no string is built per wait.</summary>
    public WaitKind WaitKind { get; private set; }

    /// <summary>The cold state, allocated on first use. Owner only.</summary>
    private protected WaiterColdState Cold => _cold ??= new WaiterColdState();

    /// <summary>The cold state if it exists.</summary>
    private protected WaiterColdState? ColdOrNull => _cold;

    /// <summary>The scheduler's coarse clock when the current wait began (diagnostics: how long).</summary>
    public long WaitStart { get; set; }

    /// <summary>The number of registrations of the current wait, at most <see cref="MaxRegistrations"/>.</summary>
    public int RegistrationCount => _registrationCount;

    /// <summary>
    /// Registration <paramref name="index"/> of the current wait, or null (diagnostics, deadlock detection). Exact from
    /// the owner's thread or while its scheduler is stopped; from another thread (Dump) a best-effort read that may
    /// see a registration of a neighbouring wait, never throws.
    /// </summary>
    public SelectCase? RegistrationAt(int index)
    {
        if (index == 0)
        {
            return _registration0;
        }

        RegistrationSlot[]? more = _cold?.MoreRegistrations;
        return more is not null && (uint)(index - 1) < (uint)more.Length ? more[index - 1].Node : null;
    }

    /// <summary>Makes room for <paramref name="count"/> registrations, so that adding them cannot fail half-way.</summary>
    public void ReserveRegistrations(int count)
    {
        if (count > 1)
        {
            WaiterColdState cold = Cold;
            if (cold.MoreRegistrations is null || cold.MoreRegistrations.Length < count - 1)
            {
                Array.Resize(ref cold.MoreRegistrations, Math.Max(4, (int)BitOperations.RoundUpToPowerOf2((uint)(count - 1))));
            }
        }
    }

    /// <summary>Starts a new wait. Precondition: the waiter is idle. Returns the new generation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public long BeginWait(WaitKind kind) => Begin(kind, PhaseParked);

    /// <summary>
    /// Starts a wait that is already claimed by its owner (a yield): no other party can end it, so no CAS is needed.
    /// Precondition: the waiter is idle. Returns the new generation.
    /// </summary>
    public long BeginClaimedWait(WaitKind kind) => Begin(kind, PhaseClaimed);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long Begin(WaitKind kind, long phase)
    {
        long state = _state;
        if ((state & PhaseMask) != PhaseIdle)
        {
            // Checked in Release too: a second wait on a busy waiter would make its first one unclaimable.
            ThrowHelper.ThrowInvalidOperation(Strings.WaiterBusy);
        }

        long generation = (state >> 2) + 1;
        _firedIndex = -1;
        _exception = null;
        _registrationCount = 0;
        WaitKind = kind;
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

    // Precondition: ReserveRegistrations made room (Select does it before BeginWait), so nothing here can throw.
    private void AddMoreRegistration(SelectCase node)
    {
        RegistrationSlot[] more = _cold!.MoreRegistrations!;
        more[_registrationCount - 1].Node = node; // bounds-checked: a missing reservation fails here, before any claim
        _registrationCount++;
    }

    /// <summary>Ends the wait of <paramref name="generation"/> if nobody else has: exactly one caller wins.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryClaim(long generation)
    {
        long parked = (generation << 2) | PhaseParked;
        // Test before the compare-and-swap: a wait leaves Parked(generation) only forward (Claimed, Completed, Idle,
        // then a later generation), never back, so a read that sees any other state proves that the swap would fail;
        // skipping it changes nothing but the cost of a locked instruction (a partner meets the stale nodes of a
        // select's losing cases that way). A read that sees Parked decides nothing: the swap does.
        return Volatile.Read(ref _state) == parked
            && Interlocked.CompareExchange(ref _state, (generation << 2) | PhaseClaimed, parked) == parked;
    }

    /// <summary>Claims whatever wait is parked now (kill, deadline). Returns false when none is.</summary>
    public bool TryClaimCurrent()
    {
        long state = Volatile.Read(ref _state);
        return (state & PhaseMask) == PhaseParked && TryClaim(state >> 2);
    }

    /// <summary>
    /// Ends the wait of <paramref name="generation"/> with this outcome if nobody else has: claim, outcome, wake. For
    /// parties that need no source lock to decide (timers, kills, cancellations, a failed commit). Returns false,
    /// having changed nothing, when another party won.
    /// </summary>
    public bool TryEnd(long generation, int firedIndex, Exception? exception, bool front)
    {
        if (!TryClaim(generation))
        {
            return false;
        }

        SetOutcome(firedIndex, exception);
        Wake(front);
        return true;
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

    /// <summary>
    /// The one end of a handoff: wakes <paramref name="partner"/>, whose wait the caller claimed and gave its outcome
    /// under a source lock it has released since. With <paramref name="preferPartner"/> (the source's
    /// <see cref="ChannelPreference"/> favours the partner, and the operation may switch) and a partner on the
    /// caller's own scheduler, the partner goes to the front of the run queue and the method returns true: the
    /// caller must then yield (<see cref="Tasklet.YieldCore"/>), so that the partner runs first.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool WakePartner(Waiter partner, Tasklet? current, bool preferPartner)
    {
        // One WakeFrom call site: this is inlined into every send and receive, and a second copy of the wake would
        // push the callers' async methods past the JIT's inlining budget.
        bool switchTo = preferPartner && current is not null && CanSwitchTo(partner, current);
        partner.WakeFrom(current, switchTo);
        return switchTo;
    }

    // A switch needs the partner on the caller's scheduler, and the caller's own waiter free for the yield.
    private static bool CanSwitchTo(Waiter partner, Tasklet current)
        => partner.Owner is { } other && ReferenceEquals(other.Scheduler, current.Scheduler) && current.Waiter.IsIdle;

    /// <summary>Claimed → Completed. Called by whoever resumes the owner.</summary>
    protected void MarkCompleted()
    {
        long state = Volatile.Read(ref _state);
        if ((state & PhaseMask) != PhaseClaimed)
        {
            // Checked in Release too: resuming a wait nobody claimed would hand the owner an outcome nobody wrote.
            ThrowHelper.ThrowInvalidOperation(Strings.ResumedUnclaimed);
        }

        Volatile.Write(ref _state, (state & ~PhaseMask) | PhaseCompleted);
    }

    /// <summary>
    /// The waiter a party parks on: a tasklet's own waiter when it is free, otherwise (plain code, an OS thread, or a
    /// tasklet whose waiter is busy with a stored, not yet awaited operation) a pooled <see cref="ExternalWaiter"/>,
    /// known to the tasklet so that a kill or a timeout can still end that wait.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Waiter ForParty(Tasklet? current)
        => current is not null && current._waiter.IsIdle ? current._waiter : ExternalWaiter.RentFor(current);

    /// <summary>Gives back a waiter that <see cref="ForParty"/> handed out for a wait that was never begun. Idle only.</summary>
    public void ReleaseUnused()
    {
        if (this is ExternalWaiter external)
        {
            external.Release();
        }
    }

    /// <summary>
    /// Finishes parking, after the registrations are queued and every source lock is released: arms the deadline
    /// (<paramref name="timeout"/> ends the wait with fired index <paramref name="firedIndexOnTimeout"/> and no
    /// exception), binds <paramref name="cancellationToken"/>, and records when the wait began.
    /// </summary>
    /// <remarks>
    /// Never throws. If arming fails (out of memory), the wait ends with that failure through the ordinary claim, so
    /// a partner that won first still completes the operation with its item, and otherwise the owner sees the failure;
    /// either way the registrations are withdrawn as for any ended wait.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Commit(long generation, Tasklet? current, TimeSpan timeout, int firedIndexOnTimeout, CancellationToken cancellationToken)
    {
        if (timeout != Timeout.InfiniteTimeSpan || cancellationToken.CanBeCanceled)
        {
            CommitArmed(generation, current, timeout, firedIndexOnTimeout, cancellationToken);
        }

        // Read by Dump: diagnostics only, so a plain store.
        if (current is not null)
        {
            WaitStart = current.Scheduler.CoarseNow;
        }
    }

    private void CommitArmed(long generation, Tasklet? current, TimeSpan timeout, int firedIndexOnTimeout, CancellationToken cancellationToken)
    {
        try
        {
            if (timeout != Timeout.InfiniteTimeSpan)
            {
                if (current is not null)
                {
                    // A tasklet's deadline is a timer of its scheduler (virtual under Seed), whichever waiter it parked on.
                    current.Scheduler.AddTimer(timeout, this, generation, firedIndexOnTimeout, null);
                }
                else
                {
                    ArmSystemTimer(generation, timeout, firedIndexOnTimeout);
                }
            }

            if (cancellationToken.CanBeCanceled)
            {
                RegisterCancellation(generation, cancellationToken);
            }
        }
        catch (Exception e)
        {
            TryEnd(generation, -1, e, front: false);
        }
    }

    /// <summary>Binds a cancellation token to the current wait: cancelling it claims the wait with an <see cref="OperationCanceledException"/>.</summary>
    private void RegisterCancellation(long generation, CancellationToken cancellationToken)
    {
        Debug.Assert(generation != 0, "generations start at 1");
        WaiterColdState cold = Cold;
        cold.CancellationGeneration = generation;
        cold.Cancellation = cancellationToken.UnsafeRegister(
            static (state, token) =>
            {
                // Runs on the cancelling thread (or inline, if the token is already cancelled). The generation was
                // published before the registration, and EndWait disposes the registration (waiting for a running
                // callback) before the waiter can begin another wait, so this can only claim the wait it was made for.
                var waiter = (Waiter)state!;
                waiter.TryEnd(waiter._cold!.CancellationGeneration, -1, new OperationCanceledException(Strings.OperationCanceled, token), front: false);
            },
            this);
    }

    /// <summary>
    /// The deadline of a party that is not a tasklet: a system timer, disposed when the wait ends. Durations beyond a
    /// system timer's range (about 49 days) re-arm until the deadline.
    /// </summary>
    private void ArmSystemTimer(long generation, TimeSpan timeout, int firedIndex)
    {
        var deadline = new SystemDeadline(this, generation, firedIndex, timeout);
        Cold.Deadline = deadline;
        deadline.Arm();
    }

    /// <summary>Releases what the ended wait armed: its cancellation registration and its system timer. Owner only.</summary>
    private static void DisarmCold(WaiterColdState cold)
    {
        if (cold.CancellationGeneration != 0)
        {
            cold.Cancellation.Dispose(); // waits for a running callback, so it cannot touch a later wait
            cold.Cancellation = default;
            cold.CancellationGeneration = 0;
        }

        if (cold.Deadline is { } deadline)
        {
            cold.Deadline = null;
            deadline.Dispose(); // a callback already running claims with the old generation and fails
        }
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
    public int EndWait(short token) => EndCompletedWait(ThrowIfNotCompleted(token));

    /// <summary>
    /// <see cref="EndWait"/> for a caller that already checked the token: <paramref name="state"/> is what
    /// <see cref="ThrowIfNotCompleted"/> returned (the owner's thread; the state cannot change meanwhile).
    /// </summary>
    public int EndCompletedWait(long state)
    {

        // A plain send or receive that a partner completed: its one node, the cached one, was dequeued by that
        // partner. WithdrawRegistrations would only reset the count (a cached node stays referenced); doing that
        // here keeps the common case out of the call.
        // Acquire read of _queued: pairs with the release store in WaitQueue.Remove, after which the partner that
        // unlinked the node no longer touches it (unless its claim won, and then it woke us after writing).
        if (_registrationCount == 1 && ReferenceEquals(_registration0, _node0) && !Volatile.Read(ref _node0!._queued))
        {
            _registrationCount = 0;
        }
        else if (_registrationCount != 0)
        {
            WithdrawRegistrations();
        }

        if (_cold is { } cold && (cold.CancellationGeneration != 0 || cold.Deadline is not null))
        {
            DisarmCold(cold);
        }

        WaitKind = WaitKind.None;
        int fired = _firedIndex;
        Exception? exception = _exception;
        _exception = null;
        Volatile.Write(ref _state, (state & ~PhaseMask) | PhaseIdle);
        if (this is ExternalWaiter external)
        {
            external.Release();
        }

        if (exception is not null)
        {
            ExceptionDispatchInfo.Throw(exception);
        }

        return fired;
    }

    /// <summary>
    /// Throws the stale-await error unless the wait with token <paramref name="token"/> has completed and was not
    /// consumed yet; returns the state word. Nodes that carry a result call it before they read their result, so
    /// that a second GetResult never touches the node of a later operation.
    /// </summary>
    public long ThrowIfNotCompleted(short token)
    {
        // One static read on the hot path: awaits outside their tasklet are rare misuse, recorded in a side table.
        if (Volatile.Read(ref s_awaitedElsewhereCount) != 0)
        {
            ThrowIfAwaitedElsewhere(token);
        }

        long state = Volatile.Read(ref _state);
        if ((short)(state >> 2) != token || (state & PhaseMask) != PhaseCompleted)
        {
            ThrowHelper.ThrowInvalidOperation(Strings.StaleAwait);
        }

        return state;
    }

    // Awaits of a tasklet's operation from outside that tasklet whose GetResult is still to come (TaskletWaiter).
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<(Waiter, short), Tasklet?> s_awaitedElsewhere = new();
    private static int s_awaitedElsewhereCount;

    /// <summary>Records that the wait with <paramref name="token"/> was awaited outside its tasklet: its GetResult throws.</summary>
    private protected void MarkAwaitedElsewhere(short token)
    {
        if (s_awaitedElsewhere.TryAdd((this, token), Owner))
        {
            Interlocked.Increment(ref s_awaitedElsewhereCount);
        }
    }

    private void ThrowIfAwaitedElsewhere(short token)
    {
        if (s_awaitedElsewhere.TryRemove((this, token), out Tasklet? owner))
        {
            Interlocked.Decrement(ref s_awaitedElsewhereCount);
            ThrowHelper.ThrowInvalidOperation(Strings.AwaitedByAnother(owner!));
        }
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
        // Each source removes only nodes still registered for this wait (this waiter, this generation): a node read as
        // queued here may have been unlinked and queued again by another wait since (a case reused too early is
        // refused by Select, but the withdraw does not rely on that).
        long generation = Generation;
        if (Volatile.Read(ref first._queued))
        {
            first.Source.WithdrawAll(first, rest, this, generation);
        }

        for (int i = 0; i < rest.Length; i++)
        {
            SelectCase? node = rest[i].Node;
            if (node is not null && Volatile.Read(ref node._queued))
            {
                node.Source.WithdrawAll(node, rest[(i + 1)..], this, generation);
            }
        }

        rest.Clear();
    }

    /// <summary>The status the awaiter sees.</summary>
    public ValueTaskSourceStatus GetStatus(short token)
    {
        long state = Volatile.Read(ref _state);
        // The same generation in Idle is a wait that was consumed already (GetResult ran): awaiting it again would
        // park on a wait nobody can end. A different generation is an earlier or later operation's.
        if ((short)(state >> 2) != token || (state & PhaseMask) == PhaseIdle)
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

    /// <summary>The system timer of a non-tasklet wait with a deadline; null otherwise.</summary>
    public SystemDeadline? Deadline;

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

/// <summary>The phase of a waiter's current wait (<see cref="Waiter.Phase"/>).</summary>
internal enum WaitPhase : byte
{
    Idle,
    Parked,
    Claimed,
    Completed,
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
    Thread,

    // The coordination primitives of src/Tasklets/Sync: a semaphore, event, wait group or barrier (Coordination), a
    // lock's acquire (Lock), a condition's wait (Condition). Their one registration describes them.
    Coordination,
    Lock,
    Condition,
}
