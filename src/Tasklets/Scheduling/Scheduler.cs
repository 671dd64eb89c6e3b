using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A cooperative, single-threaded executor of tasklets: at most one of its tasklets runs at a time, on the thread
/// that is inside <see cref="Run()"/>, <see cref="RunFor"/> or <see cref="RunOnce"/>. Ready tasklets wait in a FIFO
/// run queue. See DESIGN.md, "The execution model".
/// </summary>
/// <remarks>
/// <para><b>Thread discipline.</b> The run queue, the list of alive tasklets and the timers are owned by the thread
/// inside a Run method (the owner). Other threads never touch them: they post to the inbox (a lock-protected list)
/// and signal the owner, which moves inbox entries into the run queue between steps. When no thread runs the
/// scheduler, posts wait in the inbox until one does.</para>
/// <para><b>Steps.</b> A step runs one tasklet until it awaits: its start, the resumption of its library wait, or a
/// continuation posted through its <see cref="SynchronizationContext"/> by a foreign awaitable.</para>
/// </remarks>
[DebuggerDisplay("{DebuggerDisplay,nq}")]
public sealed partial class Scheduler : IDisposable
{
    /// <summary>The name of the <see cref="System.Diagnostics.Metrics.Meter"/> that carries the runtime's metrics (see docs/diagnostics.md).</summary>
    public const string MeterName = "Tasklets";

    [ThreadStatic]
    private static Scheduler? t_running;

    // Special inbox callbacks, recognised by reference while draining (never invoked as steps).
    private static readonly SendOrPostCallback s_spawn = static _ => { };
    private static readonly SendOrPostCallback s_interrupt = static _ => { };
    private static readonly SendOrPostCallback s_checkCompleted = static _ => { };
    private static readonly SendOrPostCallback s_killAll = static _ => { };
    private static readonly SendOrPostCallback s_stop = static _ => { };
    private static readonly SendOrPostCallback s_dispose = static _ => { };

    private readonly SchedulerOptions _options;
    private readonly TimeProvider _time;
    private readonly VirtualTimeProvider? _virtualTime;
    private SplitMix _random; // owner thread only
    private readonly bool _randomizeOrder;

    // Owner-thread state.
    // The run queue holds a Tasklet (start it, or resume its claimed wait) or a PostedStep (run a continuation posted
    // through its context): one reference per entry, so a switch stores one pointer.
    private Deque<object> _runQueue = new(64);
    private PostedStep? _freePostedSteps; // recycled PostedSteps, owner thread only
    private Tasklet? _aliveHead;
    private int _aliveCount;
    private int _foreignWaits;
    private long _stepCount;
    private ExecutionContext? _loopContext; // the ExecutionContext of the thread that runs the scheduler, per run
    private long _flushedSteps;
    private long _channelOperations;
    private long _coarseNow;
    private Tasklet? _running;

    // The tasklet whose body the scheduler is starting on the library's builder, until the builder's Start takes it
    // (TaskletBody.ClaimStart). Owner thread only.
    private Tasklet? _bodyStart;
    private SynchronizationContext? _installedContext;
    private readonly List<Tasklet> _failed = [];            // failures reported as unobserved, for the Run method to throw
    private readonly List<DeferredFailure> _deferredFailures = []; // failures nobody observed yet, not reported yet
    private long _pass;          // the pass in progress (see ReportDeferredFailures)
    private int _passStepsLeft;  // steps left in it: as many as entries were ready when it began
    private readonly List<Exception> _callbackFailures = [];
    private DeadlockException? _pendingDeadlock;
    private RunStop? _runStop;  // the stop of the Run(CancellationToken) in progress, or null; owner thread
    private bool _stopping;     // a stop was applied: every tasklet, also one spawned from now on, is killed; owner thread
    private int _aliveAtDeadlockKill;        // alive tasklets when a deadlock's tasklets were last killed
    private int _deadlockRoundsWithoutDeath; // kill rounds since then in which no tasklet died
    private const int MaxDeadlockRoundsWithoutDeath = 3;

    // Inbox: any thread, under _inboxLock.
    private readonly object _inboxLock = new();
    private List<Entry> _inbox = new(16);
    private List<Entry> _inboxSpare = new(16);
    private volatile int _inboxCount;
    private bool _sleeping;
    private bool _signaled;

    // Which thread is inside a Run method (0: none). Written under _inboxLock.
    private volatile int _ownerThreadId;
    private int _keepAlive;

