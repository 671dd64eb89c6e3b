using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Regression;

/// <summary>
/// Issue 15: docs/testing.md is corrected against today's behaviour. Its snippets run here as they are printed there
/// (with the user types they assume), and the claims the page makes that no other test pins. The virtual clock's
/// timers (Task.Delay, CancellationTokenSource, PeriodicTimer on scheduler.Time) are pinned by
/// Deterministic/VirtualClockTimerTests, the closed world by Deadlock/ClosedWorldTests (and, without a Seed, a channel
/// made before Run being reachable from outside by DeadlockTests.Run_ChannelFedByOsThread_IsNotDeadlock), detection
/// beside other schedulers by Deadlock/GroupDetectionTests.
/// </summary>
public class TestingGuideSnippetTests
{
    // ---------------------------------------------------------------- section 1, as printed

    [Fact]
    public void Retry_GivesUpAfterThreeAttempts()
    {
        TimeSpan backedOff = TimeSpan.Zero;
        Scheduler.Run(async () =>
        {
            DateTimeOffset start = Scheduler.Current!.Time.GetUtcNow();
            var client = new FlakyClient(failures: 5);
            await Assert.ThrowsAsync<GaveUpException>(() => RetryAsync(client, attempts: 3, backoff: TimeSpan.FromMinutes(1)));
            Assert.Equal(3, client.Calls);
            backedOff = Scheduler.Current!.Time.GetUtcNow() - start;
        }, new SchedulerOptions { Seed = 1 });

        // The page's "two minutes of back-off" (between three attempts), on the virtual clock.
        Assert.Equal(TimeSpan.FromMinutes(2), backedOff);
    }

    [Fact]
    public void RunOnceLoop_RunsUntilEveryTaskletIsBlocked_AndLeavesTheVirtualClockWhereItWas()
    {
        using var scheduler = new Scheduler(new SchedulerOptions { Seed = 1 });
        var never = new Channel<int> { Name = "never" };
        int yields = 0;
        scheduler.Go(() => Tasklet.Sleep(TimeSpan.FromMinutes(1)).AsTask(), "sleeper");
        scheduler.Go(async () => await never.ReceiveAsync(), "receiver");
        scheduler.Go(async () =>
        {
            for (; yields < 3; yields++)
            {
                await Tasklet.Yield();
            }
        }, "yielder");
        DateTimeOffset start = scheduler.Time.GetUtcNow();

        while (scheduler.RunOnce())
        {
        }

        Assert.Equal(3, yields);
        Assert.Equal(2, scheduler.Tasklets.Count); // the sleeper and the receiver, blocked
        Assert.Equal(start, scheduler.Time.GetUtcNow()); // RunOnce never jumps the virtual clock
        string dump = scheduler.Dump();
        Assert.Contains("'sleeper'", dump, StringComparison.Ordinal);
        Assert.Contains("receive on channel 'never'", dump, StringComparison.Ordinal);
        Assert.False(scheduler.RunOnce()); // and never declares a deadlock: a host loop may pump again
    }

    // ---------------------------------------------------------------- section 2, as printed

    private const int PrintedSeed = 1; // the seed the page's output shows (seed 0 runs one withdrawal through first)

    [Fact]
    public void Withdrawals_NeverOverdraw_ExplorationFindsTheRace_AndReplaysIt()
    {
        var ex = Assert.Throws<ExplorationException>(() => Explore.Run(1000, async () =>
        {
            var account = new Account(balance: 10);
            Tasklet a = Tasklet.Go(() => account.WithdrawAsync(10));
            Tasklet b = Tasklet.Go(() => account.WithdrawAsync(10));
            await a;
            await b;
            if (account.Balance < 0)
            {
                throw new InvalidOperationException($"overdrawn: balance {account.Balance}");
            }
        }));

        // The page prints this message for this seed; the iteration is the seed's position from 0.
        Assert.Equal(
            $"Iteration {ex.Iteration} failed with seed {ex.Seed}: InvalidOperationException: overdrawn: balance -10 "
            + $"Replay it with Explore.Replay({ex.Seed}, body), or run under new SchedulerOptions {{ Seed = {ex.Seed}, RandomizeOrder = true }}.",
            ex.Message);
        Assert.Equal(ex.Seed + 1, ex.Iteration);
        Assert.Equal(PrintedSeed, ex.Seed);

        InvalidOperationException replayed = Assert.Throws<InvalidOperationException>(() => Explore.Replay(ex.Seed, async () =>
        {
            var account = new Account(balance: 10);
            Tasklet a = Tasklet.Go(() => account.WithdrawAsync(10));
            Tasklet b = Tasklet.Go(() => account.WithdrawAsync(10));
            await a;
            await b;
            if (account.Balance < 0)
            {
                throw new InvalidOperationException($"overdrawn: balance {account.Balance}");
            }
        }));
        Assert.Equal("overdrawn: balance -10", replayed.Message);
    }

    // ---------------------------------------------------------------- the user types the snippets assume

    private sealed class GaveUpException(int attempts, Exception last) : Exception($"gave up after {attempts} attempts", last);

    private sealed class FlakyClient(int failures)
    {
        public int Calls { get; private set; }

        public Task<string> GetAsync()
        {
            Calls++;
            return Calls <= failures ? Task.FromException<string>(new IOException("flaky")) : Task.FromResult("ok");
        }
    }

    // Three attempts, one back-off between each two of them: two minutes of back-off in all.
    private static async Task<string> RetryAsync(FlakyClient client, int attempts, TimeSpan backoff)
    {
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await client.GetAsync();
            }
            catch (IOException e) when (attempt == attempts)
            {
                throw new GaveUpException(attempts, e);
            }
            catch (IOException)
            {
                await Tasklet.Sleep(backoff);
            }
        }
    }

    // The page's Account: a check, an await (the audit log), then the update. Another withdrawal that checks during
    // that await overdraws it.
    private sealed class Account(int balance)
    {
        public int Balance { get; private set; } = balance;

        public async Task WithdrawAsync(int amount)
        {
            if (Balance >= amount)
            {
                await Tasklet.Yield(); // the audit log write
                Balance -= amount;
            }
        }
    }
}
