using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A lightweight cooperative thread: an async method whose continuations run on its <see cref="Scheduler"/>.
/// </summary>
/// <remarks>
/// <para>A tasklet runs until it awaits; at most one tasklet of a scheduler runs at a time, so code between two
/// awaits is never interleaved with another tasklet of the same scheduler. While it runs,
/// <see cref="Current"/> is the tasklet and <see cref="SynchronizationContext.Current"/> is bound to it, so
/// foreign awaits (Task.Delay, sockets) resume it on its scheduler. Never use <c>ConfigureAwait(false)</c>
/// inside a tasklet: it leaves the scheduler.</para>
/// <para>Thread-safety: <see cref="Kill"/>, <see cref="Throw"/>, <see cref="JoinAsync(CancellationToken)"/> and the
/// properties may be used from any thread.</para>
/// </remarks>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public partial class Tasklet
{
    // _lifecycle values: the tasklet's own life, apart from waiting (State derives the rest).
    // Bytes, with the interrupt bits, so that the small fields of a tasklet pack into one 8-byte block.
    internal const byte LifeCreated = 0;
    internal const byte LifeStarted = 1;
    internal const byte LifeDying = 2;  // killed before it started: its exception is being recorded
    internal const byte LifeEnding = 3; // dead to every reader; its joiners are being woken
    internal const byte LifeDead = 4;   // dead, and every joiner queued before the end was woken

    // _interrupts bits: checked at the entry of every library operation.
    private const byte InterruptKill = 1;
    private const byte InterruptThrow = 2;
    private const byte InterruptTimeout = 4;

    private static long s_nextId;

    private readonly Scheduler _scheduler;
    private Delegate? _body;
    private volatile byte _interrupts;

    // What few tasklets need (a name, joiners, timeouts, a thrown exception, checkpoints): allocated on first use,
    // by any thread (CAS), so that a plain tasklet stays small (docs/performance.md, memory per tasklet).
    private TaskletColdState? _cold;

    internal readonly TaskletWaiter _waiter;
    internal byte _lifecycle;
    internal Task? _task;

    // Until the start: the ExecutionContext of the spawner (null if it suppressed the flow), which the body starts in.
    // After it, for a body on the library's builder: the body's own, recorded at each suspension (TaskletBody.Box)
    // and installed at each resumption (TaskletBodyBox.Resume); one field for both, 8 B per tasklet less. Written and
    // read on the scheduler thread once the tasklet runs; before, the spawn publishes it with the tasklet.
    internal ExecutionContext? _context;
    internal bool _observed;
    internal bool _inForeignWait;
    internal int _atomicDepth;

    // Links in the scheduler's list of alive tasklets; scheduler thread only.
    internal Tasklet? _prevAlive;
    internal Tasklet? _nextAlive;

    internal Tasklet(Scheduler scheduler, Delegate body, string? name)
    {
        _scheduler = scheduler;
        _body = body;
        if (name is not null)
        {
            _cold = new TaskletColdState { Name = name };
        }

        Id = Interlocked.Increment(ref s_nextId);
        _waiter = new TaskletWaiter(this);
        _context = ExecutionContext.Capture(); // the spawner's AsyncLocals, Activity, logging scopes: as Task.Run
    }

    /// <summary>The tasklet running on this thread, or null outside tasklets.</summary>
    public static Tasklet? Current => CurrentOrNull;

    // Derived from the scheduler this thread is running (one thread-static for both), so that a switch between
    // tasklets writes no thread-static for it. Null between steps.
    internal static Tasklet? CurrentOrNull
    {
        // Every channel operation starts here: inlined, it is one thread-static read and one field read.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Scheduler.CurrentOrNull?.RunningTasklet;
    }

    /// <summary>A process-unique id, increasing in spawn order.</summary>
    public long Id { get; }

    /// <summary>The name given at spawn, or "tasklet-{Id}".</summary>
    public string Name => _cold?.Name ?? $"tasklet-{Id}";

    /// <summary>The scheduler this tasklet runs on.</summary>
    public Scheduler Scheduler => _scheduler;

    /// <summary>Where the tasklet is in its life cycle. A snapshot: it may change at once when read from another thread.</summary>
    public TaskletState State
    {
        get
        {
            int life = Volatile.Read(ref _lifecycle);
            if (life >= LifeEnding)
            {
                return TaskletState.Dead;
            }

            if (ReferenceEquals(_scheduler.RunningTasklet, this))
            {
                return TaskletState.Running;
            }

            if (life is LifeCreated or LifeDying)
            {
                return TaskletState.Created;
            }

            return _waiter.IsParked || _inForeignWait || HasExternalWaits ? TaskletState.Blocked : TaskletState.Runnable;
        }
    }

    /// <summary>True until the tasklet has finished (returned, failed or been killed).</summary>
    public bool IsAlive => Volatile.Read(ref _lifecycle) < LifeEnding;

    /// <summary>The exception the tasklet ended with, once dead: its failure, or a <see cref="TaskletExitException"/> if it was killed.</summary>
    public Exception? Exception => Volatile.Read(ref _lifecycle) >= LifeEnding ? _cold?.Exception : null;

    /// <summary>
    /// A token cancelled when this tasklet is killed, so that foreign awaits can be made killable:
    /// <c>await http.GetAsync(url, Tasklet.Current!.CancellationToken)</c>. Created on first use (a tasklet that never
    /// asks pays nothing); any thread may read it.
    /// </summary>
    /// <remarks>
    /// Only a kill cancels it, not a timeout scope: a scope ends, and a cancelled token cannot be reset. Its callbacks
    /// run on the thread pool, never on the scheduler's thread. A tasklet that was killed and ends with the
    /// <see cref="OperationCanceledException"/> of this token ends killed (<see cref="TaskletExitException"/>), not
    /// failed.
    /// </remarks>
    public CancellationToken CancellationToken
    {
        get
        {
            TaskletColdState cold = Cold;
            CancellationTokenSource? source = Volatile.Read(ref cold.KillSource);
            if (source is null)
            {
                var created = new CancellationTokenSource();
                source = Interlocked.CompareExchange(ref cold.KillSource, created, null) ?? created;
                if (!ReferenceEquals(source, created))
                {
                    created.Dispose();
                }

                // The CAS above is a full fence, and a kill fences between setting its mark and reading the source
                // (CancelOnKill): either the kill finds this source, or this read sees the kill.
                if (IsKillRequested || (Volatile.Read(ref _lifecycle) >= LifeDying && cold.Exception is TaskletExitException))
                {
                    source.Cancel(); // nothing is registered on it yet: no callback runs here
                }
            }

            return source.Token;
        }
    }

    internal Waiter Waiter => _waiter;

    /// <summary>The cold state, allocated on first use. Any thread.</summary>
    internal TaskletColdState Cold => _cold ?? CreateCold();

    /// <summary>The innermost open timeout scope, or null. Scheduler thread only.</summary>
    internal TimeoutScope? InnermostTimeout
    {
        get => _cold?.InnermostTimeout;
        set
        {
            if (value is not null || _cold is not null)
            {
                Cold.InnermostTimeout = value;
            }
        }
    }

    private string DebuggerDisplay => $"tasklet {Id} '{Name}' {State}";

    // ---------------------------------------------------------------- spawning

    /// <summary>Spawns a tasklet on the current scheduler; it runs when the scheduler reaches it (FIFO).</summary>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    public static Tasklet Go(Func<Task> body, string? name = null) => CurrentScheduler(nameof(Go)).Go(body, name);

    /// <summary>Spawns a tasklet that produces a result on the current scheduler.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    public static Tasklet<T> Go<T>(Func<Task<T>> body, string? name = null) => CurrentScheduler(nameof(Go)).Go(body, name);

    /// <summary>
    /// Spawns a tasklet on the current scheduler that <paramref name="cancellationToken"/> kills: see
    /// <see cref="Scheduler.Go(Func{Task}, string?, CancellationToken)"/>.
    /// </summary>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    public static Tasklet Go(Func<Task> body, string? name, CancellationToken cancellationToken)
        => CurrentScheduler(nameof(Go)).Go(body, name, cancellationToken);

    /// <summary>Spawns a tasklet that produces a result on the current scheduler, killed by <paramref name="cancellationToken"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    public static Tasklet<T> Go<T>(Func<Task<T>> body, string? name, CancellationToken cancellationToken)
        => CurrentScheduler(nameof(Go)).Go(body, name, cancellationToken);

    /// <summary>
    /// Spawns a tasklet on the current scheduler whose <c>async</c> body runs on the library's own builder: an async
    /// lambda binds here rather than to <see cref="Go(Func{Task}, string?)"/>, with no change to the lambda.
    /// </summary>
    /// <param name="body">The tasklet's code: an async lambda or an <c>async TaskletTask</c> method.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    [OverloadResolutionPriority(1)]
    public static Tasklet Go(Func<TaskletTask> body, string? name = null) => CurrentScheduler(nameof(Go)).Go(body, name);

    /// <summary>Spawns a tasklet that produces a result, its async body on the library's builder; see <see cref="Go(Func{TaskletTask}, string?)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    [OverloadResolutionPriority(1)]
    public static Tasklet<T> Go<T>(Func<TaskletTask<T>> body, string? name = null) => CurrentScheduler(nameof(Go)).Go(body, name);

    /// <summary>Spawns a tasklet, its async body on the library's builder, killed by <paramref name="cancellationToken"/>.</summary>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    [OverloadResolutionPriority(1)]
    public static Tasklet Go(Func<TaskletTask> body, string? name, CancellationToken cancellationToken)
        => CurrentScheduler(nameof(Go)).Go(body, name, cancellationToken);

    /// <summary>Spawns a tasklet that produces a result, its async body on the library's builder, killed by <paramref name="cancellationToken"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="InvalidOperationException">No scheduler is current on this thread.</exception>
    [OverloadResolutionPriority(1)]
    public static Tasklet<T> Go<T>(Func<TaskletTask<T>> body, string? name, CancellationToken cancellationToken)
        => CurrentScheduler(nameof(Go)).Go(body, name, cancellationToken);

    private static Scheduler CurrentScheduler(string member)
        => Scheduler.Current ?? throw new InvalidOperationException(Strings.NoCurrentScheduler("Tasklet." + member));

    // ---------------------------------------------------------------- switching

    /// <summary>Moves the current tasklet to the back of the run queue (Stackless's <c>schedule()</c>).</summary>
    /// <returns>Completes when the tasklet runs again.</returns>
    /// <remarks>Inside <see cref="Atomic"/> it returns at once without switching.</remarks>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet.</exception>
    /// <exception cref="TaskletExitException">The tasklet was killed.</exception>
    public static TaskletOp Yield()
    {
        Tasklet current = RequireCurrent(nameof(Yield));
        current.ThrowIfInterrupted();
        if (current._atomicDepth > 0)
        {
            return default;
        }

        return current.YieldAsync();
    }

    /// <summary>
    /// A soft preemption point for CPU-bound tasklets: yields only if the tasklet has run for its time slice
    /// (<see cref="SchedulerOptions.TimeSlice"/>) or the watchdog budget (<see cref="Scheduler.RunFor"/>) is spent,
    /// and raises a pending kill or timeout.
    /// </summary>
    /// <remarks>
    /// <para>It also gives way at once when a wake-up from outside (an I/O completion, a partner on another thread) or
    /// a due timer is waiting; those tasklets run before this one resumes (I/O priority).</para>
    /// <para>Cheap when nothing waits: a checkpoint that does not give way reads one counter. The clock is read at the
    /// first checkpoint of a step and then every few checkpoints: as many as take about 20 µs at the rate this step
    /// checkpoints at, never more than 64. A timer due in between fires that much late.</para>
    /// <para>In deterministic mode (<see cref="SchedulerOptions.Seed"/>) the slice is 64 checkpoints within one step
    /// instead of a duration, so that runs replay exactly.</para>
    /// </remarks>
    /// <returns>Usually completes at once; otherwise when the tasklet runs again.</returns>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet.</exception>
    public static TaskletOp Checkpoint()
    {
        Tasklet current = RequireCurrent(nameof(Checkpoint));
        current.ThrowIfInterrupted();
        if (current._atomicDepth > 0)
        {
            return default;
        }

        // I/O priority: a wake-up posted from outside goes first, at once, whatever is left of the slice. A stale
        // zero read of the inbox count only delays that to a later checkpoint or switch: nothing posted is dropped.
        Scheduler scheduler = current._scheduler;
        if (scheduler.HasPostedWakeups || scheduler.IsCheckpointDue())
        {
            return current.GiveWayAtCheckpoint();
        }

        return default;
    }

    /// <summary>Suspends the current tasklet for <paramref name="delay"/> on the scheduler's clock (virtual in deterministic mode).</summary>
    /// <param name="delay">How long; <see cref="TimeSpan.Zero"/> yields; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> waits until killed.</param>
    /// <returns>Completes after the delay.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative (other than infinite).</exception>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet; outside, use Task.Delay.</exception>
    /// <exception cref="TaskletExitException">The tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The tasklet's timeout expired first.</exception>
    public static ValueTask Sleep(TimeSpan delay) => Sleep(delay, default);

    /// <summary>
    /// Suspends the current tasklet for <paramref name="delay"/> on the scheduler's clock, or until
    /// <paramref name="cancellationToken"/> is cancelled.
    /// </summary>
    /// <param name="delay">How long; <see cref="TimeSpan.Zero"/> yields; <see cref="System.Threading.Timeout.InfiniteTimeSpan"/> waits until cancelled or killed.</param>
    /// <param name="cancellationToken">Ends the sleep early with <see cref="OperationCanceledException"/>; a token already cancelled throws without switching.</param>
    /// <returns>Completes after the delay.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="delay"/> is negative (other than infinite).</exception>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet; outside, use Task.Delay.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    /// <exception cref="TaskletExitException">The tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The tasklet's timeout expired first.</exception>
    public static ValueTask Sleep(TimeSpan delay, CancellationToken cancellationToken)
    {
        if (delay < TimeSpan.Zero && delay != System.Threading.Timeout.InfiniteTimeSpan)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(delay), delay, Strings.NegativeDelay);
        }

        Tasklet current = RequireCurrent(nameof(Sleep));
        current.ThrowIfInterrupted();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (delay == TimeSpan.Zero)
        {
            return current.YieldAsync();
        }

        Waiter waiter = Waiter.ForParty(current);
        long generation = waiter.BeginWait(WaitKind.Sleep);
        waiter.Commit(generation, current, delay, 0, cancellationToken);
        return waiter.AsValueTask();
    }

    /// <summary>
    /// Sets a deadline on the current tasklet until the returned scope is disposed: the blocking operation in
    /// progress at the deadline, and every later one inside the scope, throws <see cref="TaskletTimeoutException"/>.
    /// </summary>
    /// <param name="after">Time until the deadline, on the scheduler's clock.</param>
    /// <returns>The scope; dispose it (<c>using</c>) to remove the deadline.</returns>
    /// <remarks>Scopes nest; the earliest deadline wins and the exception names its scope. An operation that times out took no effect.</remarks>
    /// <example><code>
    /// using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
    /// {
    ///     var reply = await replies.ReceiveAsync();
    /// }
    /// </code></example>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="after"/> is negative (other than infinite).</exception>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet.</exception>
    public static TimeoutScope Timeout(TimeSpan after)
    {
        if (after < TimeSpan.Zero && after != System.Threading.Timeout.InfiniteTimeSpan)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(after), after, Strings.NegativeDelay);
        }

        Tasklet current = RequireCurrent(nameof(Timeout));
        return new TimeoutScope(current, after);
    }

    /// <summary>
    /// Enters an atomic section until the returned scope is disposed: <see cref="Yield"/>, <see cref="Checkpoint"/>
    /// and the watchdog do not switch away inside it. Blocking operations still block (as in Stackless).
    /// </summary>
    /// <returns>The scope; dispose it (<c>using</c>) to leave the section.</returns>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet.</exception>
    public static AtomicScope Atomic()
    {
        Tasklet current = RequireCurrent(nameof(Atomic));
        current._atomicDepth++;
        return new AtomicScope(current);
    }

    // ---------------------------------------------------------------- threads

    /// <summary>
    /// Runs blocking or CPU-bound <paramref name="work"/> on a thread apart from the scheduler while the current tasklet
    /// waits, as a library wait: the scheduler runs its other tasklets meanwhile. The threads are the library's own
    /// (one per work running at once, kept a few seconds when idle), not the .NET thread pool, whose threads deliver
    /// I/O completions; the work runs in the caller's ExecutionContext, as with Task.Run.
    /// </summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="work">The work; it gets a token that is cancelled when the wait is abandoned.</param>
    /// <param name="cancellationToken">Cancels the wait (and the work's token).</param>
    /// <returns>The work's result; its exception is rethrown.</returns>
    /// <remarks>
    /// A kill wakes the tasklet at once with <see cref="TaskletExitException"/> (as do a timeout scope and
    /// <paramref name="cancellationToken"/> with their exceptions); the work's token is then cancelled, and its result,
    /// whenever it comes, is discarded. <see cref="Scheduler.Dump"/> shows the wait as "running in a thread", and
    /// deadlock detection counts it as pending work.
    /// </remarks>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet.</exception>
    public static async ValueTask<T> RunInThread<T>(Func<CancellationToken, T> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        Tasklet current = RequireCurrent(nameof(RunInThread));
        current.ThrowIfInterrupted();
        cancellationToken.ThrowIfCancellationRequested();
        var thread = new ThreadWork<T>(work, cancellationToken);
        ValueTask wait = thread.Start(current, cancellationToken);
        try
        {
            await wait;
        }
        catch
        {
            thread.Abandon(); // harmless when the exception is the work's own: nothing listens any more
            throw;
        }

        return thread.Result;
    }

    /// <summary>Runs blocking or CPU-bound <paramref name="work"/> on a thread apart from the scheduler while the current tasklet waits; see <see cref="RunInThread{T}(Func{CancellationToken, T}, CancellationToken)"/>.</summary>
    /// <param name="work">The work; it gets a token that is cancelled when the wait is abandoned.</param>
    /// <param name="cancellationToken">Cancels the wait (and the work's token).</param>
    /// <returns>Completes when the work finished; its exception is rethrown.</returns>
    /// <exception cref="InvalidOperationException">Not called inside a tasklet.</exception>
    public static async ValueTask RunInThread(Action<CancellationToken> work, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(work);
        await RunInThread(
            token =>
            {
                work(token);
                return true;
            },
            cancellationToken);
    }

    // ---------------------------------------------------------------- kill, throw, join

    /// <summary>
    /// Requests that the tasklet end: <see cref="TaskletExitException"/> is raised at its blocking point (at once if
    /// it is blocked; at its next library operation if it is runnable or awaiting something foreign). A tasklet that
    /// never started dies without running; killing yourself throws now. The kill is sticky. Any thread may call it.
    /// </summary>
    /// <exception cref="TaskletExitException">The caller killed itself.</exception>
    public void Kill()
    {
        if (TryEndBeforeStart(new TaskletExitException()))
        {
            return;
        }

        if (!IsAlive)
        {
            return;
        }

        if (ReferenceEquals(CurrentOrNull, this))
        {
            _interrupts |= InterruptKill;
            CancelOnKill();
            throw new TaskletExitException();
        }

        _scheduler.RequestInterrupt(this, null);
    }

    /// <summary>Kills the tasklet (<see cref="Kill"/>, which never blocks) and waits until it is dead.</summary>
    /// <returns>Completes when the tasklet is dead (its <c>finally</c> blocks ran). Throws the tasklet's failure if it failed while dying.</returns>
    /// <exception cref="TaskletExitException">The caller killed itself, or the caller was killed while waiting.</exception>
    public async ValueTask KillAndJoinAsync()
    {
        Kill();
        try
        {
            await JoinAsync();
        }
        catch (TaskletExitException) when (_cold?.Exception is TaskletExitException && (CurrentOrNull is not { IsKillRequested: true }))
        {
            // The expected outcome of a kill.
        }
    }

    /// <summary>The former name of <see cref="KillAndJoinAsync"/>, kept until 1.0: kills the tasklet and waits until it is dead.</summary>
    /// <returns>Completes when the tasklet is dead.</returns>
    [Obsolete("Use KillAndJoinAsync: KillAsync reads as the async twin of Kill, which never blocks. KillAsync will be removed in 1.0.")]
    public ValueTask KillAsync() => KillAndJoinAsync();

    /// <summary>
    /// Raises <paramref name="exception"/> in the tasklet at its blocking point (Stackless's <c>throw</c>): at once if
    /// it is blocked, at its next library operation otherwise. Not sticky. Any thread may call it.
    /// </summary>
    /// <param name="exception">The exception to raise.</param>
    /// <exception cref="InvalidOperationException">The tasklet is dead.</exception>
    public void Throw(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (!IsAlive)
        {
            ThrowHelper.ThrowInvalidOperation(Strings.ThrowToDead(this));
        }

        if (ReferenceEquals(CurrentOrNull, this))
        {
            throw exception;
        }

        if (TryEndBeforeStart(exception))
        {
            // Raised before the body ran: the tasklet dies with it, as in Stackless.
            return;
        }

        _scheduler.RequestInterrupt(this, exception);
    }

    // ---------------------------------------------------------------- kill by a token (Go with a CancellationToken)

    // The registration's callback: on the cancelling thread (any thread, or inline in Register when the token was
    // cancelled meanwhile). Never throws, unlike Kill on itself: a tasklet that cancels its own token is killed at
    // its next library operation instead of having TaskletExitException thrown out of Cancel.
    private static readonly Action<object?> s_killByToken = static state => ((Tasklet)state!).KillByToken();

    private void KillByToken()
    {
        if (TryEndBeforeStart(new TaskletExitException()))
        {
            return;
        }

        if (IsAlive)
        {
            _scheduler.RequestInterrupt(this, null); // the kill's mark, its token and the wake, on the scheduler thread
        }
    }

    /// <summary>
    /// Binds <paramref name="cancellationToken"/> to this tasklet before it is spawned: cancelling it kills the tasklet.
    /// Spawning thread, before the spawn publishes the tasklet. Nothing is allocated when the token cannot be cancelled.
    /// </summary>
    internal void KillOn(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            return;
        }

        // Written before the spawn publishes the tasklet (the inbox lock, or the owner thread itself), so the scheduler
        // thread, the only reader (ReleaseKillToken at the death), sees the whole struct. The callback, which may run
        // inline here or concurrently on the cancelling thread, never reads the field.
        Cold.KillRegistration = cancellationToken.UnsafeRegister(s_killByToken, this);
    }

    /// <summary>The tasklet died: its kill token no longer needs it. Scheduler thread (after the spawn was taken in).</summary>
    internal void ReleaseKillToken()
    {
        if (_cold is { KillRegistration: var registration } && registration != default)
        {
            registration.Unregister(); // never waits for a running callback: that one only posts a kill to a dead tasklet
        }
    }

    // ---------------------------------------------------------------- internals

    internal static Tasklet RequireCurrent(string member)
        => CurrentOrNull ?? throw new InvalidOperationException(Strings.NotInTasklet("Tasklet." + member));

    internal bool IsKillRequested => (_interrupts & InterruptKill) != 0;

    /// <summary>Raises a pending kill, throw or timeout. Called at the entry of every library operation.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void ThrowIfInterrupted()
    {
        if (_interrupts != 0)
        {
            ThrowInterrupt();
        }
    }

    private void ThrowInterrupt()
    {
        Exception? exception = TakeInterrupt();
        if (exception is not null)
        {
            throw exception;
        }
    }

    /// <summary>The exception a pending interrupt raises now (kill and timeout stay pending: they are sticky).</summary>
    private Exception? TakeInterrupt()
    {
        int interrupts = _interrupts;
        if ((interrupts & InterruptKill) != 0)
        {
            return new TaskletExitException();
        }

        if ((interrupts & InterruptThrow) != 0)
        {
            Exception? pending = Interlocked.Exchange(ref Cold.PendingThrow, null);
            _interrupts = (byte)(_interrupts & ~InterruptThrow);
            return pending;
        }

        if ((interrupts & InterruptTimeout) != 0)
        {
            TimeoutScope? expired = TimeoutScope.EarliestExpired(InnermostTimeout);
            if (expired is not null)
            {
                return expired.CreateException();
            }

            _interrupts = (byte)(_interrupts & ~InterruptTimeout);
        }

        return null;
    }

    /// <summary>
    /// Applies a kill (<paramref name="exception"/> null) or a throw: marks it pending and, if the tasklet is
    /// parked, ends that wait with it and queues the tasklet at the front. Scheduler thread only.
    /// </summary>
    internal void ApplyInterrupt(Exception? exception)
    {
        if (!IsAlive)
        {
            return;
        }

        if (exception is null)
        {
            _interrupts |= InterruptKill;
            CancelOnKill();
        }
        else
        {
            Cold.PendingThrow = exception;
            _interrupts |= InterruptThrow;
        }

        WakeWithInterrupt();
    }

    /// <summary>
    /// Cancels the tasklet's token (<see cref="CancellationToken"/>), if anyone asked for it, after the kill was
    /// marked. Its callbacks run on the thread pool, not on the caller's thread.
    /// </summary>
    internal void CancelOnKill()
    {
        Interlocked.MemoryBarrier(); // the kill's mark before the read below: see CancellationToken
        if (_cold?.KillSource is { IsCancellationRequested: false } source)
        {
            Task cancelled = source.CancelAsync();
            if (!cancelled.IsCompleted)
            {
                // Run(main) waits for it before it abandons a leftover in a foreign wait (the callbacks may end it).
                Volatile.Write(ref _cold.KillCancellation, cancelled);
                cancelled.ContinueWith(static (_, s) => ((Scheduler)s!).Signal(), _scheduler, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
        }
    }

    /// <summary>True while the callbacks of this tasklet's token, cancelled by its kill, are still running.</summary>
    /// <remarks>
    /// Read by Run(main) on the scheduler thread. The kills it waits for are its own KillAll, on that thread, so the
    /// store above is seen. A kill from another thread that races the end of main may be read a moment late: that
    /// leftover is then abandoned while its token's callbacks still run (documented with Run(main)); nothing is lost
    /// but the chance to run its finally on a scheduler that is returning.
    /// </remarks>
    internal bool IsKillCancellationRunning => _cold is { } cold && Volatile.Read(ref cold.KillCancellation) is { IsCompleted: false };

    /// <summary>True when <paramref name="exception"/> is the cancellation of this tasklet's own token by its kill.</summary>
    internal bool IsOwnKillCancellation(Exception exception)
        => exception is OperationCanceledException { CancellationToken: var token } and not TaskletExitException
           && IsKillRequested && _cold?.KillSource is { } source && token == source.Token;

    /// <summary>A timeout scope of this tasklet expired. Scheduler thread only.</summary>
    internal void ApplyTimeout()
    {
        _interrupts |= InterruptTimeout;
        WakeWithInterrupt();
    }

    /// <summary>Recomputes the timeout bit after a scope was left.</summary>
    internal void RefreshTimeoutFlag()
    {
        if ((_interrupts & InterruptTimeout) != 0 && TimeoutScope.EarliestExpired(InnermostTimeout) is null)
        {
            _interrupts = (byte)(_interrupts & ~InterruptTimeout);
        }
    }

    /// <summary>
    /// True when <see cref="TakeInterrupt"/> would return an exception now. Scheduler thread only: the interrupt bits,
    /// the pending throw and the timeout scopes change only there, so the answer holds until this thread moves on.
    /// </summary>
    private bool HasRaisableInterrupt()
    {
        int interrupts = _interrupts;
        if ((interrupts & (InterruptKill | InterruptThrow)) != 0)
        {
            return true; // a throw's bit is set and cleared together with its pending exception
        }

        return (interrupts & InterruptTimeout) != 0 && TimeoutScope.EarliestExpired(InnermostTimeout) is not null;
    }

    /// <summary>
    /// Ends the wait the tasklet is blocked in with its pending interrupt: the awaited one first (its own waiter's,
    /// or one it parked on an external waiter while its own was busy with a stored operation); a kill then also ends
    /// the stored operations, so that awaiting one later cannot block a dying tasklet. Scheduler thread only.
    /// </summary>
    /// <remarks>
    /// Decided before each claim: a claim must be followed by an outcome, so the exception is known to exist before
    /// the wait is claimed (a timeout whose scope was left meanwhile claims nothing, and the wait goes on; a throw is
    /// raised once, at the awaited wait). The claim is the only race: a partner on another thread may win it, and
    /// then the interrupt stays pending for the next blocking point. A timeout or a throw leaves stored operations
    /// alone: they were begun, and may be awaited, outside whatever raised them.
    /// </remarks>
    private void WakeWithInterrupt()
    {
        if (!HasRaisableInterrupt())
        {
            RefreshTimeoutFlag();
            return;
        }

        EndWaitsWithInterrupt(awaited: true);
        if ((_interrupts & InterruptKill) != 0)
        {
            EndWaitsWithInterrupt(awaited: false);
        }
    }

    private void EndWaitsWithInterrupt(bool awaited)
    {
        if (_waiter.IsAwaited == awaited && HasRaisableInterrupt() && _waiter.TryClaimCurrent())
        {
            _waiter.SetOutcome(-1, TakeInterrupt());
            _waiter.Wake(front: true);
        }

        if (_cold?.ExternalWaits is not { } external)
        {
            return;
        }

        // Claimed under the list's lock: a waiter leaves the list (ExternalWaiter.Release) before it can go back to a
        // thread's cache, so every waiter claimed here is still in a wait of this tasklet, not in someone else's.
        ExternalWaiter? claimed = null;
        lock (external)
        {
            foreach (ExternalWaiter waiter in external)
            {
                if (!HasRaisableInterrupt())
                {
                    break; // a throw is raised once
                }

                if (!waiter.Uninterruptible && waiter.IsAwaited == awaited && waiter.TryClaimCurrent())
                {
                    waiter.SetOutcome(-1, TakeInterrupt());
                    waiter.NextClaimed = claimed;
                    claimed = waiter;
                }
            }
        }

        while (claimed is not null)
        {
            ExternalWaiter? next = claimed.NextClaimed;
            claimed.NextClaimed = null;
            claimed.Wake(front: true); // outside the lock: it dispatches the continuation
            claimed = next;
        }
    }

    /// <summary>
    /// True when the tasklet is suspended on a library wait: one it awaits (a continuation is stored) that has not
    /// been resumed yet, on its own waiter or on an external one. Otherwise, after a step, it awaits something
    /// foreign (or nothing: it finished). Scheduler thread only.
    /// </summary>
    internal bool IsInLibraryWait
        => IsAwaitedLibraryWait(_waiter) || (_cold?.ExternalWaits is not null && AnyAwaitedWait(s_isAwaitedLibraryWait)); // after every step: the own waiter without a delegate call

    private static readonly Func<Waiter, bool> s_isAwaitedLibraryWait = IsAwaitedLibraryWait;

    private static bool IsAwaitedLibraryWait(Waiter waiter)
        => waiter.Phase is WaitPhase.Parked or WaitPhase.Claimed && waiter.IsAwaited;

    /// <summary>
    /// Calls <paramref name="check"/> on every wait the tasklet awaits, its own waiter's and the external ones, until
    /// one returns true (deadlock detection). Scheduler thread only.
    /// </summary>
    internal bool AnyAwaitedWait(Func<Waiter, bool> check)
    {
        if (check(_waiter))
        {
            return true;
        }

        if (_cold?.ExternalWaits is not { } waits)
        {
            return false;
        }

        lock (waits)
        {
            foreach (ExternalWaiter waiter in waits)
            {
                if (check(waiter))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>True while the tasklet has a wait on an external waiter (deadlock detection treats it as external).</summary>
    internal bool HasExternalWaits
    {
        get
        {
            if (_cold?.ExternalWaits is not { } waits)
            {
                return false;
            }

            lock (waits)
            {
                return waits.Count > 0;
            }
        }
    }

    /// <summary>A parked wait of this tasklet on an external waiter, or null (Dump, deadlock reports). Any thread.</summary>
    internal Waiter? ParkedExternalWait()
    {
        if (_cold?.ExternalWaits is not { } waits)
        {
            return null;
        }

        lock (waits)
        {
            foreach (ExternalWaiter waiter in waits)
            {
                if (waiter.IsParked)
                {
                    return waiter;
                }
            }
        }

        return null;
    }

    /// <summary>Records a wait of this tasklet on an external waiter (its own was busy). The tasklet's thread.</summary>
    internal void AddExternalWait(ExternalWaiter waiter)
    {
        TaskletColdState cold = Cold;
        if (cold.ExternalWaits is null)
        {
            Interlocked.CompareExchange(ref cold.ExternalWaits, [], null);
        }

        lock (cold.ExternalWaits)
        {
            cold.ExternalWaits.Add(waiter);
        }
    }

    /// <summary>Forgets a wait recorded by <see cref="AddExternalWait"/>; it ended. Any thread (whoever consumed it).</summary>
    internal void RemoveExternalWait(ExternalWaiter waiter)
    {
        List<ExternalWaiter> waits = _cold!.ExternalWaits!;
        lock (waits)
        {
            waits.Remove(waiter);
        }
    }

    /// <summary>
    /// A checkpoint gives way: the waiting wake-ups (inbox, due timers) are taken in first, so that the tasklets they
    /// make ready run before this one resumes (I/O priority); then it yields to the back of the run queue.
    /// </summary>
    private TaskletOp GiveWayAtCheckpoint()
    {
        _scheduler.TakeInWakeups();
        return YieldAsync();
    }

    /// <summary>
    /// The yield of the running tasklet (Yield, Checkpoint, Sleep(0)): to the back of the run queue. If its waiter is
    /// busy with a stored, not yet awaited operation, the yield waits on an external waiter instead, completed by a
    /// step posted to the back of the queue, so that the stored operation is left as it is.
    /// </summary>
    internal TaskletOp YieldAsync()
    {
        if (_waiter.IsIdle)
        {
            Waiter own = YieldCore(WaitKind.Yield);
            return new TaskletOp(own, (short)own.Generation);
        }

        ExternalWaiter waiter = ExternalWaiter.RentFor(null); // claimed from the start: nothing can interrupt it
        waiter.BeginClaimedWait(WaitKind.Yield);
        _scheduler.Post(this, static s => ((ExternalWaiter)s!).CompleteYield(), waiter);
        return new TaskletOp(waiter, (short)waiter.Generation);
    }

    /// <summary>
    /// Moves this (running) tasklet to the back of the run queue with a completed wait; returns its waiter.
    /// Precondition: the waiter is idle (callers check it; <see cref="YieldAsync"/> handles the busy case).
    /// </summary>
    internal Waiter YieldCore(WaitKind kind)
    {
        _waiter.BeginClaimedWait(kind);
        _scheduler.MakeReadyLocal(this, front: false);
        return _waiter;
    }

    private TaskletColdState CreateCold()
    {
        var cold = new TaskletColdState();
        return Interlocked.CompareExchange(ref _cold, cold, null) ?? cold;
    }

    /// <summary>Starts the body on the scheduler thread; a synchronous throw becomes a faulted task.</summary>
    /// <summary>
    /// Starts the body in the spawner's ExecutionContext (issue 15: context flows like Task.Run) and restores this
    /// thread's afterwards, so that what a body sets before its first await never leaks into the scheduler's thread
    /// or a tasklet started later. Scheduler thread, at the start step.
    /// </summary>
    internal Task InvokeBodyInStartContext()
    {
        ExecutionContext? context = _context;
        _context = null;
        if (context is null)
        {
            return InvokeBody();
        }

        ExecutionContext.Run(context, static s => { var t = (Tasklet)s!; t._task = t.InvokeBody(); }, this);
        return _task!;
    }

    internal virtual Task InvokeBody()
    {
        Delegate body = TakeBody();
        if (body is Func<TaskletTask> own)
        {
            return StartOwnBody(own);
        }

        try
        {
            return ((Func<Task>)body)() ?? Task.CompletedTask;
        }
        catch (Exception e)
        {
            return Task.FromException(e);
        }
    }

    // ---------------------------------------------------------------- bodies on the library's builder (TaskletTask)
    // _task of such a body: s_ownBodyRunning until it completes (it never completes: the builder replaces it), then a
    // completed task that carries the outcome for FinishTasklet and Tasklet<T>.Result.

    private static readonly Task s_ownBodyRunning = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously).Task;

    /// <summary>True while a body on the library's builder runs: it cannot complete off the scheduler.</summary>
    internal bool IsOwnBodyRunning => ReferenceEquals(_task, s_ownBodyRunning);

    /// <summary>Starts a body on the library's builder: its Start claims this tasklet and runs it to its first suspension.</summary>
    private protected Task StartOwnBody<TBody>(Func<TBody> body)
    {
        _task = s_ownBodyRunning;
        if (!_scheduler.RunBodyStart(this, body))
        {
            // The delegate returned without starting an async TaskletTask method (`() => default`): nothing ran.
            _task = FailedOutcome(new InvalidOperationException(Strings.TaskletTaskNotStarted));
        }

        return _task;
    }

    /// <summary>The builder's SetResult: the body returned. Scheduler thread, in the body's step.</summary>
    internal void SetBodyCompleted(Task outcome) => _task = outcome;

    /// <summary>
    /// The builder's SetException: the body threw; also a delegate that threw before it started the body
    /// (<see cref="Scheduler.RunBodyStart"/>). Scheduler thread, in the body's step.
    /// </summary>
    internal void SetBodyFailed(Exception exception) => _task = FailedOutcome(exception);

    /// <summary>
    /// A faulted task of this tasklet's outcome type: a <see cref="Task{TResult}"/> for a <see cref="Tasklet{T}"/>,
    /// whose Result casts its outcome to one (a plain faulted Task made it throw InvalidCastException).
    /// </summary>
    private protected virtual Task FailedOutcome(Exception exception) => Task.FromException(exception);

    /// <summary>The builder's SetException for a body with a result.</summary>
    internal void SetBodyFailed<T>(Exception exception) => _task = Task.FromException<T>(exception);

    /// <summary>The body, once: the tasklet does not keep it (and what it captured) alive after the start.</summary>
    private protected Delegate TakeBody()
    {
        Delegate body = _body!;
        _body = null;
        return body;
    }

    /// <summary>
    /// Registers, once, a callback for a body that might complete off the scheduler (after a foreign await with
    /// ConfigureAwait(false)): the scheduler then learns of the completion through its inbox.
    /// </summary>
    internal void WatchForEscape()
    {
        TaskletColdState cold = Cold;
        if (cold.EscapeCallback is not null || _task is null || IsOwnBodyRunning)
        {
            return;
        }

        cold.EscapeCallback = () => _scheduler.NotifyCompletedElsewhere(this);
        _task.ConfigureAwait(false).GetAwaiter().UnsafeOnCompleted(cold.EscapeCallback);
    }


}
