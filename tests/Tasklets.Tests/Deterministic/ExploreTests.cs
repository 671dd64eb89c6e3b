using Xunit;

namespace Tasklets.Tests.Deterministic;

public class ExploreTests
{
    /// <summary>
    /// A planted check-then-act race: each withdrawal checks the balance, yields (an await between check and act),
    /// then withdraws. Under FIFO the second withdrawer only checks after the first one acted, so the bug hides;
    /// another interleaving overdraws the account.
    /// </summary>
    private static async Task OverdraftRace()
    {
        int balance = 10;
        async Task Withdraw(int amount, int delaySteps)
        {
            for (int i = 0; i < delaySteps; i++)
            {
                await Tasklet.Yield();
            }

            if (balance >= amount)
            {
                await Tasklet.Yield();
                balance -= amount;
            }
        }

        Tasklet first = Tasklet.Go(() => Withdraw(10, 0));
        Tasklet second = Tasklet.Go(() => Withdraw(10, 2));
        await first;
        await second;
        if (balance < 0)
        {
            throw new InvalidOperationException($"overdrawn: balance {balance}");
        }
    }

    [Fact]
    public void Fifo_HidesThePlantedRace()
    {
        Scheduler.Run(OverdraftRace, new SchedulerOptions { Seed = 0 });
    }

    [Fact]
    public void Run_PlantedRace_FoundWithin1000SeedsAndReplays()
    {
        var ex = Assert.Throws<ExplorationException>(() => Explore.Run(1000, OverdraftRace));
        Assert.Contains($"seed {ex.Seed}", ex.Message);
        Assert.IsType<InvalidOperationException>(ex.InnerException);
        Assert.True(ex.Iteration <= 1000);

        var replayed = Assert.Throws<InvalidOperationException>(() => Explore.Replay(ex.Seed, OverdraftRace));
        Assert.Equal(ex.InnerException!.Message, replayed.Message);
    }

    [Fact]
    public void Run_CorrectCode_PassesEverySeed()
    {
        int runs = 0;
        Explore.Run(200, async seed =>
        {
            runs++;
            var c = new Channel<int>();
            Tasklet.Go(async () => { for (int i = 0; i < 5; i++) { await c.SendAsync(i); } c.Close(); });
            int sum = 0;
            await foreach (int x in c)
            {
                sum += x;
            }

            Assert.Equal(10, sum);
        });
        Assert.Equal(200, runs);
    }

    [Fact]
    public void Run_ZeroIterations_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Explore.Run(0, () => Task.CompletedTask));
    }
}
