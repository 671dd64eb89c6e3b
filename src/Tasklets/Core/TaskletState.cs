namespace Tasklets;

/// <summary>The life cycle of a <see cref="Tasklet"/>.</summary>
public enum TaskletState
{
    /// <summary>Spawned, not started yet: it starts when its scheduler reaches it in the run queue.</summary>
    Created,

    /// <summary>Ready to run, waiting in its scheduler's run queue.</summary>
    Runnable,

    /// <summary>Running now, on its scheduler's thread.</summary>
    Running,

    /// <summary>Waiting: on a library primitive (channel, select, sleep, join) or on a foreign awaitable.</summary>
    Blocked,

    /// <summary>Finished: returned, failed, or was killed.</summary>
    Dead,
}
