using Xunit;

namespace Tasklets.Tests.Infrastructure;

/// <summary>A scheduler's <see cref="Scheduler.Run()"/> on a thread of its own, with what it threw, under a hang guard.</summary>
internal sealed class RunningScheduler
{
    /// <summary>Generous for anything the tests wait for (a verdict takes microseconds); only a hang reaches it.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly Thread _thread;
    private readonly Scheduler _scheduler;
    private Exception? _failure;

    private RunningScheduler(Scheduler scheduler)
    {
        _scheduler = scheduler;
        _thread = new Thread(() => _failure = Record.Exception(scheduler.Run)) { IsBackground = true };
    }

    public bool IsDone => !_thread.IsAlive;

    public static RunningScheduler Start(Scheduler scheduler)
    {
        var running = new RunningScheduler(scheduler);
        running._thread.Start();
        return running;
    }

    /// <summary>What Run threw (null: it returned); fails the test with the scheduler's dump if Run does not return.</summary>
    public Exception? Join()
    {
        Assert.True(_thread.Join(Guard), "hang guard: Run() did not return; its tasklets:\n" + _scheduler.Dump());
        return _failure;
    }

    /// <summary>
    /// What Run threw. On a hang, kills <paramref name="blocked"/> (an interrupt through the inbox wakes a stuck
    /// scheduler) so that the thread ends, then fails the test with the dump taken before.
    /// </summary>
    public Exception? JoinOrUnblock(params Tasklet[] blocked)
    {
        if (_thread.Join(Guard))
        {
            return _failure;
        }

        string dump = _scheduler.Dump();
        foreach (Tasklet t in blocked)
        {
            t.Kill();
        }

        _thread.Join(Guard);
        Assert.Fail("hang guard: Run() did not return (a missed deadlock); its tasklets were:\n" + dump);
        return null;
    }

    /// <summary>Spins until <paramref name="condition"/> holds (a state, never a duration); fails after <see cref="Guard"/>.</summary>
    public static void WaitUntil(Func<bool> condition, string what)
    {
        var spin = new SpinWait();
        DateTime deadline = DateTime.UtcNow + Guard;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "hang guard: " + what);
            spin.SpinOnce();
        }
    }

    /// <summary>
    /// Waits until <paramref name="scheduler"/> sleeps as a stuck scheduler: its group's verdict was taken when it got
    /// there, so a false deadlock would be on its way by now.
    /// </summary>
    public static void WaitUntilStuck(Scheduler scheduler)
        => WaitUntil(() => scheduler.IsStuckForDeadlock, "the scheduler never got stuck");
}