    /// <summary>Creates a scheduler.</summary>
    /// <param name="options">Options; null for the defaults (system clock, FIFO, kill on deadlock).</param>
    public Scheduler(SchedulerOptions? options = null)
    {
        _options = options ?? new SchedulerOptions();
        if (_options.TimeSlice <= TimeSpan.Zero)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(options), _options.TimeSlice, "TimeSlice must be positive.");
        }

        if (_options.Time is not null)
        {
            _time = _options.Time;
        }
        else if (_options.Seed is not null)
        {
            _virtualTime = new VirtualTimeProvider { Scheduler = this };
            _time = _virtualTime;
        }
        else
        {
            _time = TimeProvider.System;
        }

        _random = new SplitMix(_options.Seed is int seed ? (ulong)seed : (ulong)Random.Shared.NextInt64());
        _randomizeOrder = _options.RandomizeOrder && _options.Seed is not null;
        TimeSliceTicks = (long)(_options.TimeSlice.TotalSeconds * Stopwatch.Frequency);
        _timers = new TimerHeap();
    }

    /// <summary>The scheduler of the running tasklet, or of the Run method this thread is inside; null otherwise.</summary>
    public static Scheduler? Current => t_running;

    internal static Scheduler? CurrentOrNull => t_running;

    /// <summary>The clock of this scheduler's timers: the system clock, the one in the options, or a virtual clock in deterministic mode.</summary>
    public TimeProvider Time => _time;

    /// <summary>The options this scheduler was created with.</summary>
    public SchedulerOptions Options => _options;

    /// <summary>The number of tasklets ready to run (a snapshot when read from another thread).</summary>
    public int RunnableCount => _runQueue.Count + _inboxCount;

    internal bool IsOwnerThread => _ownerThreadId == Environment.CurrentManagedThreadId;

    /// <summary>The ExecutionContext every step leaves on the thread (the Run caller's); null if its flow was suppressed. Owner thread.</summary>
    internal ExecutionContext? LoopContext => _loopContext;

    /// <summary>
    /// Runs a tasklet body on the library's builder up to its first suspension, marked as that tasklet's start; false
    /// if the delegate returned without starting an async TaskletTask method. Owner thread, in the tasklet's start step.
    /// </summary>
    internal bool RunBodyStart<TBody>(Tasklet tasklet, Func<TBody> body)
    {
        _bodyStart = tasklet;
        try
        {
            body();
        }
        catch (Exception e)
        {
            // Thrown by the delegate itself, not by an async TaskletTask method (whose builder gives its exceptions to
            // SetException): the body's failure, as a throwing Func<Task> body's is.
            _bodyStart = null;
            tasklet.SetBodyFailed(e);
            return true;
        }

        bool started = _bodyStart is null;
        _bodyStart = null;
        return started;
    }

    /// <summary>The builder's Start takes the mark: only the scheduler's start of that tasklet's body finds one.</summary>
    internal Tasklet? TakeBodyStart()
    {
        Tasklet? tasklet = _bodyStart;
        _bodyStart = null;
        return tasklet;
    }

    internal Tasklet? RunningTasklet => _running;

    internal long StepCount => _stepCount;

    internal long TimeSliceTicks { get; }

    internal bool IsDeterministic => _options.Seed is not null;

    internal long BudgetDeadline { get; private set; } = long.MaxValue;

    internal long CoarseNow => _coarseNow;

    /// <summary>A uniform draw in [0, <paramref name="bound"/>) from the scheduler's (seeded, in deterministic mode) source. Owner thread only.</summary>
    internal int NextRandom(int bound) => _random.Next(bound);

    private string DebuggerDisplay => $"scheduler: {_aliveCount} alive, {RunnableCount} runnable, {_timers.Count} timers";

    // ---------------------------------------------------------------- spawning

    /// <summary>Spawns a tasklet; it runs when the scheduler reaches it in the run queue (FIFO). Any thread may call it.</summary>
    /// <param name="body">The tasklet's code: usually an async lambda.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public Tasklet Go(Func<Task> body, string? name = null) => Go(body, name, CancellationToken.None);

    /// <summary>Spawns a tasklet that produces a result. Any thread may call it.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public Tasklet<T> Go<T>(Func<Task<T>> body, string? name = null) => Go(body, name, CancellationToken.None);

    /// <summary>
    /// Spawns a tasklet that <paramref name="cancellationToken"/> kills: cancelling it is <see cref="Tasklet.Kill"/>
    /// (<see cref="TaskletExitException"/> at its blocking point, its <c>finally</c> blocks run). Any thread may call it.
    /// </summary>
    /// <param name="body">The tasklet's code: usually an async lambda.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">
    /// Cancelling it kills the tasklet; already cancelled, the tasklet dies without running (as one killed before it
    /// started). The registration on the token is removed when the tasklet dies; a token that cannot be cancelled
    /// costs nothing. A tasklet that cancels its own token is killed at its next library operation.
    /// </param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public Tasklet Go(Func<Task> body, string? name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Spawn(new Tasklet(this, body, name), cancellationToken);
    }

    /// <summary>Spawns a tasklet that produces a result, killed by <paramref name="cancellationToken"/>; see <see cref="Go(Func{Task}, string?, CancellationToken)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public Tasklet<T> Go<T>(Func<Task<T>> body, string? name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Spawn(new Tasklet<T>(this, body, name), cancellationToken);
    }

    /// <summary>
    /// Spawns a tasklet whose <c>async</c> body runs on the library's own builder (<see cref="TaskletTask"/>): an async
    /// lambda binds here rather than to <see cref="Go(Func{Task}, string?)"/>, with no change to the lambda. Any thread.
    /// </summary>
    /// <param name="body">The tasklet's code: an async lambda or an <c>async TaskletTask</c> method.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    [OverloadResolutionPriority(1)]
    public Tasklet Go(Func<TaskletTask> body, string? name = null) => Go(body, name, CancellationToken.None);

    /// <summary>Spawns a tasklet that produces a result, its async body on the library's builder; see <see cref="Go(Func{TaskletTask}, string?)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    [OverloadResolutionPriority(1)]
    public Tasklet<T> Go<T>(Func<TaskletTask<T>> body, string? name = null) => Go(body, name, CancellationToken.None);

    /// <summary>Spawns a tasklet, its async body on the library's builder, that <paramref name="cancellationToken"/> kills; see <see cref="Go(Func{Task}, string?, CancellationToken)"/>.</summary>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    [OverloadResolutionPriority(1)]
    public Tasklet Go(Func<TaskletTask> body, string? name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Spawn(new Tasklet(this, body, name), cancellationToken);
    }

    /// <summary>Spawns a tasklet that produces a result, its async body on the library's builder, killed by <paramref name="cancellationToken"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="body">The tasklet's code.</param>
    /// <param name="name">A name for diagnostics.</param>
    /// <param name="cancellationToken">Cancelling it kills the tasklet; already cancelled, the tasklet dies without running.</param>
    /// <returns>The new tasklet; await it for the result.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    [OverloadResolutionPriority(1)]
    public Tasklet<T> Go<T>(Func<TaskletTask<T>> body, string? name, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(body);
        return Spawn(new Tasklet<T>(this, body, name), cancellationToken);
    }

    // Go's common end: the token's kill registered before the tasklet is published, then the spawn.
    private TTasklet Spawn<TTasklet>(TTasklet tasklet, CancellationToken cancellationToken)
        where TTasklet : Tasklet
    {
        tasklet.KillOn(cancellationToken);
        Spawn(tasklet);
        return tasklet;
    }

    private void Spawn(Tasklet tasklet)
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }

        if (IsOwnerThread)
        {
            AddAlive(tasklet);
            _runQueue.PushBack(tasklet);
        }
        else
        {
            if (t_running is { } spawner && !ReferenceEquals(spawner, this))
            {
                // Code of another scheduler hands the new tasklet whatever its body captures: from now on the two
                // may end each other's waits, so they are one deadlock group (before the tasklet can run).
                JoinDeadlockGroups(this, spawner); // on a tie the target stays the root: a hub outlives its visitors
            }

            PostWork(new Entry(tasklet, s_spawn, null));
        }
    }

    // ---------------------------------------------------------------- running

    /// <summary>
    /// Runs until no tasklet is alive. Sleeps while tasklets wait on timers, foreign awaitables or other threads;
    /// when another thread may wake it, it first spins for a few microseconds (an adaptive budget: docs/performance.md).
    /// </summary>
    /// <exception cref="DeadlockException">Every tasklet is blocked on library primitives and nothing can wake any of them.</exception>
    /// <exception cref="AggregateException">Tasklets failed and nobody observed their failures (by joining them).</exception>
    /// <exception cref="InvalidOperationException">Another thread is running this scheduler, or a tasklet of it called Run.</exception>
    public void Run()
    {
        RunCore(RunMode.UntilDone, null, 0);
        ThrowUnobservedFailures(final: true);
    }

    /// <summary>
    /// Runs until no tasklet is alive, as <see cref="Run()"/>, or until <paramref name="cancellationToken"/> is
    /// cancelled: then every tasklet is killed (<see cref="KillAll"/>, and so is any tasklet spawned while Run is still
    /// inside), Run goes on until they are dead (their <c>finally</c> blocks ran), and throws
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <param name="cancellationToken">Stops the run; already cancelled, the tasklets are killed before any of them runs a step.</param>
    /// <remarks>
    /// <para>After the cancellation, <see cref="KeepAlive"/> holds no longer keep Run inside, and a killed tasklet
    /// left awaiting something foreign (a kill cannot end another library's await) is abandoned once its
    /// <see cref="Tasklet.CancellationToken"/> callbacks ran, as by <see cref="Run(Func{Task}, SchedulerOptions?)"/>.</para>
    /// <para>Failures nobody observed and deadlocks are reported as by <see cref="Run()"/> and take precedence over the
    /// cancellation. A run that ended before the cancellation reached the scheduler returns normally.</para>
    /// </remarks>
    /// <exception cref="OperationCanceledException">The run was stopped by <paramref name="cancellationToken"/>.</exception>
    /// <exception cref="DeadlockException">Every tasklet is blocked on library primitives and nothing can wake any of them.</exception>
    /// <exception cref="AggregateException">Tasklets failed and nobody observed their failures (by joining them).</exception>
    /// <exception cref="InvalidOperationException">Another thread is running this scheduler, or a tasklet of it called Run.</exception>
    public void Run(CancellationToken cancellationToken)
    {
        if (!cancellationToken.CanBeCanceled)
        {
            Run();
            return;
        }

        // The stop is one more inbox request, so that the kills are made by the thread that owns the alive list. The
        // stop object tells this run's request from one a late callback of an earlier run left in the inbox.
        // RunCore makes it this run's stop once this thread owns the scheduler; a request posted before (a token
        // already cancelled) waits in the inbox, which the loop takes in first.
        var stop = new RunStop(this);
        using (cancellationToken.UnsafeRegister(static s => ((RunStop)s!).Scheduler.PostStop((RunStop)s), stop))
        {
            RunCore(RunMode.UntilDone, null, 0, stop);
        }

        ThrowUnobservedFailures(final: true);
        if (stop.Applied) // written by this thread, inside RunCore
        {
            throw new OperationCanceledException(
                "Scheduler.Run was cancelled: its tasklets were killed and are dead (their finally blocks ran).", cancellationToken);
        }
    }

    /// <summary>
    /// Runs the scheduler (<see cref="Run(CancellationToken)"/>) on a new dedicated thread, not a thread-pool thread,
    /// and returns a task that completes when Run would return: with its exception (faulted), cancelled when
    /// <paramref name="cancellationToken"/> stopped it, or successfully.
    /// </summary>
    /// <param name="cancellationToken">Stops the run: its tasklets are killed and the task is cancelled once they are dead.</param>
    /// <returns>The run; its continuations never run on the scheduler's thread.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public Task RunAsync(CancellationToken cancellationToken = default)
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }

        var completion = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run(cancellationToken);
                completion.SetResult();
            }
            catch (OperationCanceledException e) when (e.CancellationToken == cancellationToken && cancellationToken.IsCancellationRequested)
            {
                completion.SetCanceled(cancellationToken);
            }
            catch (Exception e)
            {
                completion.SetException(e);
            }
        })
        {
            IsBackground = true,
            Name = "Tasklets scheduler",
        };
        thread.Start();
        return completion.Task;
    }

    /// <summary>
    /// The watchdog run for host loops (a game frame, a UI tick): runs tasklets until <paramref name="budget"/> of
    /// real time is spent, returning at the next switch point after that, or as soon as nothing is ready (the rest
    /// wait on timers, I/O or other threads) or no tasklet is alive. It never waits.
    /// </summary>
    /// <param name="budget">Real time to spend at most; nothing interrupts code between two awaits.</param>
    /// <returns>True if tasklets are still alive (call again next frame).</returns>
    /// <remarks>
    /// A failure nobody observed (joined) is reported, here and to <see cref="SchedulerOptions.OnUnobservedFailure"/>,
    /// once: at the end of the pass after the one the tasklet died in (a pass is as many steps as tasklets were ready
    /// when it began, as <see cref="RunOnce"/> runs it; passes go on across calls), or as soon as nothing is ready,
    /// whichever comes first, if nobody observed it by then. A tasklet that joins it in the next pass observes it, and
    /// it is not reported. A <see cref="TaskletGroup"/> that will throw it, or a <see cref="Tasklet.WhenAll(Tasklet[])"/>
    /// in progress over the tasklet, holds the report until it ends. The call that reaches that point throws it.
    /// </remarks>
    /// <exception cref="AggregateException">Tasklets failed and nobody observed their failures.</exception>
    public bool RunFor(TimeSpan budget)
    {
        if (budget < TimeSpan.Zero)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(budget), budget, Strings.NegativeDelay);
        }

        long ticks = budget >= TimeSpan.FromDays(1) ? long.MaxValue / 4 : (long)(budget.TotalSeconds * Stopwatch.Frequency);
        bool alive = RunCore(RunMode.Budget, null, ticks);
        ThrowUnobservedFailures(final: false);
        return alive;
    }

    /// <summary>
    /// Runs one pass: delivers posted wake-ups, fires due timers, then runs the tasklets that were ready at the start
    /// of the pass (not the ones they make ready). For host loops and tests.
    /// </summary>
    /// <returns>True if tasklets are ready to run now (another pass would do work).</returns>
    /// <remarks>
    /// A failure nobody observed (joined) is reported, here and to <see cref="SchedulerOptions.OnUnobservedFailure"/>,
    /// once: by the call whose pass is the one after the pass the tasklet died in, or by the call whose pass ends with
    /// nothing ready, whichever comes first, if nobody observed it by then. A tasklet that joins it in the next pass
    /// observes it, and it is not reported. A <see cref="TaskletGroup"/> that will throw it, or a
    /// <see cref="Tasklet.WhenAll(Tasklet[])"/> in progress over the tasklet, holds the report until it ends.
    /// </remarks>
    /// <exception cref="AggregateException">Tasklets failed and nobody observed their failures.</exception>
    public bool RunOnce()
    {
        bool more = RunCore(RunMode.Once, null, 0);
        ThrowUnobservedFailures(final: false);
        return more;
    }

    /// <summary>
    /// Runs <paramref name="main"/> as a tasklet on a new scheduler until it ends, then kills the remaining tasklets
    /// (their <c>finally</c> blocks run) and returns (Python's <c>asyncio.run</c>).
    /// </summary>
    /// <param name="main">The main tasklet's code.</param>
    /// <param name="options">Scheduler options.</param>
    /// <exception cref="Exception">The main tasklet's failure is rethrown as it is.</exception>
    /// <exception cref="DeadlockException">Main and everything else blocked for good.</exception>
    public static void Run(Func<Task> main, SchedulerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        using var scheduler = new Scheduler(options);
        scheduler.RunMainToEnd(scheduler.Go(main, "main"));
    }

    /// <summary>Runs <paramref name="main"/> as a tasklet on a new scheduler and returns its result; see <see cref="Run(Func{Task}, SchedulerOptions?)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The main tasklet's code.</param>
    /// <param name="options">Scheduler options.</param>
    /// <returns>Main's result.</returns>
    public static T Run<T>(Func<Task<T>> main, SchedulerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        using var scheduler = new Scheduler(options);
        return scheduler.RunMainToEnd(scheduler.Go(main, "main"));
    }

    /// <summary>
    /// Runs <paramref name="main"/> as a tasklet on a new scheduler until it ends, its async body on the library's
    /// builder (<see cref="TaskletTask"/>): an async lambda binds here rather than to
    /// <see cref="Run(Func{Task}, SchedulerOptions?)"/>, with no change to the lambda; see that overload for the rest.
    /// </summary>
    /// <param name="main">The main tasklet's code: an async lambda or an <c>async TaskletTask</c> method.</param>
    /// <param name="options">Scheduler options.</param>
    /// <exception cref="Exception">The main tasklet's failure is rethrown as it is.</exception>
    /// <exception cref="DeadlockException">Main and everything else blocked for good.</exception>
    [OverloadResolutionPriority(1)]
    public static void Run(Func<TaskletTask> main, SchedulerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        using var scheduler = new Scheduler(options);
        scheduler.RunMainToEnd(scheduler.Go(main, "main"));
    }

    /// <summary>Runs <paramref name="main"/>, its async body on the library's builder, and returns its result; see <see cref="Run(Func{TaskletTask}, SchedulerOptions?)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="main">The main tasklet's code.</param>
    /// <param name="options">Scheduler options.</param>
    /// <returns>Main's result.</returns>
    [OverloadResolutionPriority(1)]
    public static T Run<T>(Func<TaskletTask<T>> main, SchedulerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(main);
        using var scheduler = new Scheduler(options);
        return scheduler.RunMainToEnd(scheduler.Go(main, "main"));
    }

    // Run(main)'s whole run: main to its end, its failure rethrown, then the unobserved failures of the rest.
    private void RunMainToEnd(Tasklet main)
    {
        RunMain(main);
        main.JoinAsync().GetAwaiter().GetResult();
        ThrowUnobservedFailures(final: true);
    }

    private T RunMainToEnd<T>(Tasklet<T> main)
    {
        RunMain(main);
        T result = main.Result;
        ThrowUnobservedFailures(final: true);
        return result;
    }

    // Run(main) rethrows main's failure as it is: main is observed from the start, so its failure is never also
    // reported as unobserved (OnUnobservedFailure, or inside a DeadlockException).
    private void RunMain(Tasklet main)
    {
        main._observed = true;
        RunCore(RunMode.UntilDone, main, 0);
    }

    /// <summary>
    /// Declares that a party outside this scheduler's tasklets (a callback, another system) will still wake or spawn
    /// tasklets here, so that <see cref="Run()"/> waits instead of reporting a deadlock, or returning while no
    /// tasklet is alive. Dispose the hold when that is no longer true.
    /// </summary>
    /// <returns>The hold.</returns>
    public IDisposable KeepAlive()
    {
        Interlocked.Increment(ref _keepAlive);
        return new KeepAliveHold(this);
    }

    private bool RunCore(RunMode mode, Tasklet? main, long budgetTicks, RunStop? stop = null)
    {
        Enter(mode);
        _runStop = stop; // only once this thread owns the scheduler: a Run refused by Enter must not replace the owner's
        EnterDiagnostics(mode); // Running/DumpAll; the step histogram's switch
        _loopContext = ExecutionContext.Capture(); // the Run caller's: posted steps give it back (see Step)
        UpdateCoarseClock(); // waits begun in the first steps are stamped with now, not 0 (Dump: "for N ms")
        SynchronizationContext? savedContext = SynchronizationContext.Current;
        Scheduler? savedRunning = t_running;
        t_running = this;
        _installedContext = null;
        try
        {
            return Loop(mode, main, budgetTicks);
        }
        finally
        {
            FlushMetrics();
            _stopping = false;
            _runStop = null;
            BudgetDeadline = long.MaxValue;
            _running = null;
            SynchronizationContext.SetSynchronizationContext(savedContext);
            t_running = savedRunning;
            ExitDiagnostics(mode);
            Exit(mode);
            if (_disposeOnExit)
            {
                CompleteDisposeAfterRun(); // a step of this run disposed the scheduler (Scheduler.Lifetime.cs)
            }
        }
    }

    private bool Loop(RunMode mode, Tasklet? main, long budgetTicks)
    {
        long budgetEnd = 0;
        if (mode == RunMode.Budget)
        {
            long start = Stopwatch.GetTimestamp();
            budgetEnd = budgetTicks >= long.MaxValue - start ? long.MaxValue : start + budgetTicks;
            BudgetDeadline = budgetEnd;
        }

        if (mode == RunMode.Once)
        {
            DrainInbox();
            UpdateCoarseClock();
            FireDueTimers();
            BeginPass();
        }
        else if (mode == RunMode.Shutdown)
        {
            DrainInbox();
            KillAlive();
        }

        bool mainEnded = false;
        int sinceTimers = 0;
        while (true)
        {
            if (_inboxCount != 0 && mode != RunMode.Once)
            {
                DrainInbox();
            }

            if (main is not null && !mainEnded && !main.IsAlive)
            {
                // Run(main): main is done; the rest are killed so their finally blocks run.
                mainEnded = true;
                KillAlive();
            }

            if (mode == RunMode.Once && (_passStepsLeft <= 0 || _runQueue.Count == 0))
            {
                // The pass is over: a report point for the failures nobody observed (idle if nothing is ready now).
                if (_deferredFailures.Count != 0)
                {
                    ReportDeferredFailures(idle: _runQueue.Count == 0 && _inboxCount == 0, final: false);
                }

                return _runQueue.Count > 0 || _inboxCount > 0;
            }

            if (_runQueue.Count > 0)
            {
                // Passes in the other modes too, counted as RunOnce counts them: one decrement per step, and at a
                // pass's end a report point when failures wait for one (RunOnce returned above instead).
                if (_passStepsLeft <= 0)
                {
                    EndPass();
                }

                _passStepsLeft--;

                // One owner-thread bool per step: the clock is read only while tasklets.step.duration is listened to.
                if (_recordStepDurations)
                {
                    StepRecorded(NextEntry());
                }
                else
                {
                    Step(NextEntry());
                }

                // At every switch: a due timer fires before the next pick (the inbox is taken in at the top of the
                // loop). One clock read per step, and only while a live timer is pending.
                if (_timers.Count > 0 && IsTimerDue())
                {
                    UpdateCoarseClock();
                    FireDueTimers();
                }

                if (++sinceTimers == 64)
                {
                    sinceTimers = 0;
                    FlushMetrics();
                    UpdateCoarseClock();
                }

                if (mode == RunMode.Budget && Stopwatch.GetTimestamp() >= budgetEnd)
                {
                    return _aliveCount > 0 || _inboxCount > 0 || _runQueue.Count > 0; // a queued invocation is work too
                }

                continue;
            }

            UpdateCoarseClock();
            if (FireDueTimers())
            {
                continue;
            }

            // Nothing is ready: every tasklet that could join a failure has run as far as it can. A report point; the
            // pass is over too.
            _passStepsLeft = 0;
            if (_deferredFailures.Count != 0)
            {
                ReportDeferredFailures(idle: true, final: false);
                if (_runQueue.Count > 0 || _inboxCount != 0)
                {
                    continue; // the callback made work
                }
            }

            // Run() also waits, with nothing alive, while a KeepAlive hold says more work will be posted.
            bool held = mode == RunMode.UntilDone && main is null && !_stopping && Volatile.Read(ref _keepAlive) > 0;
            if (_aliveCount == 0 && _inboxCount == 0 && !held)
            {
                if (_pendingDeadlock is { } deadlock)
                {
                    _pendingDeadlock = null;
                    throw WithUnobservedFailures(deadlock);
                }

                return false;
            }

            // OnlyForeignWaitsLeft before the inbox: a kill's token callbacks post the woken continuation (a cancelled
            // Task.Delay's) before their task completes, so once it reads them completed, the count read after it sees
            // the post. The other order could read an empty inbox, then callbacks that had posted and completed
            // in between, and abandon a tasklet whose continuation was already waiting.
            if ((mainEnded || _stopping) && OnlyForeignWaitsLeft() && _inboxCount == 0)
            {
                // Run(main): main ended and the rest were killed. Those left await foreign work (a kill cannot reach
                // into somebody else's awaitable) and, once their tokens' cancellation has run without waking them,
                // nothing here will: they could never run again on this scheduler after Run returns, so they are
                // abandoned rather than waited for (issue 15; Run(main) hung on them).
                return false;
            }

            switch (mode)
            {
                case RunMode.Budget:
                    // Nothing is ready: a host loop gets its frame back at once rather than a wait for the rest of
                    // the budget (which also could not overshoot it). The virtual clock still jumps to its next timer.
                    if (Stopwatch.GetTimestamp() < budgetEnd && AdvanceVirtualTime())
                    {
                        break;
                    }

                    return true;
                case RunMode.Shutdown:
                    // Shutting down: what cannot finish without waiting is left as it is.
                    return _aliveCount > 0;
                default:
                    EnterStallIdle(); // Scheduler.Stalls.cs: once per idle transition, for the stall monitor
                    IdleOrDetectDeadlock();
                    ExitStallIdle();
                    break;
            }
        }
    }

    // Every alive tasklet is in a foreign wait that its kill's cancellation, if any, has finished trying to end.
    private bool OnlyForeignWaitsLeft()
    {
        for (Tasklet? t = _aliveHead; t is not null; t = t._nextAlive)
        {
            if (!t._inForeignWait || t.IsKillCancellationRunning)
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>Runs one step: a tasklet's start, the resumption of its wait, or a posted continuation.</summary>
    private void Step(object entry)
    {
        _stepCount++;
        if (entry is PostedStep posted)
        {
            _progressSteps++; // stall monitor: any step but a yield's resumption is progress (Scheduler.Stalls.cs)
            RunPosted(posted);

            // A posted callback (an InvokeAsync delegate, a Post to a tasklet's context) may have set AsyncLocals on
            // this thread; the next step and the thread that called Run must not see them. Async continuations
            // restore their own context, so only posted steps pay this check.
            if (_loopContext is not null && !ReferenceEquals(ExecutionContext.Capture(), _loopContext))
            {
                ExecutionContext.Restore(_loopContext);
            }

            return;
        }

        // Only Tasklets and PostedSteps are queued.
        Tasklet tasklet = Unsafe.As<Tasklet>(entry);
        if (Volatile.Read(ref tasklet._lifecycle) == Tasklet.LifeCreated)
        {
            if (Interlocked.CompareExchange(ref tasklet._lifecycle, Tasklet.LifeStarted, Tasklet.LifeCreated) != Tasklet.LifeCreated)
            {
                DropEndedBeforeStart(tasklet); // killed or thrown to before it started: it never runs
                return;
            }

            _progressSteps++;
            EnterStep(tasklet, orphan: false);
            tasklet._task = tasklet.InvokeBodyInStartContext();
        }
        else if (tasklet._task is null)
        {
            DropEndedBeforeStart(tasklet);
            return;
        }
        else
        {
            // Stall monitor (Scheduler.Stalls.cs): a yield's resumption is not progress. Per switch this costs one
            // byte read of the waiter resumed next, and one increment of an owner-thread field.
            if (tasklet._waiter.WaitKind != WaitKind.Yield)
            {
                _progressSteps++;
            }

            EnterStep(tasklet, orphan: false);
            tasklet._waiter.Resume();
        }

        // Between steps no tasklet is current (Tasklet.Current derives from _running).
        _running = null;
        AfterStep(tasklet);
    }

    /// <summary>
    /// The start entry of a tasklet that a kill or a throw ended before it ran: it leaves the alive list, and a
    /// failure (a throw, not a kill) that no joiner observed is reported by Run like any other.
    /// </summary>
    private void DropEndedBeforeStart(Tasklet tasklet)
    {
        tasklet.WaitUntilDead();
        tasklet.ReleaseKillToken();
        RemoveAlive(tasklet);
        if (tasklet.Exception is not null and not TaskletExitException && !Volatile.Read(ref tasklet._observed))
        {
            DeferFailure(tasklet);
        }
    }

    /// <summary>Runs a posted continuation as a step of its tasklet, and recycles the step.</summary>
    private void RunPosted(PostedStep posted)
    {
        Tasklet tasklet = posted.Tasklet;
        SendOrPostCallback callback = posted.Callback;
        object? state = posted.State;
        posted.Tasklet = null!;
        posted.Callback = null!;
        posted.State = null;
        posted.NextFree = _freePostedSteps;
        _freePostedSteps = posted;
        if (ReferenceEquals(callback, s_checkCompleted))
        {
            AfterStep(tasklet);
            return;
        }

        if (tasklet is null)
        {
            RunInvoked(callback, state);
            return;
        }

        // A foreign continuation posted through the tasklet's context.
        if (tasklet._inForeignWait)
        {
            tasklet._inForeignWait = false;
            _foreignWaits--;
        }

        EnterStep(tasklet, orphan: !tasklet.IsAlive);
        try
        {
            callback(state);
        }
        catch (Exception e)
        {
            // Posted user code threw: no exception is silently lost.
            RecordFailure(tasklet, e);
        }

        _running = null;
        AfterStep(tasklet);
    }

    // ---------------------------------------------------------------- invoke

    /// <summary>
    /// Runs <paramref name="action"/> as a step of this scheduler, between its tasklets' steps and never in parallel
    /// with them (seed 000's explicit access to shared state), and completes when it ran. Any thread may call it.
    /// </summary>
    /// <param name="action">The code to run; it runs outside any tasklet (<see cref="Tasklet.Current"/> is null).</param>
    /// <returns>Completes when the action ran; faults with the action's exception.</returns>
    /// <remarks>
    /// The step is queued behind the steps ready now; it runs when a thread runs the scheduler (a call while none
    /// does waits until one does). Blocking inside the action stops the scheduler, as any step does. The caller's
    /// continuation never runs inline on the scheduler's thread.
    /// </remarks>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public ValueTask InvokeAsync(Action action)
    {
        ArgumentNullException.ThrowIfNull(action);
        var invocation = new Invocation<bool>(() =>
        {
            action();
            return true;
        });
        PostInvocation(invocation);
        return new ValueTask(invocation.Task);
    }

    /// <summary>Runs <paramref name="func"/> as a step of this scheduler and gives its result; see <see cref="InvokeAsync(Action)"/>.</summary>
    /// <typeparam name="T">The result type.</typeparam>
    /// <param name="func">The code to run.</param>
    /// <returns>The result; faults with the function's exception.</returns>
    /// <exception cref="ObjectDisposedException">The scheduler was disposed.</exception>
    public ValueTask<T> InvokeAsync<T>(Func<T> func)
    {
        ArgumentNullException.ThrowIfNull(func);
        var invocation = new Invocation<T>(func);
        PostInvocation(invocation);
        return new ValueTask<T>(invocation.Task);
    }

    // A posted step without a tasklet is an invocation (RunPosted tells them apart by the null tasklet).
    private void PostInvocation(IInvocation invocation)
    {
        if (_disposed)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }

        if (IsOwnerThread)
        {
            _runQueue.PushBack(RentPostedStep(null!, s_runInvocation, invocation));
        }
        else
        {
            if (t_running is { } poster && !ReferenceEquals(poster, this))
            {
                // As with a spawn: the step carries what its delegate captures to this scheduler.
                JoinDeadlockGroups(this, poster);
            }

            PostWork(new Entry(null!, s_runInvocation, invocation));
        }
    }

    private static readonly SendOrPostCallback s_runInvocation = static s => ((IInvocation)s!).Run();

    // An invocation's step: outside every tasklet, with no tasklet's context installed.
    private void RunInvoked(SendOrPostCallback callback, object? state)
    {
        _running = null;
        if (_installedContext is not null)
        {
            SynchronizationContext.SetSynchronizationContext(null);
            _installedContext = null;
        }

        callback(state); // Invocation.Run catches: the exception goes to the caller
    }

    private interface IInvocation
    {
        void Run();
    }

    // The caller's continuation runs asynchronously: never inline on the scheduler's thread, inside its step.
    private sealed class Invocation<T>(Func<T> func) : TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously), IInvocation
    {
        public void Run()
        {
            try
            {
                SetResult(func());
            }
            catch (Exception e)
            {
                SetException(e);
            }
        }
    }

    private PostedStep RentPostedStep(Tasklet tasklet, SendOrPostCallback callback, object? state)
    {
        PostedStep? step = _freePostedSteps;
        if (step is null)
        {
            step = new PostedStep();
        }
        else
        {
            _freePostedSteps = step.NextFree;
            step.NextFree = null;
        }

        step.Tasklet = tasklet;
        step.Callback = callback;
        step.State = state;
        return step;
    }

    private void EnterStep(Tasklet tasklet, bool orphan)
    {
        _running = orphan ? null : tasklet;
        // The context installed by the previous step is remembered, so that consecutive steps of one tasklet do
        // not touch the thread-static at all. Reset when a Run method starts.
        if (!ReferenceEquals(_installedContext, tasklet._waiter))
        {
            SynchronizationContext.SetSynchronizationContext(tasklet._waiter);
            _installedContext = tasklet._waiter;
        }
    }

    /// <summary>After a step: finish a tasklet whose body completed, or note that it awaits something foreign.</summary>
    private void AfterStep(Tasklet tasklet)
    {
        Task? task = tasklet._task;
        if (task is null || tasklet._lifecycle == Tasklet.LifeDead)
        {
            return;
        }

        if (task.IsCompleted)
        {
            FinishTasklet(tasklet, task);
        }
        else if (!tasklet._inForeignWait && !tasklet.IsInLibraryWait)
        {
            // Not finished and not suspended on a library wait it awaits: it awaits a foreign awaitable (a stored
            // library operation it does not await may keep its own waiter busy meanwhile).
            tasklet._inForeignWait = true;
            _foreignWaits++;
            tasklet.WatchForEscape();
        }
    }

    private void FinishTasklet(Tasklet tasklet, Task task)
    {
        Exception? exception = null;
        if (!task.IsCompletedSuccessfully)
        {
            try
            {
                task.GetAwaiter().GetResult();
            }
            catch (Exception e)
            {
                // A killed tasklet that ends with its own token's cancellation (a foreign await given
                // Tasklet.CancellationToken) ends killed, not failed.
                exception = tasklet.IsOwnKillCancellation(e) ? new TaskletExitException("The tasklet was killed.", e) : e;
            }
        }

        if (tasklet._inForeignWait)
        {
            tasklet._inForeignWait = false;
            _foreignWaits--;
        }

        RemoveAlive(tasklet);
        tasklet.ReleaseKillToken(); // one field read when no token was given to Go
        bool observed = tasklet.Finish(exception);
        if (exception is not null and not TaskletExitException && !observed && !Volatile.Read(ref tasklet._observed))
        {
            DeferFailure(tasklet);
        }
    }

    // ---------------------------------------------------------------- failures nobody observed (issue 15)
    // The rule (docs/semantics.md, "Failures nobody observed"): a failure nobody has observed is reported, once, at
    // the first report point after it is due: due at the end of the pass after the one the tasklet died in, or at
    // once when nothing is ready (idle); not while a party that will rethrow it holds it (Tasklet.IsFailureHeld).
    // Report points: the end of each pass (RunOnce's end, or the step that begins the next pass in Run and RunFor),
    // and idle. When a Run method ends for good (Run(), Run(main), a deadlock thrown) every failure still unobserved
    // is reported, held or not: nothing will run to observe it. Reported means: OnUnobservedFailure is called, and it
    // joins _failed, which the Run method in progress throws as it returns (RunOnce and RunFor throw what their call
    // reported; Run() at its end). Owner thread: the lists and the pass counters are the scheduler thread's.

    /// <summary>A failure nobody has observed yet, and the pass its tasklet died in.</summary>
    private readonly record struct DeferredFailure(Tasklet Tasklet, long Pass);

    /// <summary>Keeps a failure nobody observed at its death until its report point. Owner thread.</summary>
    private void DeferFailure(Tasklet tasklet) => _deferredFailures.Add(new DeferredFailure(tasklet, _pass));

    /// <summary>A pass begins: as many steps as entries are ready now. Owner thread.</summary>
    private void BeginPass()
    {
        _pass++;
        _passStepsLeft = _runQueue.Count;
    }

    /// <summary>The pass in progress has run its steps: a report point, then the next pass begins. Owner thread.</summary>
    private void EndPass()
    {
        if (_deferredFailures.Count != 0)
        {
            ReportDeferredFailures(idle: false, final: false);
        }

        BeginPass();
    }

    /// <summary>
    /// A report point (at the end of pass <see cref="_pass"/>, or <paramref name="idle"/>, or <paramref name="final"/>):
    /// drops the deferred failures someone observed, reports the due ones, keeps the rest. Owner thread.
    /// </summary>
    private void ReportDeferredFailures(bool idle, bool final)
    {
        int firstReported = _failed.Count;
        int kept = 0;
        for (int i = 0; i < _deferredFailures.Count; i++)
        {
            DeferredFailure deferred = _deferredFailures[i];
            Tasklet tasklet = deferred.Tasklet;

            // The hold first, then the observation: a holder observes before it lets go (Tasklet.IsFailureHeld), so a
            // read that finds no hold finds its observation. A join on another thread that observes right after the
            // read below is an observation after the report (the rule allows it: the join still rethrows).
            if (!final && tasklet.IsFailureHeld)
            {
                _deferredFailures[kept++] = deferred;
            }
            else if (Volatile.Read(ref tasklet._observed))
            {
                // Observed: nothing to report, ever.
            }
            else if (!final && !idle && deferred.Pass >= _pass)
            {
                _deferredFailures[kept++] = deferred; // died in this pass: due at the end of the next one
            }
            else
            {
                _failed.Add(tasklet);
            }
        }

        _deferredFailures.RemoveRange(kept, _deferredFailures.Count - kept);

        // The callbacks last, over what this point reported: user code, which must not see the list half compacted.
        for (int i = firstReported; i < _failed.Count; i++)
        {
            NotifyUnobservedFailure(_failed[i], _failed[i].Exception!);
        }
    }

    // SchedulerOptions.OnUnobservedFailure, on the scheduler thread at the report point of a failure nobody observed
    // (see above). Its own failure goes to the Run method, reported with the failures.
    private void NotifyUnobservedFailure(Tasklet tasklet, Exception exception)
    {
        TaskletsEventSource.Log.UnobservedFailure(this, tasklet, exception); // with or without a callback
        if (_options.OnUnobservedFailure is not { } callback)
        {
            return;
        }

        try
        {
            callback(tasklet, exception);
        }
        catch (Exception e)
        {
            _callbackFailures.Add(new InvalidOperationException(
                $"SchedulerOptions.OnUnobservedFailure threw while reporting the failure of tasklet {tasklet.Id} '{tasklet.Name}'.", e));
        }
    }

    /// <summary>A virtual-clock timer's callback threw: Run() reports it with the failures nobody observed. Scheduler thread.</summary>
    internal void RecordTimerCallbackFailure(Exception exception)
        => _callbackFailures.Add(new InvalidOperationException(
            "A callback of a timer on the scheduler's virtual clock (Time.CreateTimer) threw.", exception));

    private void RecordFailure(Tasklet tasklet, Exception exception)
        => _callbackFailures.Add(new InvalidOperationException(
            $"A continuation posted to tasklet {tasklet.Id} '{tasklet.Name}' threw.", exception));

    /// <summary>
    /// <paramref name="deadlock"/>, carrying the failures nobody observed (often its cause), which it then reports in
    /// place of <see cref="ThrowUnobservedFailures"/>: thrown, the deadlock would otherwise hide them for good.
    /// </summary>
    private DeadlockException WithUnobservedFailures(DeadlockException deadlock)
    {
        List<Exception> failures = TakeUnobservedFailures(final: true);
        if (failures.Count == 0)
        {
            return deadlock;
        }

        var message = new System.Text.StringBuilder(deadlock.Message);
        message.AppendLine().Append("Failures nobody observed, the likely cause (see InnerException):");
        foreach (Exception failure in failures)
        {
            message.AppendLine().Append("  ").Append(failure.GetType().Name).Append(": ").Append(failure.Message);
        }

        return new DeadlockException(message.ToString(), [.. deadlock.Blocked], new AggregateException(failures));
    }

    /// <summary>
    /// Throws the failures reported as unobserved (and the callbacks' failures); <paramref name="final"/> when the Run
    /// method ended for good, which reports every failure still unobserved first.
    /// </summary>
    private void ThrowUnobservedFailures(bool final)
    {
        List<Exception> failures = TakeUnobservedFailures(final);
        if (failures.Count > 0)
        {
            throw new AggregateException(
                $"{failures.Count} tasklet(s) failed and nobody observed the failure (join a tasklet to observe it).",
                failures);
        }
    }

    private List<Exception> TakeUnobservedFailures(bool final)
    {
        if (final && _deferredFailures.Count != 0)
        {
            ReportDeferredFailures(idle: true, final: true);
        }

        if (_failed.Count == 0 && _callbackFailures.Count == 0)
        {
            return [];
        }

        List<Exception> failures = [.. _callbackFailures];
        _callbackFailures.Clear();
        foreach (Tasklet tasklet in _failed)
        {
            // Reported, and still unobserved now: a join since the report point has handled it, so it is not thrown.
            if (!Volatile.Read(ref tasklet._observed) && tasklet.Exception is { } exception)
            {
                failures.Add(exception);
            }
        }

        _failed.Clear();
        return failures;
    }

    /// <summary>The next entry: FIFO, or a seeded-random ready one in exploration mode.</summary>
    private object NextEntry()
    {
        if (_randomizeOrder && _runQueue.Count > 1)
        {
            return _runQueue.RemoveAt(_random.Next(_runQueue.Count));
        }

        return _runQueue.PopFront();
    }

    private void KillAlive()
    {
        for (Tasklet? t = _aliveHead; t is not null; t = t._nextAlive)
        {
            if (Volatile.Read(ref t._lifecycle) == Tasklet.LifeCreated)
            {
                t.Kill();
            }
            else
            {
                t.ApplyInterrupt(null);
            }
        }
    }

    // ---------------------------------------------------------------- ready, post, inbox

    /// <summary>Queues a tasklet whose wait was claimed, so that the scheduler resumes it. Any thread.</summary>
    internal void MakeReady(Tasklet tasklet, bool front)
    {
        if (IsOwnerThread)
        {
            if (front)
            {
                _runQueue.PushFront(tasklet);
            }
            else
            {
                _runQueue.PushBack(tasklet);
            }
        }
        else
        {
            PostToInbox(new Entry(tasklet, null, null), front);
        }
    }

    /// <summary>Queues a tasklet of this scheduler from its own thread (the caller is a running tasklet of it).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void MakeReadyLocal(Tasklet tasklet, bool front)
    {
        Debug.Assert(IsOwnerThread);
        if (front)
        {
            _runQueue.PushFront(tasklet);
        }
        else
        {
            _runQueue.PushBack(tasklet);
        }
    }

    /// <summary>Queues a foreign continuation for a tasklet (its SynchronizationContext's Post). Any thread.</summary>
    internal void Post(Tasklet tasklet, SendOrPostCallback callback, object? state)
    {
        if (IsOwnerThread)
        {
            _runQueue.PushBack(RentPostedStep(tasklet, callback, state));
        }
        else
        {
            PostToInbox(new Entry(tasklet, callback, state), front: false);
        }
    }

    /// <summary>Kill (<paramref name="exception"/> null) or throw, applied on the scheduler thread. Any thread.</summary>
    internal void RequestInterrupt(Tasklet tasklet, Exception? exception)
    {
        if (IsOwnerThread)
        {
            tasklet.ApplyInterrupt(exception);
        }
        else
        {
            PostToInbox(new Entry(tasklet, s_interrupt, exception), front: true);
        }
    }

    /// <summary>A tasklet's body completed off the scheduler (after ConfigureAwait(false)). Any thread.</summary>
    internal void NotifyCompletedElsewhere(Tasklet tasklet)
    {
        if (!IsOwnerThread)
        {
            PostToInbox(new Entry(tasklet, s_checkCompleted, null), front: false);
        }
    }

    private void PostToInbox(Entry entry, bool front)
    {
        lock (_inboxLock)
        {
            AddToInboxLocked(entry, front);
        }
    }

    // Caller holds _inboxLock.
    private void AddToInboxLocked(Entry entry, bool front)
    {
        _inbox.Add(entry with { Front = front });
        _inboxCount = _inbox.Count; // volatile, after the entry: an idle owner's lock-free spin that reads it non-zero finds the entry
        // Only a sleeping owner is pulsed: one that runs, or spins in its idle wait (Scheduler.Idle.cs), pays no OS
        // signal. No wake-up is lost: the owner sets _sleeping only under this lock, after reading _inboxCount and
        // _signaled again under it; so either it reads the count written above (this post came first), or this post
        // comes after it began to sleep and reads _sleeping true. The lock is the fence of both sides.
        if (_sleeping)
        {
            _signaled = true;
            Monitor.Pulse(_inboxLock);
        }
    }

    private void DrainInbox()
    {
        List<Entry> batch;
        lock (_inboxLock)
        {
            batch = _inbox;
            _inbox = _inboxSpare;
            _inboxSpare = batch;
            _inboxCount = 0;
        }

        // Front entries (kills) go to the head in their posting order.
        int fronts = 0;
        foreach (Entry entry in batch)
        {
            if (entry.Front && !ReferenceEquals(entry.Callback, s_interrupt))
            {
                fronts++;
            }
        }

        for (int i = batch.Count - 1; i >= 0 && fronts > 0; i--)
        {
            Entry entry = batch[i];
            if (entry.Front && !ReferenceEquals(entry.Callback, s_interrupt))
            {
                _runQueue.PushFront(entry.Tasklet); // front entries are wake-ups: no callback
                fronts--;
            }
        }

        foreach (Entry entry in batch)
        {
            if (ReferenceEquals(entry.Callback, s_spawn))
            {
                AddAlive(entry.Tasklet);
                _runQueue.PushBack(entry.Tasklet);
            }
            else if (ReferenceEquals(entry.Callback, s_interrupt))
            {
                entry.Tasklet.ApplyInterrupt((Exception?)entry.State);
            }
            else if (ReferenceEquals(entry.Callback, s_killAll))
            {
                KillAlive();
            }
            else if (ReferenceEquals(entry.Callback, s_stop))
            {
                ApplyStop((RunStop)entry.State!);
            }
            else if (ReferenceEquals(entry.Callback, s_dispose))
            {
                ApplyDisposeStop();
            }
            else if (!entry.Front)
            {
                _runQueue.PushBack(entry.Callback is null ? entry.Tasklet : RentPostedStep(entry.Tasklet, entry.Callback, entry.State));
                _wokenBehindCheckpoint = true;
            }
        }

        batch.Clear();
    }

    /// <summary>Wakes the owner if it sleeps (a timer of a custom clock fired, a keep-alive hold ended). Any thread.</summary>
    internal void Signal()
    {
        lock (_inboxLock)
        {
            // Set even when the owner does not sleep: a spinning owner reads it and returns to its loop (and clears
            // it, ConsumeSignal), a running one returns from its next idle wait at once. Pulsed as a post is.
            _signaled = true;
            if (_sleeping)
            {
                Monitor.Pulse(_inboxLock);
            }
        }
    }

    // ---------------------------------------------------------------- alive list

    /// <summary>Counts a channel operation of a tasklet of this scheduler. Owner thread only.</summary>
    internal void CountChannelOperation() => _channelOperations++;

    private void FlushMetrics()
    {
        TaskletsMetrics.Flush(_stepCount - _flushedSteps, _channelOperations);
        _recordStepDurations = TaskletsMetrics.StepDurationEnabled;
        _flushedSteps = _stepCount;
        _channelOperations = 0;
    }

    private void AddAlive(Tasklet tasklet)
    {
        TaskletsMetrics.Spawned();
        tasklet._nextAlive = _aliveHead;
        tasklet._prevAlive = null;
        if (_aliveHead is not null)
        {
            _aliveHead._prevAlive = tasklet;
        }

        _aliveHead = tasklet;
        _aliveCount++;
        if (_stopping)
        {
            tasklet.Kill(); // spawned after a stop: it dies without running (one bool read per spawn otherwise)
        }
    }

    private void RemoveAlive(Tasklet tasklet)
    {
        if (tasklet._prevAlive is null && !ReferenceEquals(_aliveHead, tasklet))
        {
            return; // not in the list
        }

        if (tasklet._prevAlive is null)
        {
            _aliveHead = tasklet._nextAlive;
        }
        else
        {
            tasklet._prevAlive._nextAlive = tasklet._nextAlive;
        }

        if (tasklet._nextAlive is not null)
        {
            tasklet._nextAlive._prevAlive = tasklet._prevAlive;
        }

        tasklet._prevAlive = null;
        tasklet._nextAlive = null;
        _aliveCount--;
        TaskletsMetrics.Died();
    }

    // ---------------------------------------------------------------- ownership

    private void Enter(RunMode mode)
    {
        if (_disposed && mode != RunMode.Shutdown)
        {
            ThrowHelper.ThrowObjectDisposed(this);
        }

        if (mode is RunMode.UntilDone or RunMode.Budget && t_running is { } outer && !ReferenceEquals(outer, this))
        {
            // Run and RunFor wait when idle; on a thread that runs another scheduler, that stops its tasklets too.
            ThrowHelper.ThrowInvalidOperation(Strings.RunOnSchedulerThread);
        }

        int me = Environment.CurrentManagedThreadId;
        lock (_inboxLock)
        {
            // Disposal first: a Dispose from another thread owns the scheduler while its shutdown runs, and a host
            // pumping RunFor then must see the disposal it raced with, not "run on another thread".
            if (_disposeRequested && mode != RunMode.Shutdown)
            {
                ThrowHelper.ThrowObjectDisposed(this); // Dispose began (Scheduler.Lifetime.cs): only its shutdown runs
            }

            if (_ownerThreadId != 0)
            {
                ThrowHelper.ThrowInvalidOperation(_ownerThreadId == me ? Strings.NestedRun : Strings.RunReentered);
            }

            _ownerThreadId = me;
        }

        if (mode == RunMode.UntilDone)
        {
            EnterDeadlockTracking();
            EnterStallWatch(); // Run() and Run(main) report stalls; RunFor/RunOnce do not (the host owns the thread)
        }
    }

    private void Exit(RunMode mode)
    {
        if (mode == RunMode.UntilDone)
        {
            ExitStallWatch();
            ExitDeadlockTracking(); // clears the owner with its verdict
        }
        else
        {
            lock (_inboxLock)
            {
                _ownerThreadId = 0;
            }

            AfterHostPass();
        }

        NotifyDisposeWaiters(); // a Dispose on another thread waits for the owner to leave
    }

    private enum RunMode
    {
        UntilDone,
        Budget,
        Once,
        Shutdown,
    }

    /// <summary>An inbox entry: resume/start <see cref="Tasklet"/> (no callback), run a posted callback for it, or a special request (spawn, interrupt).</summary>
    private readonly record struct Entry(Tasklet Tasklet, SendOrPostCallback? Callback, object? State)
    {
        public bool Front { get; init; }
    }

    /// <summary>A run-queue entry for a continuation posted through a tasklet's context; recycled after it ran.</summary>
    private sealed class PostedStep
    {
        public Tasklet Tasklet = null!;
        public SendOrPostCallback Callback = null!;
        public object? State;
        public PostedStep? NextFree;
    }

    private sealed class KeepAliveHold(Scheduler scheduler) : IDisposable
    {
        private Scheduler? _scheduler = scheduler;

        public void Dispose()
        {
            Scheduler? s = Interlocked.Exchange(ref _scheduler, null);
            if (s is not null)
            {
                Interlocked.Decrement(ref s._keepAlive);
                s.Signal();
            }
        }
    }
}
