using Xunit;

namespace Tasklets.Tests.Channels;

/// <summary>
/// A parked send or receive uses a queue node the tasklet's waiter keeps for reuse (two slots). These tests drive a
/// tasklet through more node kinds than slots, so nodes are evicted and recreated, and check that no item is lost,
/// duplicated or delivered to the wrong channel on the way.
/// </summary>
public class NodeReuseTests
{
    [Fact]
    public void ReceiveAsync_ThreeItemTypesInTurn_EvictedNodesDeliverEveryItemToItsChannel()
    {
        var ints = new List<int>();
        var strings = new List<string>();
        var longs = new List<long>();
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<string>();
            var c = new Channel<long>();
            Tasklet consumer = Tasklet.Go(async () =>
            {
                for (int i = 0; i < 50; i++)
                {
                    // Each receive parks first (the producer runs later), so each needs a node of its own type.
                    ints.Add(await a.ReceiveAsync());
                    strings.Add(await b.ReceiveAsync());
                    longs.Add(await c.ReceiveAsync());
                }
            });
            for (int i = 0; i < 50; i++)
            {
                // Yielding first lets the consumer park on the receive (the run queue is FIFO).
                await Tasklet.Yield();
                Assert.Equal(-1, a.Balance);
                await a.SendAsync(i);
                await Tasklet.Yield();
                Assert.Equal(-1, b.Balance);
                await b.SendAsync($"s{i}");
                await Tasklet.Yield();
                Assert.Equal(-1, c.Balance);
                await c.SendAsync(1000L + i);
            }

            await consumer;
            Assert.Equal(0, a.Balance);
            Assert.Equal(0, b.Balance);
            Assert.Equal(0, c.Balance);
        });
        Assert.Equal(Enumerable.Range(0, 50), ints);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => $"s{i}"), strings);
        Assert.Equal(Enumerable.Range(0, 50).Select(i => 1000L + i), longs);
    }

    [Fact]
    public void SendAsync_ParkedSendsOnThreeChannels_EachReceiverGetsItsOwnItems()
    {
        var got = new List<string>();
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<string>();
            var c = new Channel<long>();
            Tasklet producer = Tasklet.Go(async () =>
            {
                for (int i = 0; i < 20; i++)
                {
                    await a.SendAsync(i);
                    await b.SendAsync($"s{i}");
                    await c.SendAsync(i);
                }
            });
            for (int i = 0; i < 20; i++)
            {
                // Yielding first lets the producer park on each send, with a node of that send's item type.
                await Tasklet.Yield();
                Assert.Equal(1, a.Balance);
                got.Add($"{await a.ReceiveAsync()}");
                await Tasklet.Yield();
                Assert.Equal(1, b.Balance);
                got.Add(await b.ReceiveAsync());
                await Tasklet.Yield();
                Assert.Equal(1, c.Balance);
                got.Add($"L{await c.ReceiveAsync()}");
            }

            await producer;
        });
        Assert.Equal(Enumerable.Range(0, 20).SelectMany(i => new[] { $"{i}", $"s{i}", $"L{i}" }), got);
    }

    [Fact]
    public void ReceiveAsync_AsTaskAndPlainAwaitsInTurn_BothContinuationKindsResumeWithTheItem()
    {
        // AsTask() registers the runtime's task-completion callback on the waiter, not the async-method one that a
        // plain await passes; the waiter stores the two kinds differently, so alternate them on one tasklet.
        var got = new List<int>();
        Scheduler.Run(async () =>
        {
            var c = new Channel<int>();
            Tasklet consumer = Tasklet.Go(async () =>
            {
                for (int i = 0; i < 10; i++)
                {
                    got.Add(i % 2 == 0 ? await c.ReceiveAsync().AsTask() : await c.ReceiveAsync());
                }
            });
            for (int i = 0; i < 10; i++)
            {
                await Tasklet.Yield(); // the consumer parks first
                Assert.Equal(-1, c.Balance);
                await c.SendAsync(i);
            }

            await consumer;
        });
        Assert.Equal(Enumerable.Range(0, 10), got);
    }
}
