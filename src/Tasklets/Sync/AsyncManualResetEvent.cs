using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// An event for tasklets, plain async code and OS threads (Python's <c>threading.Event</c>): while it is set, waits
/// complete at once; <see cref="Set"/> wakes every waiter; <see cref="Reset"/> makes later waits block again.
/// Thread-safe, across schedulers. <see cref="WaitCase"/> lets a <see cref="Select"/> wait for it beside channels.
/// See DESIGN.md, "Coordination", and docs/coordination.md.
/// </summary>
/// <remarks>
/// <para><b>Invariants</b> (whenever <c>_gate</c> is free): <c>_isSet</c> implies that no live node is queued (a
/// wait is queued only while the event is not set, and <see cref="Set"/> claims every live node under the gate as
/// it sets the flag). A queued node is live, or its wait was ended by a kill, a timeout, a cancellation or another
/// case of its select; such a node is dropped by <see cref="Set"/> or withdrawn by its owner.</para>
/// <para><b>Locking</b>: <c>_gate</c> guards the flag and the queue; waiters are woken after it is released.</para>
/// </remarks>
/// <example><code>
/// var ready = new AsyncManualResetEvent { Name = "ready" };
/// Tasklet.Go(async () => { await LoadAsync(); ready.Set(); });
/// await ready.WaitAsync();
/// </code></example>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed class AsyncManualResetEvent : IWaitSource
{
    private readonly long _id = WaitSourceIds.Next();
    private SpinGate _gate;
    private WaitQueue _waiters; // under _gate: plain waits and select cases

    // Written only under _gate; read lock-free by IsSet, Describe and the select case's seqlock hint.
    private bool _isSet;

    // Set once, never cleared: a party outside a Run() scheduler's tasklets made or used the event.
    private Reachability _reach; // who may end waits here from outside the deadlock detector's view

    /// <summary>Creates an event, not set unless <paramref name="initialState"/> is true.</summary>
    /// <param name="initialState">True to create it set.</param>
    public AsyncManualResetEvent(bool initialState = false)
    {
        _isSet = initialState;

        // Made outside a tasklet: code the scheduler cannot see may set it (DESIGN.md, "Deadlock").
        Tasklet? current = Tasklet.CurrentOrNull;
        _reach = Reachability.MadeBy(current);
    }

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports, the debugger.</summary>
    public string? Name { get; init; }

    /// <summary>True while the event is set (a snapshot: another party may change it at once).</summary>
    // Lock-free: a single word written only under the gate, so the read returns the value it had at that instant.
    public bool IsSet => Volatile.Read(ref _isSet);

    long IWaitSource.Id => _id;

    bool IWaitSource.IsExternal => _reach.IsExternal;

    private string DebuggerDisplay => Describe();

    /// <summary>Sets the event and wakes every waiter (plain waits and selects). Idempotent; never waits or switches.</summary>
    public void Set()
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        MarkUsedBy(current);
        var wakeList = default(WakeList);
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_isSet)
            {
                return; // set already: no live waiter (invariant)
            }

            Volatile.Write(ref _isSet, true);
            SelectCase? node;
            while ((node = _waiters.DequeueAndClaim()) is not null)
            {
                // Claimed under the gate, after the flag was set: this wait ends woken, whatever else races for it (a
                // kill, a timeout, another case of the select lost the claim and raise nothing here). A node whose claim
                // failed was dropped: that wait was ended by someone else and is withdrawn by its owner.
                // A select's node fires as its case (the index it was queued with); a plain wait's index is 0.
                node._waiter!.SetOutcome(node._caseIndex, null);
                wakeList.Add(node);
            }
        }

        wakeList.WakeAll(current); // outside the gate, in the order served
    }

    /// <summary>Clears the event: later waits block until the next <see cref="Set"/>. Waiters already woken stay woken.</summary>
    public void Reset()
    {
        MarkUsedBy(Tasklet.CurrentOrNull);
        using (new GateScope(ref _gate))
        {
            Volatile.Write(ref _isSet, false);
        }
    }

    /// <summary>Waits until the event is set; completes at once if it is set now.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>Completes when the event was set.</returns>
    /// <remarks>
    /// A <see cref="Set"/> followed at once by a <see cref="Reset"/> still wakes every waiter that was parked at the
    /// <see cref="Set"/>. Honours <see cref="Tasklet.Timeout"/> scopes; a wait ended by kill, timeout or cancellation
    /// leaves nothing behind.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => WaitCore(cancellationToken, out _);

    /// <summary>Waits until the event is set, blocking the calling OS thread. For threads that are not tasklets.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="WaitAsync"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void Wait(CancellationToken cancellationToken = default)
    {
        if (Tasklet.CurrentOrNull is not null || Scheduler.CurrentOrNull is not null)
        {
            ThrowHelper.ThrowInvalidOperation("AsyncManualResetEvent.Wait blocks the calling thread, which here is a scheduler's thread: every tasklet of that scheduler would stop. Use 'await ev.WaitAsync()' inside tasklets; the blocking Wait is for OS threads that are not tasklets.");
        }

        ValueTask pending = WaitCore(cancellationToken, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        pending.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Creates a reusable case for <see cref="Select"/> that is ready while the event is set:
    /// <c>await Select.WaitAsync(jobs.ReceiveCase(), stop.WaitCase())</c>. Firing takes nothing from the event.
    /// </summary>
    /// <returns>The case; like every case, it may take part in one select at a time.</returns>
    public SelectCase WaitCase() => new EventCase(this);

    // ---------------------------------------------------------------- core

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask WaitCore(CancellationToken cancellationToken, out Waiter? parked)
    {
        parked = null;
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkUsedBy(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        // Lock-free "set": one word written only under the gate, so true here means the event was set at the instant
        // of the read, and a wait that began then would have completed at once. Nothing is taken, so nothing can be lost.
        if (Volatile.Read(ref _isSet))
        {
            return default;
        }

        Waiter waiter;
        long generation;
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_isSet)
            {
                return default;
            }

            // Park; renting comes before BeginWait, and nothing after it can throw.
            waiter = Waiter.ForParty(current);
            EventCase node = waiter.RentNode<EventCase>();
            node.Bind(this);
            generation = _waiters.BeginWaitLocked(waiter, node, WaitKind.Coordination);
        }

        parked = waiter;
        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return waiter.AsValueTask();
    }

    private void MarkUsedBy(Tasklet? current) => _reach.MarkUsedBy(current);

    /// <summary>"event 'ready' (not set)": for Dump, deadlock reports and the debugger. Lock-free, best effort.</summary>
    internal string Describe()
    {
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        return $"event {name} ({(Volatile.Read(ref _isSet) ? "set" : "not set")})";
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Debug.Assert(!_isSet || !_waiters.HasLive(), "the event is set while a waiter waits");
    }

    // ---------------------------------------------------------------- IWaitSource

    void IWaitSource.EnterGate() => _gate.Enter();

    void IWaitSource.ExitGate() => _gate.Exit();

    void IWaitSource.MarkUsedBy(Tasklet? current) => MarkUsedBy(current);

    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node) => _waiters.Remove(node);

    string IWaitSource.Describe() => Describe();

    /// <summary>
    /// The registration of a wait on the event: the node of a plain wait (owned and reused by its waiter), and the
    /// select case that <see cref="WaitCase"/> hands out. Ready while the event is set; firing changes nothing.
    /// </summary>
    private sealed class EventCase : SelectCase
    {
        public EventCase()
        {
        }

        public EventCase(AsyncManualResetEvent owner)
        {
            _source = owner;
        }

        // Set only to an AsyncManualResetEvent (constructor, Bind), so no type check is needed.
        private AsyncManualResetEvent Typed => Unsafe.As<AsyncManualResetEvent>(_source!);

        internal void Bind(AsyncManualResetEvent owner) => BindSource(owner);

        internal override string DescribeWait() => "wait on " + Typed.Describe();

        // A volatile read of a field written only under the gate: inside Select.Try's two equal even sequence reads it
        // is the flag of one quiescent state, so "false" there proves the case was not ready at that instant.
        internal override bool MaybeReadyUnlocked() => Volatile.Read(ref Typed._isSet);

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override bool IsReadyLocked() => Typed._isSet;

        // Exact under the gate: the flag changes only under it, and firing consumes nothing, so there is no partner
        // to claim and nothing another party can take away between the check and the effect.
        internal override bool TryExecuteLocked(out Waiter? partner)
        {
            partner = null;
            return Typed._isSet;
        }

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
            => Typed._waiters.Enqueue(this, waiter, generation, caseIndex);

        internal override bool PartnerPreferred => false;
    }
}
