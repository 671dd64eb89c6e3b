using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A mutual-exclusion lock for tasklets, plain async code and OS threads (stacklesslib's <c>Lock</c>/<c>RLock</c>,
/// Go's <c>sync.Mutex</c> in starvation mode): FIFO, no barging, owned, optionally reentrant. Thread-safe.
/// See DESIGN.md, "Coordination", and docs/coordination.md.
/// </summary>
/// <remarks>
/// <para><b>State</b> (all under <c>_gate</c>): <c>_depth</c> (0 free, n the owner's nested acquisitions),
/// <c>_owner</c> (the owning tasklet, or null for a party that is not a tasklet), <c>_token</c> (the innermost
/// acquisition's token, which every <see cref="Releaser"/> of it carries; 0 when free) and <c>_waiters</c>, a FIFO of
/// <see cref="Tasklets.LockCase"/> nodes (plain <see cref="LockAsync"/> calls, select cases, a condition's
/// reacquire).</para>
/// <para><b>Invariants</b> (whenever <c>_gate</c> is free):</para>
/// <list type="bullet">
/// <item><c>_depth == 0</c> implies <c>_waiters</c> is empty and <c>_token == 0</c>: a waiter is queued only while
/// the lock is held, and a release that finds no live waiter leaves the queue empty (<see cref="WaitQueue.DequeueAndClaim"/>
/// drops the stale nodes it meets). So a newcomer that finds the lock free cannot overtake anyone (no barging).</item>
/// <item>A queued node is live (its wait can still be claimed) or was claimed by someone else (kill, timeout,
/// cancellation, another case of its select); a stale node is never granted the lock, and its owner withdraws it.</item>
/// </list>
/// <para><b>Handoff</b>: a release with waiters never frees the lock. Under the gate it claims the first live waiter
/// (<see cref="WaitQueue.DequeueAndClaim"/>), makes that waiter's party the owner, writes the releaser into the node and
/// the outcome into its waiter, and wakes it after releasing the gate. If the claim loses to a kill, a timeout or a
/// cancellation, that waiter took nothing and the next one is tried; a claim won is never undone, so a woken waiter
/// that is killed before it runs still owns the lock (its kill is raised at its next blocking point, and its
/// <c>using</c> releases it).</para>
/// </remarks>
[DebuggerDisplay("{Describe(),nq}")]
public sealed class AsyncLock : IWaitSource
{
    private readonly long _id = WaitSourceIds.Next();
    private readonly bool _reentrant;
    private SpinGate _gate; // see SpinGate for why not System.Threading.Lock

    // Written under _gate only. _depth and _owner are also read without it (IsLocked, Owner, Describe, the lock-free
    // hint of Select.Try): each such read is one volatile read of one word, a snapshot whose argument is at the reader.
    private int _depth;
    private Tasklet? _owner;
    private long _token;
    private long _lastToken; // the last token handed out; tokens are never reused, so a stale Releaser never matches
    private WaitQueue _waiters;

    // Set once, never cleared: a party outside a Run() scheduler's tasklets used the lock (DESIGN.md, "Deadlock").
    private Reachability _reach; // who may end waits here from outside the deadlock detector's view

    /// <summary>Creates a free lock.</summary>
    /// <param name="reentrant">
    /// True for a reentrant lock (stacklesslib's <c>RLock</c>): the owning tasklet may acquire it again, and each
    /// acquisition needs its own release. False (the default): the owner acquiring it again throws, since it would wait
    /// for itself forever.
    /// </param>
    public AsyncLock(bool reentrant = false)
    {
        _reentrant = reentrant;

        // A lock made outside a tasklet is reachable by code the scheduler cannot see, as for a channel.
        Tasklet? current = Tasklet.CurrentOrNull;
        _reach = Reachability.MadeBy(current);
    }

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports, exception messages.</summary>
    public string? Name { get; init; }

    /// <summary>True for a reentrant lock (see the constructor).</summary>
    public bool IsReentrant => _reentrant;

    /// <summary>True while some party holds the lock. A snapshot: another thread may acquire or release it at once.</summary>
    // One volatile read of a word written only under the gate: the value some moment between the call and the return saw.
    public bool IsLocked => Volatile.Read(ref _depth) != 0;

    /// <summary>
    /// The tasklet that holds the lock; null when the lock is free or held by a party that is not a tasklet (plain
    /// async code, an OS thread). A snapshot, exact when read by the owner itself.
    /// </summary>
    // One volatile read of a reference written only under the gate. The owner reads its own ownership exactly: only
    // it can release, so the field cannot change under it; any other reader gets some recent owner.
    public Tasklet? Owner => Volatile.Read(ref _owner);

    long IWaitSource.Id => _id;

    bool IWaitSource.IsExternal => _reach.IsExternal;

    /// <summary>The gate's sequence word, for the lock-free hint of <see cref="Select.Try(ReadOnlySpan{SelectCase})"/>.</summary>
    internal int GateSequence => _gate.Sequence;

    void IWaitSource.EnterGate() => _gate.Enter();

    void IWaitSource.ExitGate() => _gate.Exit();

    /// <summary>Takes the gate (a condition over this lock takes it before its own: ids order them).</summary>
    internal void EnterGate() => _gate.Enter();

    /// <summary>Releases the gate.</summary>
    internal void ExitGate() => _gate.Exit();

    // ---------------------------------------------------------------- acquire

    /// <summary>
    /// Acquires the lock, waiting behind the parties already waiting (FIFO). Use it in a <c>using</c>:
    /// <c>using (await l.LockAsync()) { ... }</c>.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait; a cancelled acquire took nothing.</param>
    /// <returns>The releaser of this acquisition; dispose it once to release.</returns>
    /// <remarks>
    /// Completes synchronously when the lock is free (then no party waits for it) or, for a reentrant lock, held by
    /// the calling tasklet. A wait ended by kill, timeout or cancellation took nothing. A waiter that was handed the
    /// lock owns it, even if it is killed before it runs: the kill is raised at its next blocking point.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The calling tasklet holds this non-reentrant lock already: it would wait for itself.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    public ValueTask<Releaser> LockAsync(CancellationToken cancellationToken = default)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        if (current is not null)
        {
            current.ThrowIfInterrupted();
        }

        MarkUsedBy(current);
        if (!cancellationToken.IsCancellationRequested)
        {
            // Fast path, the free lock: no try/finally (nothing between Enter and Exit can throw), no wait set up.
            // Anything else (busy, reentry, a waiter to queue) takes the gate again in LockCore, which decides anew.
            _gate.Enter();
            if (_depth == 0)
            {
                Releaser releaser = GrantLocked(current, 0, 0); // free implies nobody waits: this overtakes no one
                _gate.Exit();
                return new ValueTask<Releaser>(releaser);
            }

            _gate.Exit();
        }

        return LockCore(current, checkInterrupts: false, restoreToken: 0, restoreDepth: 0, cancellationToken, out _);
    }

    /// <summary>Acquires the lock if that needs no wait: it is free, or (reentrant) held by the calling tasklet.</summary>
    /// <param name="releaser">The releaser when the method returns true; default otherwise (disposing it does nothing).</param>
    /// <returns>True when the lock was acquired.</returns>
    /// <remarks>
    /// Never barges: while a party waits, the lock is not free (a release hands it to that party), so this returns
    /// false. On a non-reentrant lock held by the caller itself it returns false too (it would not deadlock).
    /// </remarks>
    public bool TryLock(out Releaser releaser)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        MarkUsedBy(current);
        using (new GateScope(ref _gate))
        {
            return TryAcquireLocked(current, 0, 0, out releaser) == Acquisition.Acquired;
        }
    }

    /// <summary>Acquires the lock, blocking the calling OS thread while it waits. For threads that are not tasklets.</summary>
    /// <returns>The releaser of this acquisition; dispose it once to release.</returns>
    /// <remarks>A party that is not a tasklet has no identity but its releaser: acquiring again from the same thread waits for itself.</remarks>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="LockAsync"/>.</exception>
    public Releaser Lock()
    {
        if (Tasklet.CurrentOrNull is not null || Scheduler.CurrentOrNull is not null)
        {
            ThrowHelper.ThrowInvalidOperation(
                "AsyncLock.Lock() blocks the calling thread, which here is a scheduler's thread: every tasklet of that scheduler would stop. " +
                "Use 'using (await asyncLock.LockAsync())' inside tasklets; the blocking Lock() is for OS threads that are not tasklets.");
        }

        ValueTask<Releaser> pending = LockCore(null, checkInterrupts: false, 0, 0, default, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        return pending.GetAwaiter().GetResult();
    }

    /// <summary>Creates a reusable case for <see cref="Select"/> that acquires this lock.</summary>
    /// <returns>The case; after it fired, <see cref="LockCase.Releaser"/> holds the releaser of the acquisition.</returns>
    public LockCase LockCase() => new(this);

    /// <summary>
    /// The one acquire path (LockAsync, Lock, a condition's reacquire). <paramref name="restoreToken"/> and
    /// <paramref name="restoreDepth"/> (0: a fresh acquisition) give back the token and depth a condition wait took
    /// away, so that the caller's releaser is valid again. <paramref name="parked"/> is the waiter when it waits.
    /// </summary>
    internal ValueTask<Releaser> LockCore(
        Tasklet? current, bool checkInterrupts, long restoreToken, int restoreDepth, CancellationToken cancellationToken, out Waiter? parked)
    {
        parked = null;
        if (checkInterrupts)
        {
            current?.ThrowIfInterrupted();
        }

        MarkUsedBy(current);
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Releaser>(cancellationToken);
        }

        Acquisition result;
        Releaser releaser;
        Waiter waiter;
        LockOperation node;
        long generation;
        using (new GateScope(ref _gate))
        {
            result = TryAcquireLocked(current, restoreToken, restoreDepth, out releaser);
            if (result != Acquisition.Busy)
            {
                goto Done;
            }

            // Park. Nothing from BeginWait to the end of the block can throw (renting the waiter and the node, the
            // only allocations, come before it), so the node is queued if and only if the wait was begun.
            waiter = Waiter.ForParty(current);
            node = waiter.RentNode<LockOperation>();
            generation = waiter.BeginWait(WaitKind.Lock);
            node.Bind(this);
            EnqueueLocked(node, current, restoreToken, restoreDepth, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        parked = waiter;
        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return node.AsValueTask();

    Done:
        if (result == Acquisition.SelfDeadlock)
        {
            ThrowHelper.ThrowInvalidOperation(
                $"{Describe()}: tasklet {current!.Id} '{current.Name}' holds this lock already and would wait for itself forever. " +
                "Create the lock with 'new AsyncLock(reentrant: true)' to allow nested acquisitions, or do not acquire it twice.");
        }

        return new ValueTask<Releaser>(releaser);
    }

    /// <summary>
    /// Acquires the lock for <paramref name="current"/> if it can be without a wait. Caller holds the gate.
    /// <paramref name="restoreToken"/>/<paramref name="restoreDepth"/> as in <see cref="LockCore"/>.
    /// </summary>
    internal Acquisition TryAcquireLocked(Tasklet? current, long restoreToken, int restoreDepth, out Releaser releaser)
    {
        AssertInvariants();
        if (_depth == 0)
        {
            // Free implies nobody waits (invariant), so taking it overtakes no one.
            releaser = GrantLocked(current, restoreToken, restoreDepth);
            return Acquisition.Acquired;
        }

        // A party that is not a tasklet has no identity to compare: it never re-enters (documented).
        if (current is not null && ReferenceEquals(_owner, current))
        {
            if (!_reentrant)
            {
                releaser = default;
                return Acquisition.SelfDeadlock;
            }

            if (_depth == int.MaxValue)
            {
                ThrowHelper.ThrowInvalidOperation($"{Describe()}: more than {int.MaxValue} nested acquisitions.");
            }

            // A nested acquisition gets a token of its own, and its releaser keeps the one it covers, which its
            // release puts back: a nested releaser disposed twice then finds another token and throws, instead of
            // releasing a later acquisition at the same depth.
            long outer = _token;
            _token = ++_lastToken;
            _depth++;
            releaser = new Releaser(this, _token, _depth, outer);
            return Acquisition.Acquired;
        }

        releaser = default;
        return Acquisition.Busy;
    }

    /// <summary>True when <paramref name="current"/> could acquire now. Caller holds the gate (select's count of ready cases).</summary>
    internal bool IsAcquirableLocked(Tasklet? current)
        => _depth == 0 || (_reentrant && current is not null && ReferenceEquals(_owner, current));

    /// <summary>
    /// A lock-free hint for <see cref="Select.Try(ReadOnlySpan{SelectCase})"/>: false only if the lock is held in the state read. One volatile read
    /// of <c>_depth</c> (written only under the gate), so bracketed by two equal even gate sequence reads it is a read
    /// of one quiescent state. A reentrant lock says "maybe": whether the caller owns it is decided under the gate.
    /// </summary>
    internal bool MaybeAcquirableUnlocked() => _reentrant || Volatile.Read(ref _depth) == 0;

    /// <summary>Queues <paramref name="node"/> as a registration of <paramref name="waiter"/>'s wait for <paramref name="party"/>. Caller holds the gate, and saw the lock busy under it.</summary>
    internal void EnqueueLocked(LockCase node, Tasklet? party, long restoreToken, int restoreDepth, Waiter waiter, long generation, int caseIndex)
    {
        node._party = party;
        node._restoreToken = restoreToken;
        node._restoreDepth = restoreDepth;
        _waiters.Enqueue(node, waiter, generation, caseIndex);
    }

    // Makes party the owner. Caller holds the gate; the lock is free, or being handed over by a release.
    private Releaser GrantLocked(Tasklet? party, long restoreToken, int restoreDepth)
    {
        _owner = party;
        _token = restoreToken != 0 ? restoreToken : ++_lastToken;
        Volatile.Write(ref _depth, restoreToken != 0 ? restoreDepth : 1);
        return new Releaser(this, _token, _depth, 0);
    }

    // ---------------------------------------------------------------- release

    /// <summary>
    /// Releases the acquisition (<paramref name="token"/>, <paramref name="depth"/>) of a <see cref="Releaser"/>; a
    /// nested one puts back <paramref name="outerToken"/>, the token of the acquisition it was nested in.
    /// </summary>
    internal void Release(long token, int depth, long outerToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;

        // Fast path, the owner's last release with nobody queued: every check of ReleaseProblemLocked holds (the lock
        // is held once, by this party, with this releaser's token), and with an empty queue the handoff would free it.
        // No try/finally: nothing between Enter and Exit can throw. Anything else goes the checked way below.
        _gate.Enter();
        if (_depth == 1 && depth == 1 && token == _token && ReferenceEquals(_owner, current) && _waiters.IsEmpty)
        {
            _owner = null;
            _token = 0;
            Volatile.Write(ref _depth, 0);
            _gate.Exit();
            return;
        }

        _gate.Exit();
        ReleaseChecked(current, token, depth, outerToken);
    }

    // The general release: nested, handoff to a waiter, or refused with the reason.
    private void ReleaseChecked(Tasklet? current, long token, int depth, long outerToken)
    {
        LockCase? next;
        string? problem;
        using (new GateScope(ref _gate))
        {
            problem = ReleaseProblemLocked(current, token, depth);
            if (problem is not null)
            {
                goto Refused;
            }

            if (_depth > 1)
            {
                _token = outerToken;
                Volatile.Write(ref _depth, _depth - 1);
                return;
            }

            next = HandOffLocked();
        }

        if (next is not null)
        {
            WakeGranted(next, current);
        }

        return;

    Refused:
        ThrowHelper.ThrowInvalidOperation(problem);
    }

    /// <summary>Why <paramref name="current"/> may not release with this releaser, or null. Caller holds the gate.</summary>
    private string? ReleaseProblemLocked(Tasklet? current, long token, int depth)
    {
        AssertInvariants();
        if (_depth == 0)
        {
            return $"Cannot release {Describe()}: it is not locked (was this Releaser disposed already?). Dispose each Releaser exactly once.";
        }

        if (_owner is { } owner ? !ReferenceEquals(owner, current) : current is not null)
        {
            string who = current is null ? "a party that is not a tasklet" : $"tasklet {current.Id} '{current.Name}'";
            return $"Cannot release {Describe()} from {who}: only the owner may release a lock. Release it in the party that acquired it.";
        }

        if (depth < _depth)
        {
            return $"Cannot release {Describe()} at depth {depth}: it is held {_depth} deep. Release nested acquisitions innermost first (nested using blocks do).";
        }

        // Each acquisition, nested ones included, has a token of its own, and _token is the innermost's.
        if (token != _token || depth > _depth)
        {
            return $"Cannot release {Describe()}: this Releaser belongs to an acquisition that was released already. Dispose each Releaser exactly once.";
        }

        return null;
    }

    /// <summary>
    /// The owner's last release: hands the lock to the first live waiter, or frees it when none is left. Caller holds
    /// the gate and checked the release. Returns the node granted the lock, to be woken with <see cref="WakeGranted"/>
    /// after the gate is released; null when the lock is free now.
    /// </summary>
    internal LockCase? HandOffLocked()
    {
        // The claim is the test: a node whose wait was ended by a kill, a timeout, a cancellation or another case of
        // its select fails it and is dropped; that waiter took nothing. Only the node returned here is acted on.
        SelectCase? node = _waiters.DequeueAndClaim();
        if (node is null)
        {
            // No live waiter, and DequeueAndClaim emptied the queue: free with nobody waiting (the invariant).
            _owner = null;
            _token = 0;
            Volatile.Write(ref _depth, 0);
            return null;
        }

        var next = Unsafe.As<LockCase>(node); // _waiters holds only LockCase nodes (EnqueueLocked)
        next.Releaser = GrantLocked(next._party, next._restoreToken, next._restoreDepth);
        next._waiter!.SetOutcome(next._caseIndex, null); // outcome before the wake; the owner reads the releaser after it
        return next;
    }

    /// <summary>Wakes the waiter of <paramref name="granted"/> (claimed by <see cref="HandOffLocked"/>). No gate held.</summary>
    internal static void WakeGranted(LockCase granted, Tasklet? current)
    {
        // Safe to read the node after the gate: its wait is claimed by us, so its owner cannot resume and reuse the
        // node before this wake. The releaser keeps running (stacklesslib's lock never switches on release either).
        Waiter.WakePartner(granted._waiter!, current, preferPartner: false);
    }

    /// <summary>
    /// Why <paramref name="current"/> does not hold the lock, or null if it does (a condition wait's check). Caller
    /// holds the gate. A party that is not a tasklet is taken to hold it when a non-tasklet party does: it has no other identity.
    /// </summary>
    internal string? NotHeldByLocked(Tasklet? current)
    {
        if (_depth != 0 && (_owner is { } owner ? ReferenceEquals(owner, current) : current is null))
        {
            return null;
        }

        string who = current is null ? "a party that is not a tasklet" : $"tasklet {current.Id} '{current.Name}'";
        return $"{who} does not hold {Describe()}";
    }

    /// <summary>
    /// A condition wait's release: gives up every nested acquisition of the owner at once and hands the lock on.
    /// Caller holds the gate and checked ownership (<see cref="NotHeldByLocked"/>). Returns what the reacquire restores,
    /// and the node to wake (see <see cref="HandOffLocked"/>).
    /// </summary>
    internal LockCase? ReleaseAllLocked(out long token, out int depth)
    {
        AssertInvariants();
        token = _token;
        depth = _depth;
        return HandOffLocked();
    }

    // ---------------------------------------------------------------- wait source

    /// <summary>Marks the lock externally reachable if <paramref name="current"/> is not a tasklet of a Run() scheduler.</summary>
    internal void MarkUsedBy(Tasklet? current) => _reach.MarkUsedBy(current);

    void IWaitSource.MarkUsedBy(Tasklet? current) => MarkUsedBy(current);

    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node) => _waiters.Remove(node);

    /// <summary>"lock 'db' held by tasklet 4 'writer'": for Dump, deadlock reports and messages.</summary>
    /// <remarks>
    /// Also called without the gate (Dump from another thread): it reads the depth and the owner once each, so it may
    /// describe a neighbouring state, never throws.
    /// </remarks>
    internal string Describe()
    {
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        int depth = Volatile.Read(ref _depth);
        Tasklet? owner = Volatile.Read(ref _owner);
        string state = depth == 0 ? "(free)"
            : owner is null ? "held by a party that is not a tasklet"
            : $"held by tasklet {owner.Id} '{owner.Name}'";
        return $"lock {name} {state}";
    }

    string IWaitSource.Describe() => Describe();

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Debug.Assert(_depth >= 0);
        Debug.Assert(_depth != 0 || (_waiters.IsEmpty && _token == 0 && _owner is null), "a free lock has no waiters, no token, no owner");
        Debug.Assert(_depth == 0 || _token != 0);
    }

    /// <summary>The outcome of an attempt to acquire without a wait.</summary>
    internal enum Acquisition
    {
        Acquired,
        Busy,
        SelfDeadlock,
    }

    /// <summary>
    /// The releaser of one acquisition: disposing it releases the lock once (<c>using (await l.LockAsync()) { ... }</c>).
    /// </summary>
    /// <remarks>
    /// It carries the acquisition's token and nesting depth, so a stale or foreign releaser cannot release someone
    /// else's acquisition: disposing one that was disposed already, one of an earlier acquisition, or one held by a
    /// party that is not the owner throws <see cref="InvalidOperationException"/>. A tasklet owner must release in
    /// that tasklet; a lock held by a party that is not a tasklet is released by any non-tasklet code that holds its
    /// releaser. Disposing <c>default(Releaser)</c> (a failed <see cref="TryLock"/>) does nothing.
    /// </remarks>
    public readonly struct Releaser : IDisposable
    {
        private readonly AsyncLock? _lock;
        private readonly long _token;
        private readonly int _depth;
        private readonly long _outerToken; // the token of the acquisition this one is nested in (0: not nested)

        internal Releaser(AsyncLock owner, long token, int depth, long outerToken)
        {
            _lock = owner;
            _token = token;
            _depth = depth;
            _outerToken = outerToken;
        }

        /// <summary>Releases the acquisition: hands the lock to the first live waiter, or frees it. Never blocks.</summary>
        /// <exception cref="InvalidOperationException">
        /// The lock is not locked, the caller is not its owner, this releaser was disposed already or belongs to an
        /// earlier acquisition, or a nested acquisition is released before an inner one.
        /// </exception>
        public void Dispose() => _lock?.Release(_token, _depth, _outerToken);
    }

    /// <summary>The queue node of a plain <see cref="LockAsync"/>, owned by one waiter and reused; the awaitable of the acquire.</summary>
    private sealed class LockOperation : Tasklets.LockCase, IValueTaskSource<Releaser>
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ValueTask<Releaser> AsValueTask() => new(this, (short)_waiter!.Generation);

        public ValueTaskSourceStatus GetStatus(short token) => _waiter!.GetStatus(token);

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => _waiter!.OnCompleted(continuation, state, token, flags);

        public Releaser GetResult(short token)
        {
            // The token first (a second GetResult must not read a later acquisition's releaser: the node is reused),
            // then the releaser, then EndWait (an external waiter goes back to its pool there). A wait ended by an
            // interrupt throws in EndCompletedWait; its releaser field is stale and ignored.
            long state = _waiter!.ThrowIfNotCompleted(token);
            Releaser releaser = Releaser;
            Releaser = default;
            _waiter.EndCompletedWait(state);
            return releaser;
        }
    }
}
