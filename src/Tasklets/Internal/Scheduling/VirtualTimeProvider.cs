namespace Tasklets.Internal;

/// <summary>
/// The virtual clock of a deterministic scheduler: it stands still while tasklets run and jumps to the next
/// timer when nothing is ready. Timestamps are <see cref="TimeSpan"/> ticks since the scheduler started.
/// </summary>
internal sealed class VirtualTimeProvider : TimeProvider
{
    /// <summary>Virtual wall-clock time starts here, so that runs with the same seed print the same times.</summary>
    public static readonly DateTimeOffset Epoch = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    private long _now;

    public long Now => Volatile.Read(ref _now);

    public override long TimestampFrequency => TimeSpan.TicksPerSecond;

    public override long GetTimestamp() => Now;

    public override DateTimeOffset GetUtcNow() => Epoch.AddTicks(Now);

    /// <summary>The scheduler whose timer heap holds this clock's timers; set once, by the scheduler that owns it.</summary>
    public Scheduler? Scheduler { get; set; }

    /// <summary>A timer on virtual time, over the scheduler's timer heap (see <see cref="VirtualTimer"/>).</summary>
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ArgumentNullException.ThrowIfNull(callback);
        var timer = new VirtualTimer(Scheduler!, this, callback, state);
        timer.Change(dueTime, period);
        return timer;
    }

    /// <summary>Moves the clock forward (never back). Scheduler thread only.</summary>
    public void AdvanceTo(long timestamp)
    {
        if (timestamp > _now)
        {
            Volatile.Write(ref _now, timestamp);
        }
    }
}
