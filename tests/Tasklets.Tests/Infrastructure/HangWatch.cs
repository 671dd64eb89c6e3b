using Xunit;

namespace Tasklets.Tests.Infrastructure;

/// <summary>
/// For a test that blocks its own thread in a Run method: if the test is still inside after
/// <see cref="RunningScheduler.Guard"/>, runs an action that unblocks it (a KillAll, a hold's release), so that a
/// regression fails the test instead of stalling the whole run. Never fires in a passing test; asserts nothing about
/// time, only that it did not have to fire.
/// </summary>
internal sealed class HangWatch : IDisposable
{
    private readonly Timer _timer;
    private int _fired;

    private HangWatch(Action unblock)
    {
        _timer = new Timer(_ =>
        {
            Volatile.Write(ref _fired, 1);
            unblock();
        }, null, RunningScheduler.Guard, Timeout.InfiniteTimeSpan);
    }

    public static HangWatch Start(Action unblock) => new(unblock);

    /// <summary>Stops the watch; fails the test if it had to unblock it.</summary>
    public void Dispose()
    {
        _timer.Dispose();
        Assert.True(Volatile.Read(ref _fired) == 0, "hang guard: the test did not return by itself and was unblocked");
    }
}
