using System.Diagnostics;

namespace Tasklets.Internal;

/// <summary>
/// The deadline of a wait by a party that is not a tasklet (a select timeout of plain code or an OS thread): a system
/// timer that ends the wait it was armed for, and nothing else.
/// </summary>
/// <remarks>
/// It carries the generation, so a callback that runs after the wait ended (a timer callback may already be running
/// when the owner disposes it) claims with a stale generation and fails. <see cref="System.Threading.Timer"/> takes
/// at most about 49.7 days; a longer deadline fires early, sees that its time has not come, and re-arms for the
/// rest, so <see cref="TimeSpan.MaxValue"/> is valid (it never fires in practice).
/// </remarks>
internal sealed class SystemDeadline : IDisposable
{
    // The longest single arming of a system timer: 0xFFFFFFFE milliseconds.
    private static readonly TimeSpan s_maxArm = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    private readonly Waiter _waiter;
    private readonly long _generation;
    private readonly int _firedIndex;
    private readonly long _deadline; // Stopwatch timestamp; long.MaxValue for "never"
    private ITimer? _timer;

    public SystemDeadline(Waiter waiter, long generation, int firedIndex, TimeSpan timeout)
    {
        _waiter = waiter;
        _generation = generation;
        _firedIndex = firedIndex;
        double ticks = timeout.TotalSeconds * Stopwatch.Frequency;
        long now = Stopwatch.GetTimestamp();
        _deadline = ticks >= long.MaxValue - now ? long.MaxValue : now + (long)ticks;
    }

    /// <summary>Arms the timer for the time left, capped at what a system timer takes.</summary>
    public void Arm()
    {
        TimeSpan left = _deadline == long.MaxValue ? s_maxArm : Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _deadline);
        if (left < TimeSpan.Zero)
        {
            left = TimeSpan.Zero;
        }
        else if (left > s_maxArm)
        {
            left = s_maxArm;
        }

        // Created unarmed and stored before it is armed, so that a callback (which may re-arm) always finds it.
        _timer ??= TimeProvider.System.CreateTimer(static s => ((SystemDeadline)s!).OnTimer(), this, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timer.Change(left, Timeout.InfiniteTimeSpan); // false after Dispose: the wait is over, nothing to do
    }

    public void Dispose() => _timer?.Dispose();

    private void OnTimer()
    {
        if (_deadline != long.MaxValue && Stopwatch.GetTimestamp() >= _deadline)
        {
            _waiter.TryEnd(_generation, _firedIndex, null, front: false);
            return;
        }

        if (_waiter.IsParkedWith(_generation))
        {
            Arm(); // the deadline lies beyond one arming
        }
    }
}
