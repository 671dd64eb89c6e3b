namespace Tasklets;

/// <summary>An atomic section of the current tasklet (<see cref="Tasklet.Atomic"/>); dispose it to leave.</summary>
public readonly struct AtomicScope : IDisposable, IEquatable<AtomicScope>
{
    private readonly Tasklet? _tasklet;

    internal AtomicScope(Tasklet tasklet)
    {
        _tasklet = tasklet;
    }

    /// <summary>Leaves the atomic section.</summary>
    public void Dispose()
    {
        if (_tasklet is not null && _tasklet._atomicDepth > 0)
        {
            _tasklet._atomicDepth--;
        }
    }

    /// <inheritdoc/>
    public bool Equals(AtomicScope other) => ReferenceEquals(_tasklet, other._tasklet);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is AtomicScope other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => _tasklet?.GetHashCode() ?? 0;

    /// <summary>Compares two scopes.</summary>
    /// <param name="left">A scope.</param>
    /// <param name="right">Another scope.</param>
    /// <returns>True when both belong to the same tasklet.</returns>
    public static bool operator ==(AtomicScope left, AtomicScope right) => left.Equals(right);

    /// <summary>Compares two scopes.</summary>
    /// <param name="left">A scope.</param>
    /// <param name="right">Another scope.</param>
    /// <returns>True when they belong to different tasklets.</returns>
    public static bool operator !=(AtomicScope left, AtomicScope right) => !left.Equals(right);
}
