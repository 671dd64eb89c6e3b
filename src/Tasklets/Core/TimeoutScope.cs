using System.Diagnostics;

namespace Tasklets;

/// <summary>
/// A deadline on one tasklet (<see cref="Tasklet.Timeout(TimeSpan)"/>). Dispose it to remove the deadline.
/// </summary>
/// <remarks>
/// When the deadline passes, the tasklet's blocking operation in progress and every later one inside the scope
/// throw <see cref="TaskletTimeoutException"/>. Scopes nest; the earliest deadline wins. Only the tasklet that
/// created the scope may dispose it. Disposing a scope also ends the scopes opened inside it that are still open.
/// </remarks>
[DebuggerDisplay("timeout {After} of tasklet {_tasklet.Id}, expired {IsExpired}")]
public sealed class TimeoutScope : IDisposable
{
    private readonly Tasklet _tasklet;
    private readonly TimeoutScope? _outer;
    private readonly long _due;

    internal TimeoutScope(Tasklet tasklet, TimeSpan after)
    {
        _tasklet = tasklet;
        After = after;
        _outer = tasklet.InnermostTimeout;
        tasklet.InnermostTimeout = this;
        _due = after == Timeout.InfiniteTimeSpan ? long.MaxValue : tasklet.Scheduler.AddTimer(after, null, 0, 0, this);
    }

    /// <summary>The duration this scope was created with.</summary>
    public TimeSpan After { get; }

    /// <summary>True once the deadline passed while the scope was active.</summary>
    public bool IsExpired { get; private set; }

    internal bool IsDisposed { get; private set; }

    /// <summary>
    /// True while the scope's timer could still expire it: not disposed, and its tasklet alive. A scope never
    /// disposed (no <c>using</c>) dies with its tasklet. Read by the scheduler thread (the timer heap's owner): the
    /// tasklet disposes on that thread, and a dead tasklet stays dead, so a false read stays false.
    /// </summary>
    internal bool CanExpire => !IsDisposed && _tasklet.IsAlive;

    /// <summary>Removes the deadline. A timeout that already fired is not undone for operations that already threw.</summary>
    public void Dispose()
    {
        if (IsDisposed)
        {
            return;
        }

        // Leaving a scope also leaves the scopes opened inside it that are still open (disposed out of order, or an
        // exception skipped their using): their deadlines go with it, so none of them can fire later into an
        // operation that no scope covers any more.
        if (IsInChain(_tasklet.InnermostTimeout))
        {
            for (TimeoutScope? inner = _tasklet.InnermostTimeout; inner is not null && !ReferenceEquals(inner, this); inner = inner._outer)
            {
                inner.IsDisposed = true;
            }

            _tasklet.InnermostTimeout = _outer;
        }

        IsDisposed = true;

        _tasklet.RefreshTimeoutFlag();
    }

    /// <summary>The scheduler's timer fired. Scheduler thread only. Returns false if it could expire nothing.</summary>
    internal bool Expire()
    {
        if (!CanExpire)
        {
            return false;
        }

        IsExpired = true;
        _tasklet.ApplyTimeout();
        return true;
    }

    internal TaskletTimeoutException CreateException()
        => new($"Timeout of {After} expired in tasklet {_tasklet.Id} '{_tasklet.Name}'.", this);

    /// <summary>Among the active scopes from <paramref name="innermost"/> outward, the expired one with the earliest deadline.</summary>
    internal static TimeoutScope? EarliestExpired(TimeoutScope? innermost)
    {
        TimeoutScope? best = null;
        for (TimeoutScope? scope = innermost; scope is not null; scope = scope._outer)
        {
            if (scope.IsExpired && !scope.IsDisposed && (best is null || scope._due <= best._due))
            {
                best = scope;
            }
        }

        return best;
    }

    private bool IsInChain(TimeoutScope? innermost)
    {
        for (TimeoutScope? scope = innermost; scope is not null; scope = scope._outer)
        {
            if (ReferenceEquals(scope, this))
            {
                return true;
            }
        }

        return false;
    }
}
