using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A cyclic barrier for a fixed number of participants (Python's <c>threading.Barrier</c>): each participant calls
/// <see cref="SignalAndWaitAsync"/>, and all of them go on together once the last one arrives; then the next phase
/// begins. Thread-safe, across schedulers. See DESIGN.md, "Coordination", and docs/coordination.md.
/// </summary>
/// <remarks>
/// <para><b>A participant that leaves breaks the barrier</b> (Python's rule, not a withdrawal). If a waiting
/// participant's wait ends by kill, timeout or cancellation before the phase completes, every participant waiting
/// in that phase gets <see cref="BrokenBarrierException"/>, and so does every later call, until
/// <see cref="Reset"/>. Why not withdraw the signal and let the phase wait for a replacement: a kill claims a wait
/// without this barrier's lock, so the barrier learns of it only when the victim withdraws its registration, and the
/// last participant may arrive in between; the phase would then complete for some and not for others, or wait
/// forever for a participant that is gone. Breaking tells every participant, at once, that the phase failed.</para>
/// <para><b>When the trip is decided</b>: under the gate, by the arrival that completes the phase. A participant
/// whose wait was ended before that instant breaks the barrier (the completing arrival sees it and breaks instead
/// of tripping); one ended after it counts as arrived: the others pass, and it raises its own kill, timeout or
/// cancellation.</para>
/// <para><b>Invariants</b> (whenever <c>_gate</c> is free): <c>_arrived</c> is the number of nodes queued in
/// <c>_waiting</c> and is below <c>_participants</c>; while <c>_broken</c>, nothing is queued.</para>
/// </remarks>
/// <example><code>
/// var step = new AsyncBarrier(3) { Name = "step" };
/// for (int i = 0; i &lt; 3; i++)
/// {
///     Tasklet.Go(async () =&gt; { for (int round = 0; round &lt; 10; round++) { Compute(round); await step.SignalAndWaitAsync(); } });
/// }
/// </code></example>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed class AsyncBarrier : IWaitSource
{
    private readonly long _id = WaitSourceIds.Next();
    private readonly int _participants;
    private SpinGate _gate;
    private WaitQueue _waiting; // under _gate: the participants of the current phase that wait

    // Under _gate; read lock-free by IsBroken, Phase and Describe (single words, best effort).
    private int _arrived;
    private long _phase;
    private bool _broken;

    // Set once, never cleared: a party outside a Run() scheduler's tasklets made or used the barrier.
    private Reachability _reach; // who may end waits here from outside the deadlock detector's view

    /// <summary>Creates a barrier for <paramref name="participants"/> participants.</summary>
    /// <param name="participants">How many arrivals complete a phase; at least 1.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="participants"/> is less than 1.</exception>
    public AsyncBarrier(int participants)
    {
        if (participants < 1)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(participants), participants, "A barrier needs at least one participant.");
        }

        _participants = participants;

        // Made outside a tasklet: code the scheduler cannot see may arrive (DESIGN.md, "Deadlock").
        Tasklet? current = Tasklet.CurrentOrNull;
        _reach = Reachability.MadeBy(current);
    }

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports, the debugger.</summary>
    public string? Name { get; init; }

    /// <summary>How many arrivals complete a phase.</summary>
    public int Participants => _participants;

    /// <summary>The number of phases completed so far (a snapshot).</summary>
    // Lock-free: a single word written only under the gate, so the read returns the value it had at that instant.
    public long Phase => Volatile.Read(ref _phase);

    /// <summary>True once the barrier is broken, until <see cref="Reset"/> (a snapshot).</summary>
    // Lock-free: a single word written only under the gate, so the read returns the value it had at that instant.
    public bool IsBroken => Volatile.Read(ref _broken);

    long IWaitSource.Id => _id;

    bool IWaitSource.IsExternal => _reach.IsExternal;

    private string DebuggerDisplay => Describe();

    /// <summary>Signals that the caller reached the barrier, and waits until every participant of this phase has.</summary>
    /// <param name="cancellationToken">Cancels the wait; cancelling a wait that was parked breaks the barrier.</param>
    /// <returns>The caller's arrival index in the phase, 0 to <see cref="Participants"/> - 1 (the last arrival gets
    /// <see cref="Participants"/> - 1 and does not wait), as Python's <c>wait()</c> returns.</returns>
    /// <remarks>
    /// A token cancelled before the call, or a kill or timeout already pending, ends the call before it signals: the
    /// barrier is unaffected. A parked wait ended by kill, timeout or cancellation breaks the barrier (see the type's
    /// remarks). Honours <see cref="Tasklet.Timeout"/> scopes.
    /// </remarks>
    /// <exception cref="BrokenBarrierException">The barrier is broken, or broke while the caller waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    public ValueTask<int> SignalAndWaitAsync(CancellationToken cancellationToken = default) => SignalCore(cancellationToken, out _);

    /// <summary>
    /// <see cref="SignalAndWaitAsync"/>, blocking the calling OS thread. For threads that are not tasklets.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait; cancelling a wait that was parked breaks the barrier.</param>
    /// <returns>The caller's arrival index in the phase.</returns>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="SignalAndWaitAsync"/>.</exception>
    /// <exception cref="BrokenBarrierException">The barrier is broken, or broke while the caller waited.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled.</exception>
    public int SignalAndWait(CancellationToken cancellationToken = default)
    {
        if (Tasklet.CurrentOrNull is not null || Scheduler.CurrentOrNull is not null)
        {
            ThrowHelper.ThrowInvalidOperation("AsyncBarrier.SignalAndWait blocks the calling thread, which here is a scheduler's thread: every tasklet of that scheduler would stop. Use 'await barrier.SignalAndWaitAsync()' inside tasklets; the blocking SignalAndWait is for OS threads that are not tasklets.");
        }

        ValueTask<int> pending = SignalCore(cancellationToken, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        return pending.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Returns the barrier to its empty, unbroken state (Python's <c>reset()</c>): participants waiting now get
    /// <see cref="BrokenBarrierException"/>; later calls start a new phase.
    /// </summary>
    public void Reset()
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        MarkUsedBy(current);
        var wakeList = default(WakeList);
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (!_waiting.IsEmpty)
            {
                BreakLocked(ref wakeList, "it was reset while participants waited");
            }

            Volatile.Write(ref _broken, false);
            _arrived = 0;
        }

        wakeList.WakeAll(current);
    }

    // ---------------------------------------------------------------- core

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ValueTask<int> SignalCore(CancellationToken cancellationToken, out Waiter? parked)
    {
        parked = null;
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        MarkUsedBy(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken); // before signalling: the barrier is unaffected
        }

        var wakeList = default(WakeList);
        Waiter waiter;
        long generation;
        int index;
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_broken)
            {
                return ValueTask.FromException<int>(new BrokenBarrierException(BrokenMessage("it broke earlier, when " + LostParticipant)));
            }

            index = _arrived;
            if (index + 1 == _participants)
            {
                // The completing arrival decides the trip here. A queued participant whose wait was already ended
                // (claimed without this gate by a kill, timeout or cancellation; its owner has not withdrawn yet)
                // left before the phase completed: break instead, as its own withdrawal would have.
                if (_waiting.CountLive() < _arrived)
                {
                    BreakLocked(ref wakeList, LostParticipant);
                    goto Broken;
                }

                SelectCase? node;
                while ((node = _waiting.DequeueAndClaim()) is not null)
                {
                    // Claimed: this participant passes. A claim lost after the check above (a kill in between) drops
                    // that node; its owner raises its own exception, counted as arrived (see the type's remarks).
                    node._waiter!.SetOutcome(node._caseIndex, null);
                    wakeList.Add(node);
                }

                _arrived = 0;
                Volatile.Write(ref _phase, _phase + 1);
                goto Tripped;
            }

            // Park; renting comes before BeginWait, and nothing after it can throw. The node's case index carries
            // the arrival index, which the trip hands back as the wait's outcome.
            waiter = Waiter.ForParty(current);
            WaitNode node0 = waiter.RentNode<WaitNode>();
            node0.Bind(this);
            generation = _waiting.BeginWaitLocked(waiter, node0, WaitKind.Coordination, index);
            _arrived = index + 1;
        }

        parked = waiter;
        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, index, cancellationToken);
        return waiter.AsValueTaskOfInt();

    Tripped:
        wakeList.WakeAll(current);
        return new ValueTask<int>(index);

    Broken:
        wakeList.WakeAll(current);
        return ValueTask.FromException<int>(new BrokenBarrierException(BrokenMessage(LostParticipant)));
    }

    /// <summary>
    /// Breaks the barrier: every queued participant whose wait this claims gets <see cref="BrokenBarrierException"/>.
    /// Caller holds the gate and wakes <paramref name="wakeList"/> after releasing it.
    /// </summary>
    private void BreakLocked(ref WakeList wakeList, string why)
    {
        Volatile.Write(ref _broken, true);
        _arrived = 0;
        SelectCase? node;
        while ((node = _waiting.DequeueAndClaim()) is not null)
        {
            // Decided before the claim (the barrier is broken); claimed under the gate, so this participant gets the
            // exception and nothing else. A node whose claim failed was ended by its own kill, timeout or cancellation.
            node._waiter!.SetOutcome(-1, new BrokenBarrierException(BrokenMessage(why)));
            wakeList.Add(node);
        }
    }

    private string BrokenMessage(string why)
        => $"Barrier {(Name is null ? $"#{_id}" : $"'{Name}'")} is broken: {why}. Call Reset before using it again.";

    private const string LostParticipant = "a waiting participant was killed, timed out or cancelled before the phase completed";

    private void MarkUsedBy(Tasklet? current) => _reach.MarkUsedBy(current);

    /// <summary>"barrier 'step' (2 of 3 arrived)": for Dump, deadlock reports and the debugger. Lock-free, best effort.</summary>
    internal string Describe()
    {
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        return Volatile.Read(ref _broken)
            ? $"barrier {name} (broken)"
            : $"barrier {name} ({Volatile.Read(ref _arrived)} of {_participants} arrived)";
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Debug.Assert(_arrived >= 0 && _arrived < _participants);
        Debug.Assert(!_broken || _waiting.IsEmpty, "a broken barrier has waiters");
    }

    // ---------------------------------------------------------------- IWaitSource

    void IWaitSource.EnterGate() => _gate.Enter();

    void IWaitSource.ExitGate() => _gate.Exit();

    void IWaitSource.MarkUsedBy(Tasklet? current) => MarkUsedBy(current);

    /// <summary>
    /// The owner of a wait that ended otherwise than by the trip (kill, timeout, cancellation, a failed commit)
    /// withdraws its node: that participant left before the phase completed, so the barrier breaks for the others.
    /// </summary>
    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
    {
        // A barrier wait has one registration (never a select case), so no node of `others` is on this barrier.
        Debug.Assert(others.IsEmpty || !ContainsNodeOf(others, this));
        Tasklet? current = Tasklet.CurrentOrNull;
        var wakeList = default(WakeList);
        using (new GateScope(ref _gate))
        {
            // Still queued for that very wait: a trip or break meanwhile would have unlinked it.
            if (node._queued && ReferenceEquals(node._waiter, waiter) && node._generation == generation)
            {
                _waiting.Remove(node);
                _arrived--;
                BreakLocked(ref wakeList, LostParticipant);
            }
        }

        wakeList.WakeAll(current);
    }

    private static bool ContainsNodeOf(ReadOnlySpan<RegistrationSlot> others, IWaitSource source)
    {
        foreach (RegistrationSlot slot in others)
        {
            if (slot.Node is { } other && ReferenceEquals(other.Source, source))
            {
                return true;
            }
        }

        return false;
    }

    // Only the generic WaitSources.WithdrawAll calls this, and the barrier withdraws through its own WithdrawAll
    // (which must wake the participants it breaks after releasing the gate). Checked in Release too: a silent unlink
    // here would leave the phase waiting for a participant that is gone.
    void IWaitSource.RemoveLocked(SelectCase node)
        => ThrowHelper.ThrowInvalidOperation("Internal error: an AsyncBarrier registration must be withdrawn through AsyncBarrier's own WithdrawAll.");

    string IWaitSource.Describe() => Describe();

    /// <summary>The registration of one waiting participant; owned and reused by its waiter.</summary>
    private sealed class WaitNode : PassiveNode
    {
        // Set only to an AsyncBarrier (Bind), so no type check is needed.
        private AsyncBarrier Typed => Unsafe.As<AsyncBarrier>(_source!);

        internal void Bind(AsyncBarrier barrier) => BindSource(barrier);

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
            => Typed._waiting.Enqueue(this, waiter, generation, caseIndex);
    }
}
