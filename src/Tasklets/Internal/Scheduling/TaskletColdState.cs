namespace Tasklets.Internal;

/// <summary>
/// The fields of a <see cref="Tasklet"/> that most tasklets never use, allocated on first use so that a plain
/// tasklet stays small (memory per blocked tasklet and bytes per spawn, docs/performance.md).
/// </summary>
/// <remarks>
/// Thread discipline per field: <see cref="Joiners"/> and <see cref="Exception"/> under the tasklet's waiter monitor
/// (any thread; <see cref="Exception"/> is written before the tasklet's life cycle reads dead);
/// <see cref="PendingThrow"/> written on the scheduler thread and taken with an exchange; the rest scheduler thread
/// only. <see cref="Name"/> is set at construction and never changes.
/// </remarks>
internal sealed class TaskletColdState
{
    /// <summary>The name given at spawn, or null.</summary>
    public string? Name;

    /// <summary>The exception the tasklet died with (its failure, or the exit of a kill); null while alive or after a clean end.</summary>
    public Exception? Exception;

    /// <summary>An exception to raise at the next blocking point (<see cref="Tasklet.Throw"/>), or null.</summary>
    public Exception? PendingThrow;

    /// <summary>Waits of the tasklets joining this one; null when none.</summary>
    public List<(Waiter Waiter, long Generation)>? Joiners;

    /// <summary>The callback that reports a body completed off the scheduler; set once.</summary>
    public Action? EscapeCallback;

    /// <summary>The innermost open timeout scope, or null.</summary>
    public TimeoutScope? InnermostTimeout;

    /// <summary>The step in which the current time slice of <see cref="Tasklet.Checkpoint"/> began (-1: none yet).</summary>
    public long CheckpointStep = -1;

    /// <summary>When that slice began (timestamp), or how many checkpoints it has seen (deterministic mode).</summary>
    public long CheckpointStart;
}
