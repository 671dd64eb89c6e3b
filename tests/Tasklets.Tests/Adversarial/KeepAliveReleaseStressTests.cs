using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// A keep-alive hold released from another thread while Run idles with nothing alive: Run must return, never report a
/// deadlock of no tasklet. The loop decides to wait on the hold, and the idle path reads the hold again: released in
/// between, the scheduler used to count as stuck with nothing alive, and its group of one was declared deadlocked
/// ("Deadlock: 0 tasklet(s) are blocked", once in CI, in SchedulerTests.Go_FromOtherThreadWhileRunning_Runs).
/// </summary>
[Trait("Category", "Stress")]
public class KeepAliveReleaseStressTests
{
    private const int Rounds = 2_000;

    [Fact]
    public void HoldReleasedFromAnotherThread_WhileRunIdlesWithNothingAlive_RunReturns()
    {
        int ran = 0;
        for (int round = 0; round < Rounds; round++)
        {
            using var s = new Scheduler();
            IDisposable hold = s.KeepAlive();
            // The releaser spins a varying while first, so that the release lands anywhere in Run's idle path.
            int spins = round % 64;
            var releaser = new Thread(() =>
            {
                Thread.SpinWait(spins);
                s.Go(() => { Interlocked.Increment(ref ran); return Task.CompletedTask; });
                Thread.SpinWait(spins);
                hold.Dispose();
            })
            { IsBackground = true };
            s.Go(() => { releaser.Start(); return Task.CompletedTask; });
            Exception? failure = null;
            var runner = new Thread(() =>
            {
                try
                {
                    s.Run(); // threw DeadlockException on the bug
                }
                catch (Exception e)
                {
                    failure = e;
                }
            })
            { IsBackground = true };
            runner.Start();
            Assert.True(runner.Join(TimeSpan.FromSeconds(30)), $"hang guard: Run did not return in round {round} (a lost wake-up)");
            Assert.Null(failure);
            Assert.True(releaser.Join(TimeSpan.FromSeconds(30)), "hang guard: the releaser");
        }

        Assert.Equal(Rounds, ran);
    }
}
