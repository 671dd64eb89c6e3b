using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// Go's <c>sync.WaitGroup</c> for tasklets, plain async code and OS threads: <see cref="Add"/> counts work to do,
/// <see cref="Done"/> counts it done, <see cref="WaitAsync"/> waits until the count is zero. Thread-safe, across
/// schedulers. See DESIGN.md, "Coordination", and docs/coordination.md.
/// </summary>
/// <remarks>
/// <para><b>Invariants</b> (whenever <c>_gate</c> is free): <c>_count &gt;= 0</c>; <c>_count == 0</c> implies that
/// no live node is queued (a wait is queued only while the count is positive, and the change that brings it to zero
/// claims every live node under the gate). So a waiter is woken only by the count reaching zero (or by its own kill,
/// timeout or cancellation), never before.</para>
/// <para><b>Reuse</b> (as in Go): once the count is zero and its waiters were woken, <see cref="Add"/> may start a
/// new round; waiters of the old round are already claimed and cannot see the new count. A counter that would go
/// negative throws <see cref="InvalidOperationException"/> (Go panics) and is left unchanged.</para>
/// </remarks>
/// <example><code>
/// var workers = new WaitGroup { Name = "workers" };
/// foreach (var job in jobs)
/// {
///     workers.Add();
///     Tasklet.Go(async () => { try { await RunAsync(job); } finally { workers.Done(); } });
/// }
/// await workers.WaitAsync();
/// </code></example>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed class WaitGroup : IWaitSource
{
    private readonly long _id = WaitSourceIds.Next();
    private SpinGate _gate;
    private WaitQueue _waiters; // under _gate

    // Written only under _gate; read lock-free by Count, Describe and WaitAsync's fast path.
    private int _count;

    // Set once, never cleared: a party outside a Run() scheduler's tasklets made or used the wait group.
    private Reachability _reach; // who may end waits here from outside the deadlock detector's view

    /// <summary>Creates a wait group with a count of zero.</summary>
    public WaitGroup()
    {
        // Made outside a tasklet: code the scheduler cannot see may count it down (DESIGN.md, "Deadlock").
        Tasklet? current = Tasklet.CurrentOrNull;
        _reach = Reachability.MadeBy(current);
    }

    /// <summary>A name for diagnostics: <see cref="Scheduler.Dump"/>, deadlock reports, the debugger.</summary>
    public string? Name { get; init; }

    /// <summary>The count now (a snapshot: other parties may change it at once).</summary>
    // Lock-free: a single word written only under the gate, so the read returns the value it had at that instant.
    public int Count => Volatile.Read(ref _count);

    long IWaitSource.Id => _id;

    bool IWaitSource.IsExternal => _reach.IsExternal;

    private string DebuggerDisplay => Describe();

    /// <summary>Adds <paramref name="delta"/> (which may be negative) to the count; at zero, every waiter is woken.</summary>
    /// <param name="delta">The change; call it with a positive delta before starting the work it counts.</param>
    /// <remarks>Never waits and never switches tasklets: woken waiters are queued on their schedulers.</remarks>
    /// <exception cref="InvalidOperationException">The count would go negative (more <see cref="Done"/> calls than
    /// added work) or past <see cref="int.MaxValue"/>; the count is left unchanged.</exception>
    public void Add(int delta = 1)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        MarkUsedBy(current);
        var wakeList = default(WakeList);
        using (new GateScope(ref _gate))
        {
            AssertInvariants();

            // Decided before any change: a bad delta leaves the count and the waiters as they were.
            long next = (long)_count + delta;
            if (next < 0)
            {
                ThrowHelper.ThrowInvalidOperation($"The counter of {Describe()} would go negative ({next}): Done was called more often than Add. The count is unchanged.");
            }

            if (next > int.MaxValue)
            {
                ThrowHelper.ThrowInvalidOperation($"The counter of {Describe()} would pass {int.MaxValue}. The count is unchanged.");
            }

            Volatile.Write(ref _count, (int)next);
            if (next == 0)
            {
                SelectCase? node;
                while ((node = _waiters.DequeueAndClaim()) is not null)
                {
                    // Claimed under the gate at zero: this waiter returns normally, and a later Add (a new round) cannot
                    // reach it. A node whose claim failed (kill, timeout, cancellation first) was dropped.
                    node._waiter!.SetOutcome(node._caseIndex, null);
                    wakeList.Add(node);
                }
            }
        }

        wakeList.WakeAll(current); // outside the gate, in the order served
    }

    /// <summary>Counts one piece of work done: <c>Add(-1)</c>.</summary>
    /// <exception cref="InvalidOperationException">The count is zero already; it is left unchanged.</exception>
    public void Done() => Add(-1);

    /// <summary>Waits until the count is zero; completes at once if it is zero now.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <returns>Completes when the count reached zero.</returns>
    /// <remarks>Honours <see cref="Tasklet.Timeout"/> scopes; a wait ended by kill, timeout or cancellation leaves nothing behind.</remarks>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => WaitCore(cancellationToken, out _);

    /// <summary>Waits until the count is zero, blocking the calling OS thread. For threads that are not tasklets.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <exception cref="InvalidOperationException">Called inside a tasklet or on a scheduler's thread: use <see cref="WaitAsync"/>.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public void Wait(CancellationToken cancellationToken = default)
    {
        if (Tasklet.CurrentOrNull is not null || Scheduler.CurrentOrNull is not null)
        {
            ThrowHelper.ThrowInvalidOperation("WaitGroup.Wait blocks the calling thread, which here is a scheduler's thread: every tasklet of that scheduler would stop. Use 'await group.WaitAsync()' inside tasklets; the blocking Wait is for OS threads that are not tasklets.");
        }

        ValueTask pending = WaitCore(cancellationToken, out Waiter? parked);
        if (parked is ExternalWaiter external)
        {
            external.Block();
        }

        pending.GetAwaiter().GetResult();
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

        // Lock-free "zero": one word written only under the gate, so 0 here was the count at the instant of the read,
        // and a wait that began then would have completed at once (as Go's Wait does on a zero counter).
        if (Volatile.Read(ref _count) == 0)
        {
            return default;
        }

        Waiter waiter;
        long generation;
        using (new GateScope(ref _gate))
        {
            AssertInvariants();
            if (_count == 0)
            {
                return default;
            }

            // Park; renting comes before BeginWait, and nothing after it can throw.
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

    /// <summary>"wait group 'workers' (count 3)": for Dump, deadlock reports and the debugger. Lock-free, best effort.</summary>
    internal string Describe()
    {
        string name = Name is null ? $"#{_id}" : $"'{Name}'";
        return $"wait group {name} (count {Volatile.Read(ref _count)})";
    }

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);
        Debug.Assert(_count >= 0);
        Debug.Assert(_count > 0 || !_waiters.HasLive(), "the count is zero while a waiter waits");
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
        // Set only to a WaitGroup (Bind), so no type check is needed.
        private WaitGroup Typed => Unsafe.As<WaitGroup>(_source!);

        internal void Bind(WaitGroup group) => BindSource(group);

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
            => Typed._waiters.Enqueue(this, waiter, generation, caseIndex);
    }
}
