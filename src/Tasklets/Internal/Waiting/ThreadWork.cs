namespace Tasklets.Internal;

/// <summary>
/// The wait source of <see cref="Tasklet.RunInThread{T}(Func{CancellationToken, T}, CancellationToken)"/>: work on a
/// worker thread (<see cref="WorkerThreads"/>), and the one tasklet waiting for it (a registration like any other).
/// </summary>
/// <remarks>
/// Lock: <see cref="_gate"/> guards the queue of the waiting node. The work, when done, claims the node under it
/// (the wait may have been ended by a kill, a timeout or a cancellation first: then the claim finds nothing and the
/// result is dropped). The result fields are written before that claim and read by the tasklet after its wake.
/// Always externally reachable: a worker thread ends the wait, so deadlock detection treats it as pending work.
/// </remarks>
internal sealed class ThreadWork<T> : IWaitSource, IThreadWorkItem
{
    private readonly long _id = WaitSourceIds.Next();
    private readonly Func<CancellationToken, T> _work;
    private readonly CancellationTokenSource _cancel;
    private SpinGate _gate;
    private WaitQueue _waiting; // under _gate
    private T _result = default!;
    private ExecutionContext? _context;

    public ThreadWork(Func<CancellationToken, T> work, CancellationToken cancellationToken)
    {
        _work = work;
        _cancel = cancellationToken.CanBeCanceled ? CancellationTokenSource.CreateLinkedTokenSource(cancellationToken) : new CancellationTokenSource();
    }

    /// <summary>The work's result. Read by the tasklet after its wait completed normally.</summary>
    public T Result => _result;

    long IWaitSource.Id => _id;

    bool IWaitSource.IsExternal => true;

    /// <summary>Parks <paramref name="current"/> on this work, then hands the work to a worker thread (<see cref="WorkerThreads"/>).</summary>
    public ValueTask Start(Tasklet current, CancellationToken cancellationToken)
    {
        Waiter waiter = Waiter.ForParty(current);
        var node = new ThreadWorkNode(this);
        long generation;
        using (new GateScope(ref _gate))
        {
            generation = _waiting.BeginWaitLocked(waiter, node, WaitKind.Thread);
        }

        waiter.Commit(generation, current, Timeout.InfiniteTimeSpan, 0, cancellationToken);
        _context = ExecutionContext.Capture(); // the work runs in the caller's context, as with Task.Run
        WorkerThreads.Queue(this);
        return waiter.AsValueTask();
    }

    void IThreadWorkItem.Execute()
    {
        if (_context is null)
        {
            Execute(); // flow was suppressed by the caller
        }
        else
        {
            ExecutionContext.Run(_context, static s => ((ThreadWork<T>)s!).Execute(), this);
        }
    }

    /// <summary>The wait ended otherwise (kill, timeout, cancellation): the work's token is cancelled, its result dropped.</summary>
    public void Abandon() => _ = _cancel.CancelAsync(); // callbacks on the thread pool, not on the scheduler's thread

    private void Execute()
    {
        Exception? failure = null;
        try
        {
            _result = _work(_cancel.Token);
        }
        catch (Exception e)
        {
            failure = e;
        }

        SelectCase? node;
        using (new GateScope(ref _gate))
        {
            node = _waiting.DequeueAndClaim();
            node?._waiter!.SetOutcome(0, failure); // the result was written before the claim
        }

        node?._waiter!.Wake(front: false);
    }

    void IWaitSource.EnterGate() => _gate.Enter();

    void IWaitSource.ExitGate() => _gate.Exit();

    void IWaitSource.MarkUsedBy(Tasklet? current)
    {
    }

    void IWaitSource.WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
        => WaitSources.WithdrawAll(this, node, others, waiter, generation);

    void IWaitSource.RemoveLocked(SelectCase node) => _waiting.Remove(node);

    public string Describe() => "running in a thread";

    /// <summary>The registration of the waiting tasklet.</summary>
    private sealed class ThreadWorkNode : PassiveNode
    {
        public ThreadWorkNode(ThreadWork<T> source)
        {
            _source = source;
        }

        private ThreadWork<T> Typed => (ThreadWork<T>)_source!;

        internal override string DescribeWait() => "running in a thread";

        internal override int GateSequenceUnlocked() => Typed._gate.Sequence;

        internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
            => Typed._waiting.Enqueue(this, waiter, generation, caseIndex);
    }
}
