namespace Tasklets.Internal;

/// <summary>
/// An <see cref="ITimer"/> of the virtual clock (<see cref="VirtualTimeProvider.CreateTimer"/>): its due times are
/// entries of the scheduler's timer heap, so <c>Task.Delay(d, scheduler.Time)</c>, <c>PeriodicTimer</c> and
/// <c>new CancellationTokenSource(d, scheduler.Time)</c> follow virtual time, and a pending one keeps virtual time
/// moving (the scheduler jumps to it when nothing is ready).
/// </summary>
/// <remarks>
/// <para>Any thread may create, change or dispose it (a PeriodicTimer's finalizer disposes on the finalizer thread).
/// <c>_version</c> numbers its schedules: every <see cref="Change"/> and <see cref="Dispose"/> moves it on, and a heap
/// entry or a queued firing of an older version does nothing. All state is under <c>_lock</c>; the heap itself is
/// the scheduler thread's (<see cref="Scheduler.ArmVirtualTimer"/> posts there from other threads).</para>
/// <para>The callback runs as a step of the scheduler of its own, outside every tasklet (as an InvokeAsync step), in
/// the ExecutionContext of the timer's creator, as System.Threading timers do. Its exception is reported by Run()
/// with the other failures nobody observed.</para>
/// </remarks>
internal sealed class VirtualTimer : ITimer
{
    private readonly Scheduler _scheduler;
    private readonly VirtualTimeProvider _clock;
    private readonly TimerCallback _callback;
    private readonly object? _state;
    private readonly ExecutionContext? _context;
    private readonly Lock _lock = new();
    private long _version; // under _lock
    private long _period;  // ticks; 0: one-shot. Under _lock
    private bool _disposed; // under _lock

    // The firing queued as a step, under _lock: at most one at a time (a periodic timer is armed again only after its
    // callback), so two entries due in one pass (a schedule and the one a Change replaced) cannot both fire.
    private bool _firingPending;
    private long _firingVersion;
    private long _firingDue;

    public VirtualTimer(Scheduler scheduler, VirtualTimeProvider clock, TimerCallback callback, object? state)
    {
        _scheduler = scheduler;
        _clock = clock;
        _callback = callback;
        _state = state;
        _context = ExecutionContext.Capture();
    }

    public bool Change(TimeSpan dueTime, TimeSpan period)
    {
        ValidateTime(dueTime, nameof(dueTime));
        ValidateTime(period, nameof(period));
        long version;
        long due;
        lock (_lock)
        {
            if (_disposed)
            {
                return false;
            }

            version = ++_version;
            _period = period == Timeout.InfiniteTimeSpan || period == TimeSpan.Zero ? 0 : period.Ticks;
            if (dueTime == Timeout.InfiniteTimeSpan)
            {
                return true; // stopped: the new version has no entry, and older entries are dead
            }

            long now = _clock.Now;
            due = dueTime.Ticks >= long.MaxValue - now ? long.MaxValue : now + dueTime.Ticks;
        }

        _scheduler.ArmVirtualTimer(this, version, due);
        return true;
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _disposed = true;
            _version++;
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return default;
    }

    /// <summary>True while the schedule <paramref name="version"/> is the current one (the heap drops dead entries).</summary>
    public bool IsArmedWith(long version)
    {
        lock (_lock)
        {
            return !_disposed && _version == version;
        }
    }

    /// <summary>
    /// The heap entry (<paramref name="version"/>, <paramref name="due"/>) is due: claims the firing for a step, and
    /// returns false if that schedule is no longer the current one or a firing is already queued. Scheduler thread.
    /// </summary>
    public bool PrepareFiring(long version, long due)
    {
        lock (_lock)
        {
            if (_disposed || _version != version || _firingPending)
            {
                return false;
            }

            _firingPending = true;
            _firingVersion = version;
            _firingDue = due;
            return true;
        }
    }

    /// <summary>The firing's step: runs the callback if the schedule still holds, then arms the next period. Scheduler thread.</summary>
    public void RunFiring()
    {
        long version;
        long due;
        long period;
        lock (_lock)
        {
            _firingPending = false; // this step consumes the firing it was queued for
            version = _firingVersion;
            due = _firingDue;
            if (_disposed || _version != version)
            {
                return; // changed or disposed since it was due
            }

            period = _period;
        }

        try
        {
            if (_context is null)
            {
                _callback(_state);
            }
            else
            {
                ExecutionContext.Run(_context, static s => { var t = (VirtualTimer)s!; t._callback(t._state); }, this);
            }
        }
        catch (Exception e)
        {
            _scheduler.RecordTimerCallbackFailure(e); // a System.Threading timer's would end the process; Run() reports this one
        }

        if (period > 0 && IsArmedWith(version))
        {
            _scheduler.ArmVirtualTimer(this, version, period >= long.MaxValue - due ? long.MaxValue : due + period);
        }
    }

    private static void ValidateTime(TimeSpan value, string name)
    {
        if (value < TimeSpan.Zero && value != Timeout.InfiniteTimeSpan)
        {
            ThrowHelper.ThrowArgumentOutOfRange(name, value, "A timer's due time and period must be zero or positive, or Timeout.InfiniteTimeSpan.");
        }
    }
}
