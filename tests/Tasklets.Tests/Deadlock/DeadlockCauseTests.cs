using Xunit;

namespace Tasklets.Tests.Deadlock;

/// <summary>
/// Issue 15: DeadlockException swallowed the failure that caused it: a producer that crashes leaves its consumer
/// blocked, and Run() threw the deadlock with no trace of the crash (lost for good under Scheduler.Run(main)).
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class DeadlockCauseTests
{
    [Fact]
    public void Run_ProducerCrashedLeavingItsConsumerBlocked_DeadlockCarriesTheCrash()
    {
        DeadlockException deadlock = Assert.Throws<DeadlockException>(() => Scheduler.Run(async () =>
        {
            var items = new Channel<int> { Name = "items" };
            _ = Tasklet.Go(() => throw new InvalidDataException("producer crashed"), "producer");
            await items.ReceiveAsync(); // nobody will ever send
        }, new SchedulerOptions { Seed = 1 }));
        Assert.Contains("receive on channel 'items'", deadlock.Message, StringComparison.Ordinal);
        Assert.Contains("InvalidDataException: producer crashed", deadlock.Message, StringComparison.Ordinal);
        var causes = Assert.IsType<AggregateException>(deadlock.InnerException);
        Assert.IsType<InvalidDataException>(Assert.Single(causes.InnerExceptions));
    }

    [Fact]
    public void Run_FinallyOfAKilledDeadlockedTaskletThrows_DeadlockCarriesIt()
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = 2 });
        s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            try
            {
                await never.ReceiveAsync();
            }
            finally
            {
                CleanUpThatFails(); // runs when KillOnDeadlock kills it
            }
        }, "worker");
        DeadlockException deadlock = Assert.Throws<DeadlockException>(s.Run);
        var causes = Assert.IsType<AggregateException>(deadlock.InnerException);
        Assert.Contains(causes.InnerExceptions, e => e.Message == "cleanup failed");
    }

    private static void CleanUpThatFails() => throw new InvalidOperationException("cleanup failed");
}
