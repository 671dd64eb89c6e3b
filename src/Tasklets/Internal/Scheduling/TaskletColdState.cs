namespace Tasklets.Internal;

/// <summary>
/// The fields of a <see cref="Tasklet"/> that most tasklets never use, allocated on first use so that a plain
/// tasklet stays small (memory per blocked tasklet and bytes per spawn, docs/performance.md).
/// </summary>
/// <remarks>
/// Thread discipline per field: <see cref="JoinSource"/> set once by CAS (any thread); <see cref="Exception"/> written
/// by the one party that ends the tasklet, before its life cycle reads dead; <see cref="ExternalWaits"/> under a lock
/// on the list;
/// <see cref="PendingThrow"/> written on the scheduler thread and taken with an exchange; <see cref="FailureHolds"/>
/// changed by interlocked operations (any thread); the rest scheduler thread only. <see cref="Name"/> is set at
/// construction and never changes.
/// </remarks>
internal sealed class TaskletColdState
{
    /// <summary>The name given at spawn, or null.</summary>
    public string? Name;

    /// <summary>
    /// The continuation a body on the library's builder gives to foreign awaiters (<see cref="TaskletBodyBox.ForeignContinuation"/>):
    /// made at the body's first foreign await, here rather than in the box, since most bodies await only the library's
    /// operations. Scheduler thread only (a body suspends nowhere else).
    /// </summary>
    public Action? BodyForeignContinuation;

    /// <summary>The exception the tasklet died with (its failure, or the exit of a kill); null while alive or after a clean end.</summary>
    public Exception? Exception;

    /// <summary>An exception to raise at the next blocking point (<see cref="Tasklet.Throw"/>), or null.</summary>
    public Exception? PendingThrow;

    /// <summary>The joins waiting for this tasklet's end; created by the first join that waits (CAS), never cleared.</summary>
    public JoinSource? JoinSource;

    /// <summary>External waiters this tasklet parked on while its own waiter was busy; under a lock on the list itself.</summary>
    public List<ExternalWaiter>? ExternalWaits;

    /// <summary>The source of <see cref="Tasklet.CancellationToken"/>: created on first use (CAS), cancelled by a kill.</summary>
    public CancellationTokenSource? KillSource;

    /// <summary>The kill's cancellation of <see cref="KillSource"/> while its callbacks run (on the thread pool), or null.</summary>
    public Task? KillCancellation;

    /// <summary>
    /// The registration on the token given to Go (cancelling it kills the tasklet), or default. Written once by the
    /// spawning thread before the spawn publishes the tasklet; read (unregistered) by the scheduler thread at the death.
    /// </summary>
    public CancellationTokenRegistration KillRegistration;

    /// <summary>The callback that reports a body completed off the scheduler; set once.</summary>
    public Action? EscapeCallback;

    /// <summary>The innermost open timeout scope, or null.</summary>
    public TimeoutScope? InnermostTimeout;

    /// <summary>
    /// The <see cref="Tasklet.WhenAll(Tasklet[])"/> waits in progress over this tasklet: each will rethrow its failure,
    /// so the scheduler holds the report of that failure as unobserved while any is (issue 15).
    /// </summary>
    public int FailureHolds;

    /// <summary>
    /// The group whose child this tasklet is, once its failure was recorded there: the group's wait will throw it, so
    /// the scheduler holds its report while the group may still be waited (<see cref="TaskletGroup.HoldsChildFailures"/>).
    /// Written by the child's own last step, on the scheduler thread that reads it.
    /// </summary>
    public TaskletGroup? FailureGroup;
}
