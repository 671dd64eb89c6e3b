using System.Diagnostics;
using System.Runtime.ExceptionServices;

namespace Tasklets;

/// <summary>
/// Structured concurrency (Trio's nursery, Kotlin's <c>coroutineScope</c>): a group owns the tasklets it starts, and
/// no child outlives it. <c>await using var g = new TaskletGroup();</c> waits for every child when the block ends.
/// </summary>
/// <remarks>
/// <para><b>Rules.</b> Children run on the scheduler of the tasklet that created the group. <see cref="WaitAsync"/>
/// and <see cref="DisposeAsync"/> return when every child is dead (children started meanwhile, by other children,
/// included); then the group is closed and <see cref="Go(Func{Task}, string?)"/> throws. The first child that fails
/// kills its siblings at once (they run their <c>finally</c> blocks; children started later are killed as they
/// start), and the wait then throws that failure, or an <see cref="AggregateException"/> when several children
/// failed (in the order they failed). A killed child is not a failure. A kill, a timeout scope, a
/// <see cref="Tasklet.Throw"/> or the cancellation token of the waiting party ends its wait only after the group has
/// killed every child and waited for them to die; the wait then rethrows that exception, unless children failed,
/// whose failures it throws instead (so none is lost). Failures the group throws count as observed:
/// <see cref="Scheduler.Run()"/> does not report them again, and no scheduler reports them as unobserved while the
/// group may still throw them; a group that is never waited hands them back when the tasklet that created it ends,
/// and they are reported as unobserved then.</para>
/// <para><b>What it does not see</b>: an exception leaving the <c>await using</c> block does not cancel the
/// children (C# does not tell DisposeAsync); catch it and call <see cref="Cancel"/> if the children should stop.</para>
/// <para><b>Thread-safety</b>: every member may be used from any thread. The group's lock is held only to spawn
/// (which only queues the child), add or list children, never while a tasklet is killed, woken or runs.</para>
/// <para><b>Cost</b>: per child, the tasklet plus a small wrapper (two objects) that reports its failure to the group;
/// the group keeps its children until it is closed.</para>
/// </remarks>
/// <example><code>
/// await using (var group = new TaskletGroup("fetch"))
/// {
///     foreach (string url in urls)
///     {
///         group.Go(() => FetchAsync(url));
///     }
/// } // waits for all; the first failure kills the rest and is rethrown here
/// </code></example>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed class TaskletGroup : IAsyncDisposable
{
    private readonly Scheduler _scheduler;

    // The tasklet that created the group, which is to wait for it: while it is alive and the group open, the failures
    // the group recorded are the group's to throw, and the scheduler does not report them as unobserved.
    private readonly Tasklet _owner;

    // Guards the fields below it. Held only to read or change them: never while killing, spawning user code or waiting.
    private readonly Lock _gate = new();

    // Every child started, in start order; only appended to. Waits walk it by index, so children started during a
    // wait are waited for too.
    private readonly List<Tasklet> _children = [];

    // Failures of children, in the order they were recorded (by the failing child's wrapper, or by a wait that found
    // a child dead with a failure its wrapper could not see: a Throw before it started). Null until one fails.
    private List<Exception>? _failures;

    // Invariant: once true, every child in _children has been killed or is being killed by whoever set it, and Go
    // kills every later child itself.
    private bool _cancelled;

    // True once a wait has seen every child dead with no child left to wait for; then Go throws.
    private bool _closed;

    // True once a WaitAsync has thrown the failures: DisposeAsync after it (the end of the await using block that
    // awaited WaitAsync) does not throw them a second time over the first.
    private bool _failuresThrown;

    private bool _disposed;

    /// <summary>Creates a group whose children run on the current tasklet's scheduler.</summary>
    /// <param name="name">A name for diagnostics and error messages.</param>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet: a group belongs to the tasklet that
    /// creates it, and its children run on that tasklet's scheduler.</exception>
    public TaskletGroup(string? name = null)
    {
        Tasklet current = Tasklet.CurrentOrNull ?? throw new InvalidOperationException(
            "A TaskletGroup must be created inside a tasklet: its children run on the creating tasklet's scheduler, and the tasklet that "
            + "creates it waits for them. Create it in a tasklet body, e.g. inside Scheduler.Run(async () => { await using var group = new TaskletGroup(); ... }).");
        _scheduler = current.Scheduler;
        _owner = current;
        Name = name;
    }

    /// <summary>The name given at creation, or null.</summary>
    public string? Name { get; }

    /// <summary>The children that are still alive, in start order (a snapshot).</summary>
    public IReadOnlyCollection<Tasklet> Children
    {
        get
        {
            lock (_gate)
            {
                return _children.FindAll(static t => t.IsAlive);
            }
        }
    }

    /// <summary>
    /// True while the failures recorded here are still the group's to throw: it is not closed (a wait that closes it
    /// has joined, and so observed, every child) and the tasklet that created it, which waits for it, is alive. A
    /// group never waited hands them back to the scheduler when its creator ends (issue 15). Read lock-free by the
    /// children's scheduler thread: both facts only ever turn false, and a stale true only delays the report to the
    /// scheduler's next report point.
    /// </summary>
    internal bool HoldsChildFailures => !Volatile.Read(ref _closed) && _owner.IsAlive;

    // For the debugger: never locks (another suspended thread may hold the gate); a count read is a best-effort snapshot.
    private string DebuggerDisplay => $"{Describe()}: {_children.Count} started, closed: {_closed}";

    /// <summary>Starts a child tasklet on the group's scheduler; it runs when the scheduler reaches it (FIFO).</summary>
    /// <param name="body">The child's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The child.</returns>
    /// <remarks>After <see cref="Cancel"/> or a child's failure, the child is killed before it runs. Any thread, children included.</remarks>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The group is closed: a wait saw all its children dead.</exception>
    public Tasklet Go(Func<Task> body, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var start = new ChildBody(this, body);
        Tasklet child;
        bool cancelled;
        lock (_gate)
        {
            AssertInvariants();
            // Spawning under the lock: Scheduler.Go only queues the tasklet (it runs no user code, and takes no lock
            // that is ever held while this one is taken), so a closed group spawns nothing, and a wait that closes it
            // under this lock never misses a child.
            ThrowIfClosedLocked(name);
            child = _scheduler.Go(start.RunAsync, name);
            _children.Add(child);
            cancelled = _cancelled;
        }

        KillIfCancelled(child, cancelled);
        return child;
    }

    /// <summary>Starts a child tasklet that produces a result; see <see cref="Go(Func{Task}, string?)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The child's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The child; await it (or read its Result after the group's wait) for the result.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="body"/> is null.</exception>
    /// <exception cref="InvalidOperationException">The group is closed.</exception>
    public Tasklet<T> Go<T>(Func<Task<T>> body, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(body);
        var start = new ChildBody<T>(this, body);
        Tasklet<T> child;
        bool cancelled;
        lock (_gate)
        {
            AssertInvariants();
            ThrowIfClosedLocked(name); // and the spawn under the lock: see Go above
            child = _scheduler.Go(start.RunAsync, name);
            _children.Add(child);
            cancelled = _cancelled;
        }

        KillIfCancelled(child, cancelled);
        return child;
    }

    private void ThrowIfClosedLocked(string? name)
    {
        if (_closed)
        {
            throw new InvalidOperationException(
                $"{Describe()} is closed: its wait (WaitAsync or DisposeAsync) saw all its children dead, so it cannot start "
                + $"{(name is null ? "a child" : $"'{name}'")}. Start children before the wait ends (children may start siblings while it waits), or use a new group.");
        }
    }

    // Read under the lock in Go: either a Cancel's snapshot, taken under the lock after the child was listed, has it,
    // or Go saw the flag and kills it here. Killed before its first step, it dies without running.
    private static void KillIfCancelled(Tasklet child, bool cancelled)
    {
        if (cancelled)
        {
            child.Kill();
        }
    }

    /// <summary>
    /// Kills every child (Trio's <c>cancel_scope.cancel()</c>): each gets <see cref="TaskletExitException"/> at its
    /// blocking point and runs its <c>finally</c> blocks; children started later are killed before they run. Does not
    /// wait: the group's wait returns once they are dead. Idempotent; any thread. Called by a child, that child is
    /// killed too, at its next blocking point.
    /// </summary>
    public void Cancel() => CancelExcept(null);

    // Kills every child but `spared` (the failing child, which is dying of its failure), outside the lock. The running
    // tasklet, if it is a child (it cancelled its own group), is killed last and without a throw: the kill is raised
    // at its next blocking point, as for its siblings.
    private void CancelExcept(Tasklet? spared)
    {
        Tasklet[] snapshot;
        lock (_gate)
        {
            AssertInvariants();
            _cancelled = true;
            snapshot = [.. _children];
        }

        Tasklet? current = Tasklet.CurrentOrNull;
        bool killSelf = false;
        foreach (Tasklet child in snapshot)
        {
            if (ReferenceEquals(child, spared))
            {
                continue;
            }

            if (ReferenceEquals(child, current))
            {
                killSelf = true;
                continue;
            }

            child.Kill();
        }

        if (killSelf)
        {
            current!.Scheduler.RequestInterrupt(current, null);
        }
    }

    /// <summary>
    /// Waits until every child is dead, then throws the children's failures (the first as it is; several as an
    /// <see cref="AggregateException"/>). The group is closed afterwards.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait: the group then kills its children, waits for them, and throws the cancellation.</param>
    /// <returns>Completes when every child is dead.</returns>
    /// <remarks>
    /// A library wait (a join of each child in turn): deadlock detection sees it, and <see cref="Scheduler.Dump"/> names
    /// the child it waits for. If the waiting party is killed, times out, is thrown at, or its token is cancelled, the
    /// group kills its children and waits for them to die (that last wait cannot be interrupted, and Dump shows it as a
    /// foreign await), then rethrows; children's failures take precedence. Every call throws the failures again.
    /// </remarks>
    /// <exception cref="InvalidOperationException">Called by a child of the group: it would wait for itself.</exception>
    /// <exception cref="AggregateException">Several children failed.</exception>
    /// <exception cref="TaskletExitException">The waiting tasklet was killed (the children are dead).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled (the children are dead).</exception>
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) => WaitCoreAsync(disposing: false, cancellationToken);

    /// <summary>
    /// The end of <c>await using</c>: waits for every child as <see cref="WaitAsync"/> does and throws the children's
    /// failures, unless a <see cref="WaitAsync"/> already threw them; a second call returns at once.
    /// </summary>
    /// <returns>Completes when every child is dead.</returns>
    public ValueTask DisposeAsync()
    {
        lock (_gate)
        {
            AssertInvariants();
            if (_disposed)
            {
                return default;
            }

            _disposed = true;
        }

        return WaitCoreAsync(disposing: true, default);
    }

    private async ValueTask WaitCoreAsync(bool disposing, CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        int next = 0;
        while (NextChild(ref next, current) is { } child)
        {
            try
            {
                await child.JoinAsync(cancellationToken);
            }
            catch (Exception e) when (ReferenceEquals(e, child.Exception))
            {
                // The child's own end: the join rethrows the very object it died with, and Exception is null while the
                // child is alive, so the waiting party's own interrupt (always a new object) never matches. A failure
                // its wrapper did not see (a Throw before it started) is recorded here and kills the siblings too.
                if (e is not TaskletExitException)
                {
                    RecordFailure(e, child);
                }
            }
            catch (Exception)
            {
                // The waiting party's own end: a kill, a timeout, a throw, or the token. The group must not leave its
                // children behind, so it kills them and waits, out of reach of the interrupt (it is sticky: a library
                // wait would throw it again at once), from this child on.
                Cancel();
                await WaitDetachedAsync(next - 1, current);
                if (TakeFailure(disposing) is { } failure)
                {
                    ExceptionDispatchInfo.Throw(failure);
                }

                throw;
            }
        }

        if (TakeFailure(disposing) is { } outcome)
        {
            ExceptionDispatchInfo.Throw(outcome);
        }
    }

    // Waits for the children from index `from` on with joins nothing but their ends can end. Every child has been
    // killed (Cancel above; later ones by Add), so each dies at its next blocking point.
    private async ValueTask WaitDetachedAsync(int from, Tasklet? current)
    {
        int next = from;
        while (NextChild(ref next, current) is { } child)
        {
            try
            {
                await child.JoinDetached(current);
            }
            catch (Exception e) when (ReferenceEquals(e, child.Exception))
            {
                if (e is not TaskletExitException)
                {
                    RecordFailure(e, child);
                }
            }
        }
    }

    // The child at `next` (then advances), or null once every child was waited for: the group is then closed, under
    // the same lock as Add's check, so no child can be added that no wait will see.
    private Tasklet? NextChild(ref int next, Tasklet? current)
    {
        Tasklet child;
        lock (_gate)
        {
            AssertInvariants();
            if (next == _children.Count)
            {
                _closed = true;
                return null;
            }

            child = _children[next];
        }

        next++;
        if (ReferenceEquals(child, current))
        {
            throw new InvalidOperationException(
                $"Tasklet {child.Id} '{child.Name}' is a child of {Describe()} and waited for it: it would wait for its own end forever. "
                + "Let the tasklet that created the group wait for it.");
        }

        return child;
    }

    /// <summary>Records a child's failure (once) and kills its siblings. Any thread.</summary>
    private void RecordFailure(Exception failure, Tasklet? failed)
    {
        lock (_gate)
        {
            AssertInvariants();
            _failures ??= [];
            if (_failures.Contains(failure))
            {
                return;
            }

            _failures.Add(failure);
        }

        CancelExcept(failed);
    }

    // What the wait throws: the failures, unless this is the DisposeAsync after a WaitAsync that threw them.
    private Exception? TakeFailure(bool disposing)
    {
        lock (_gate)
        {
            AssertInvariants();
            if (_failures is null || (disposing && _failuresThrown))
            {
                return null;
            }

            _failuresThrown = true;
            return _failures.Count == 1
                ? _failures[0]
                : new AggregateException($"{_failures.Count} children of {Describe()} failed; see InnerExceptions.", _failures);
        }
    }

    /// <summary>True when <paramref name="exception"/>, ending a child's body, is a failure (not the child's kill).</summary>
    private static bool IsFailure(Exception exception)
        => exception is not TaskletExitException && Tasklet.CurrentOrNull?.IsOwnKillCancellation(exception) != true;

    [Conditional("DEBUG")]
    private void AssertInvariants()
    {
        Debug.Assert(_gate.IsHeldByCurrentThread);

        // Closed only after a wait saw every listed child dead, and nothing is listed after that; death is final.
        Debug.Assert(!_closed || _children.TrueForAll(static c => !c.IsAlive), "a closed group has a live child");
    }

    private string Describe() => Name is null ? "the tasklet group" : $"tasklet group '{Name}'";

    /// <summary>A child's body: runs the user's, and reports its failure to the group before the child dies.</summary>
    private sealed class ChildBody(TaskletGroup group, Func<Task> body)
    {
        public async Task RunAsync()
        {
            try
            {
                await (body() ?? Task.CompletedTask);
            }
            catch (Exception e) when (IsFailure(e))
            {
                Tasklet? child = Tasklet.CurrentOrNull;
                child?.HoldFailureFor(group); // the group's wait will throw it: no report as unobserved meanwhile
                group.RecordFailure(e, child);
                throw;
            }
        }
    }

    /// <summary>A child's body with a result; see <see cref="ChildBody"/>.</summary>
    private sealed class ChildBody<T>(TaskletGroup group, Func<Task<T>> body)
    {
        public async Task<T> RunAsync()
        {
            try
            {
                return await (body() ?? throw new InvalidOperationException("The tasklet body returned a null Task."));
            }
            catch (Exception e) when (IsFailure(e))
            {
                Tasklet? child = Tasklet.CurrentOrNull;
                child?.HoldFailureFor(group); // the group's wait will throw it: no report as unobserved meanwhile
                group.RecordFailure(e, child);
                throw;
            }
        }
    }
}
