using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A counting semaphore for tasklets, plain async code and OS threads: <see cref="WaitAsync"/> takes a permit,
/// waiting while none is free; <see cref="Release"/> gives permits back. Thread-safe, across schedulers. See
/// DESIGN.md, "Coordination", and docs/coordination.md.
/// </summary>
/// <remarks>
/// <para><b>Invariants</b> (whenever <c>_gate</c> is free):</para>
/// <list type="bullet">
/// <item><c>0 &lt;= _count &lt;= _maxCount</c>.</item>
/// <item><c>_count &gt; 0</c> implies that no live node (a wait that can still be claimed) is queued: a wait is
/// queued only while <c>_count == 0</c>, and <see cref="Release"/> hands permits to live waiters before it counts
/// any. So a newcomer that finds a free permit barges past nobody.</item>
/// <item>A queued node is live, or its wait was ended by a kill, a timeout or a cancellation (claimed without the
/// gate); such a node never receives a permit (<see cref="WaitQueue.DequeueAndClaim"/> drops it), and its owner
/// withdraws it when it resumes.</item>
/// </list>
/// <para><b>Handoff</b>: a released permit goes to the first live waiter, claimed under the gate; it never passes
/// through <c>_count</c> while someone waits (no barging). A waiter is woken after the gate is released.</para>
/// </remarks>
/// <example><code>
/// var pool = new AsyncSemaphore(4) { Name = "pool" };
/// await pool.WaitAsync();
/// try { await UseConnectionAsync(); }
/// finally { pool.Release(); }
/// </code></example>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed class AsyncSemaphore : IWaitSource
{
    private readonly long _id = WaitSourceIds.Next();
    private readonly int _maxCount;
    private SpinGate _gate;
    private WaitQueue _waiters; // under _gate: FIFO of blocked waits

    // Free permits. Written only under _gate; read lock-free by CurrentCount, TryWait's fast path and Describe.
    private int _count;

    // Set once, never cleared: a party outside a Run() scheduler's tasklets made or used the semaphore.
    private Reachability _reach; // who may end waits here from outside the deadlock detector's view

    /// <summary>Creates a semaphore with <paramref name="initialCount"/> free permits.</summary>
    /// <param name="initialCount">The permits free at the start; 0 to &lt;= <paramref name="maxCount"/>.</param>
    /// <param name="maxCount">The most permits that may be free at once; &gt; 0. <see cref="Release"/> past it throws.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxCount"/> is not positive, or
    /// <paramref name="initialCount"/> is negative or above <paramref name="maxCount"/>.</exception>
    public AsyncSemaphore(int initialCount, int maxCount = int.MaxValue)
    {
        if (maxCount <= 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(maxCount), maxCount, "A semaphore needs a maximum count of at least 1.");
        }

        if (initialCount < 0 || initialCount > maxCount)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(initialCount), initialCount, $"The initial count must be between 0 and the maximum count ({maxCount}).");
        }

        _count = initialCount;
        _maxCount = maxCount;

        // Made outside a tasklet: code the scheduler cannot see may release it (DESIGN.md, "Deadlock").
        Tasklet? current = Tasklet.CurrentOrNull;
        _reach = Reachability.MadeBy(current);
    }

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports, the debugger.</summary>
    public string? Name { get; init; }

    /// <summary>The number of free permits now (a snapshot: other parties may change it at once).</summary>
    // Lock-free: a single word written only under the gate, so the read returns the value it had at that instant.
    public int CurrentCount => Volatile.Read(ref _count);

    /// <summary>The most permits that may be free at once.</summary>
    public int MaxCount => _maxCount;

    long IWaitSource.Id => _id;

    bool IWaitSource.IsExternal => _reach.IsExternal;

    private string DebuggerDisplay => Describe();

    /// <summary>Takes a permit, waiting in FIFO order while none is free.</summary>
    /// <param name="cancellationToken">Cancels the wait; a cancelled wait took no permit.</param>
    /// <returns>Completes when the caller holds a permit; give it back with <see cref="Release"/>.</returns>
    /// <remarks>
    /// A wait ended by kill, timeout or cancellation takes nothing: a permit released at the same moment goes to the
    /// next waiter. A tasklet that was handed a permit and then killed keeps it (the kill is raised at its next
    /// blocking point), so its <c>finally</c> must release it. Honours <see cref="Tasklet.Timeout"/> scopes.
    /// </remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => WaitCore(cancellationToken, out _);

    /// <summary>Takes a permit if one is free now; never waits.</summary>
    /// <returns>True when the caller now holds a permit.</returns>
    public bool TryWait()
    {
        MarkUsedBy(Tasklet.CurrentOrNull);

        // Lock-free "no": _count is one word written only under the gate, so this read returns the count as it was at
        // the instant of the read, and 0 then is a linearizable "none free". A waiter queued meanwhile does not
        // matter: waiters exist only while the count is 0.
        if (Volatile.Read(ref _count) == 0)
        {
            return false;
        }

        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_count > 0)
            {
                _count--; // no live waiter while _count > 0 (invariant): this barges past nobody
                return true;
            }
        }

        return false;
    }

    /// <summary>Takes a permit, blocking the calling OS thread. For threads that are not tasklets.</summary>
    /// <param name="cancellationToken">Cancels the wait; a cancelled wait took no permit.</param>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="WaitAsync"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void Wait(CancellationToken cancellationToken = default)
    {
        EnsureMayBlock();
        ValueTask pending = WaitCore(cancellationToken, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        pending.GetAwaiter().GetResult();
    }

    /// <summary>Gives back <paramref name="count"/> permits: each goes to the first live waiter, or becomes free.</summary>
    /// <param name="count">How many permits; at least 1.</param>
    /// <returns>The number of free permits before this call.</returns>
    /// <remarks>
    /// Never waits and never switches tasklets: woken waiters are queued on their schedulers. Any party may release
    /// (a semaphore has no owner).
    /// </remarks>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is less than 1.</exception>
    /// <exception cref="SemaphoreFullException">The free permits would exceed <see cref="MaxCount"/>; nothing was released.</exception>
    public int Release(int count = 1)
    {
        if (count < 1)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(count), count, "Release at least one permit.");
        }

        Tasklet? current = Tasklet.CurrentOrNull;
        MarkUsedBy(current);
        var wakeList = default(WakeList);
        int previous;
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            previous = _count;

            // Decided before any claim: a release that would overflow changes nothing.
            if (count > _maxCount - _count)
            {
                throw new SemaphoreFullException($"Releasing {count} permit(s) of {Describe()} would free more than its maximum of {_maxCount}. Release only permits that were taken.");
            }

            int left = count;
            while (left > 0 && _waiters.DequeueAndClaim() is { } node)
            {
                // Claimed: this waiter now holds the permit, whatever happens to it next (a kill that comes later is
                // raised at its next blocking point). A node whose claim failed was dropped, and the permit went on.
                node._waiter!.SetOutcome(node._caseIndex, null);
                wakeList.Add(node);
                left--;
            }

            _count += left;
        }

        wakeList.WakeAll(current);
        return previous;
    }

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

        Waiter waiter;
        long generation;
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_count > 0)
            {
                _count--; // no live waiter while _count > 0 (invariant): FIFO holds
                return default;
            }

            // Park. Renting comes before BeginWait, and nothing after it can throw, so the node is queued if and
            // only if the wait was begun.
            waiter = Waiter.ForParty(current);
            WaitNode node = waiter.RentNode<WaitNode>();
            node.Bind(this);
            generation = _waiters.BeginWaitLocked(waiter, node, WaitKind.Coordination);
        }

        parked = waiter;
        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return waiter.AsValueTask();
    }


    private void MarkUsedBy(Tasklet? current) => _reach.MarkUsedBy(current);

    private static void EnsureMayBlock()
    {
        if (Tasklet.CurrentOrNull is not null || Scheduler.CurrentOrNull is not null)
        {
            ThrowHelper.ThrowInvalidOperation("AsyncSemaphore.Wait blocks the calling thread, which here is a scheduler's thread: every tasklet of that scheduler would stop. Use 'await semaphore.WaitAsync()' inside tasklets; the blocking Wait is for OS threads that are not tasklets.");
        }
    }

    /// <summary>"semaphore 'pool' (0 of 4 free)": for Dump, deadlock reports and the debugger. Lock-free, best effort.</summary>
    internal string Describe()
    {
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        int free = Volatile.Read(ref _count);
        return _maxCount == int.MaxValue ? $"semaphore {name} ({free} free)" : $"semaphore {name} ({free} of {_maxCount} free)";
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Debug.Assert(_count >= 0 && _count <= _maxCount);
        Debug.Assert(_count == 0 || !_waiters.HasLive(), "a permit is free while a waiter waits");
    }

    // ---------------------------------------------------------------- IWaitSource

    void IWaitSource.EnterGate() => _gate.Enter();

    void IWaitSource.ExitGate() => _gate.Exit();

    void IWaitSource.MarkUsedBy(Tasklet? current) => MarkUsedBy(current);

    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node) => _waiters.Remove(node);

    string IWaitSource.Describe() => Describe();

    /// <summary>The registration of one blocked wait; owned and reused by its waiter.</summary>
    private sealed class WaitNode : PassiveNode
    {
        // Set only to an AsyncSemaphore (Bind), so no type check is needed.
        private AsyncSemaphore Typed => Unsafe.As<AsyncSemaphore>(_source!);

        internal void Bind(AsyncSemaphore semaphore) => BindSource(semaphore);

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
            => Typed._waiters.Enqueue(this, waiter, generation, caseIndex);
    }
}
