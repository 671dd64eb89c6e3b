using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// Deadlock detection per group of schedulers under real threads (issue 15). Two groups run side by side: in one, a
/// producer and a consumer on two schedulers hand items over channels they reach only through a spawn, the consumer
/// pausing at random so that the producer's scheduler is stuck again and again while its partner runs (each verdict
/// then must find the partner in the group: a false deadlock kills the producer and shows as a DeadlockException and
/// missing items); in the other, two schedulers build a real cross-scheduler deadlock each round, which must be
/// reported every time (a missed one hangs the round's guard). Bounded: a fixed number of rounds and items.
/// </summary>
[Collection(NonParallel.Name)]
[Trait("Category", "Stress")]
public class GroupDeadlockStressTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(60);

    [Fact]
    public void FalseVerdictsNever_TrueDeadlocksAlways_WhileBothHappenSideBySide()
    {
        const int Items = 3000;
        const int DeadlockRounds = 40;
        var received = new List<int>(Items);
        Exception? transferFailure = null;
        using var producerSide = new Scheduler();
        using var consumerSide = new Scheduler();
        using var consumerSpawned = new ManualResetEventSlim();
        producerSide.Go(async () =>
        {
            var items = new Channel<int> { Name = "items" };
            var acks = new Channel<int>(capacity: 4) { Name = "acks" };
            consumerSide.Go(async () =>
            {
                var random = new Random(7);
                for (int i = 0; i < Items; i++)
                {
                    int pause = random.Next(4) == 0 ? random.Next(200) : 0;
                    for (int p = 0; p < pause; p++)
                    {
                        await Tasklet.Yield(); // the producer's scheduler goes stuck meanwhile
                    }

                    received.Add(await items.ReceiveAsync());
                    if (i % 16 == 0)
                    {
                        await acks.SendAsync(i);
                    }
                }
            }, "consumer");
            consumerSpawned.Set();
            for (int i = 0; i < Items; i++)
            {
                await items.SendAsync(i);
                if (i % 16 == 0)
                {
                    await acks.ReceiveAsync();
                }
            }
        }, "producer");

        var producerThread = new Thread(() => transferFailure ??= Record.Exception(producerSide.Run)) { IsBackground = true };
        producerThread.Start();
        Assert.True(consumerSpawned.Wait(s_guard));
        var consumerThread = new Thread(() => transferFailure ??= Record.Exception(consumerSide.Run)) { IsBackground = true };
        consumerThread.Start();

        // Meanwhile, true deadlocks across two other schedulers, one per round, each reported by both.
        for (int round = 0; round < DeadlockRounds; round++)
        {
            using var left = new Scheduler();
            using var right = new Scheduler();
            using var spawned = new ManualResetEventSlim();
            left.Go(async () =>
            {
                var p = new Channel<int> { Name = "p" };
                var q = new Channel<int> { Name = "q" };
                right.Go(async () =>
                {
                    await p.ReceiveAsync();
                    await q.SendAsync(1);
                }, "right");
                spawned.Set();
                await q.ReceiveAsync();
                await p.SendAsync(1);
            }, "left");
            Exception? fromRight = null;
            Exception? fromLeft = null;
            var leftThread = new Thread(() => fromLeft = Record.Exception(left.Run)) { IsBackground = true };
            leftThread.Start();
            Assert.True(spawned.Wait(s_guard));
            var rightThread = new Thread(() => fromRight = Record.Exception(right.Run)) { IsBackground = true };
            rightThread.Start();
            Assert.True(leftThread.Join(s_guard), $"round {round}: the left side's deadlock was not reported");
            Assert.True(rightThread.Join(s_guard), $"round {round}: the right side's deadlock was not reported");
            Assert.IsType<DeadlockException>(fromLeft);
            Assert.IsType<DeadlockException>(fromRight);
        }

        Assert.True(producerThread.Join(s_guard), "hang guard: the producer");
        Assert.True(consumerThread.Join(s_guard), "hang guard: the consumer");
        Assert.Null(transferFailure);
        Assert.Equal(Enumerable.Range(0, Items), received);
    }
}
