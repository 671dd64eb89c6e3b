using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Channels;

/// <summary>The rules every kind of channel keeps; run for capacity 0, 1, 10 and unbounded.</summary>
public abstract class ChannelContractTests
{
    protected abstract Channel<int> Create();

    private static void RunMain(Func<Task> main) => Scheduler.Run(main);

    [Fact]
    public void SendReceive_ManyItems_FifoAndComplete()
    {
        var got = new List<int>();
        RunMain(async () =>
        {
            Channel<int> c = Create();
            Tasklet.Go(async () =>
            {
                for (int i = 0; i < 100; i++)
                {
                    await c.SendAsync(i);
                }

                c.Close();
            });
            await foreach (int x in c)
            {
                got.Add(x);
            }
        });
        Assert.Equal(Enumerable.Range(0, 100), got);
    }

    [Fact]
    public void ReceiveAsync_BlockedReceivers_ServedFifo()
    {
        var order = new List<string>();
        RunMain(async () =>
        {
            Channel<int> c = Create();
            Tasklet a = Tasklet.Go(async () => order.Add($"a{await c.ReceiveAsync()}"));
            Tasklet b = Tasklet.Go(async () => order.Add($"b{await c.ReceiveAsync()}"));
            await Tasklet.Yield();
            Assert.Equal(-2, c.Balance);
            await c.SendAsync(1);
            await c.SendAsync(2);
            await a;
            await b;
        });
        Assert.Equal(["a1", "b2"], order);
    }

    [Fact]
    public void Close_BlockedReceivers_ThrowClosed()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            Tasklet r1 = Tasklet.Go(async () => await c.ReceiveAsync());
            Tasklet r2 = Tasklet.Go(async () => await c.ReceiveAsync());
            await Tasklet.Yield();
            c.Close();
            c.Close(); // idempotent
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await r1);
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await r2);
            Assert.Equal(0, c.Balance);
            Assert.True(c.IsClosed);
        });
    }

    [Fact]
    public void Close_BufferedItems_ReceiversDrainThenThrow()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            if (c.Capacity == 0)
            {
                return;
            }

            await c.SendAsync(1);
            c.Close();
            Assert.Equal(1, await c.ReceiveAsync());
            Assert.False(c.TryReceive(out _));
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.ReceiveAsync());
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.SendAsync(2));
            Assert.False(c.TrySend(2));
        });
    }

    [Fact]
    public void ReceiveAsync_Cancelled_TakesNothingAndBalanceZero()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            using var cts = new CancellationTokenSource();
            Tasklet r = Tasklet.Go(async () => await c.ReceiveAsync(cts.Token));
            await Tasklet.Yield();
            Assert.Equal(-1, c.Balance);
            cts.Cancel();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await r);
            Assert.Equal(0, c.Balance);
            Tasklet later = Tasklet.Go(async () => Assert.Equal(5, await c.ReceiveAsync()));
            await c.SendAsync(5);
            await later;
        });
    }

    [Fact]
    public void SendException_NextReceiverThrowsIt()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            Tasklet r = Tasklet.Go(async () => await c.ReceiveAsync());
            await Tasklet.Yield();
            c.SendException(new FormatException("producer failed"));
            var ex = await Assert.ThrowsAsync<FormatException>(async () => await r);
            Assert.Equal("producer failed", ex.Message);
            c.SendException(new FormatException("queued"));
            await Assert.ThrowsAsync<FormatException>(async () => await c.ReceiveAsync());
        });
    }

    [Fact]
    public void Send_BlockingInTasklet_RefusedNamingAsyncMethod()
    {
        RunMain(() =>
        {
            var ex = Assert.Throws<InvalidOperationException>(() => Create().Send(1));
            Assert.Contains("SendAsync", ex.Message);
            return Task.CompletedTask;
        });
    }

    [Fact]
    public void OsThreads_BlockingSendReceive_EveryItemOnce()
    {
        Channel<int> c = Create();
        var got = new List<int>();
        var consumer = new Thread(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                got.Add(c.Receive());
            }
        })
        { IsBackground = true };
        consumer.Start();
        for (int i = 0; i < 1000; i++)
        {
            c.Send(i);
        }

        Assert.True(consumer.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(Enumerable.Range(0, 1000), got);
    }
}

public class UnbufferedChannelTests : ChannelContractTests
{
    protected override Channel<int> Create() => new();

    [Fact]
    public void SendAsync_NoReceiver_BlocksUntilTaken()
    {
        using var s = new Scheduler();
        var c = new Channel<int>();
        bool sent = false;
        s.Go(async () => { await c.SendAsync(1); sent = true; });
        s.RunUntilIdle();
        Assert.False(sent);
        Assert.Equal(1, c.Balance);
        Assert.Equal(0, c.Count);
        Assert.True(c.TryReceive(out int x));
        Assert.Equal(1, x);
        s.RunUntilIdle();
        Assert.True(sent);
    }

    [Fact]
    public void Close_BlockedSenders_ThrowClosedItemNotDelivered()
    {
        using var s = new Scheduler();
        var c = new Channel<int>();
        Exception? caught = null;
        s.Go(async () => caught = await Record.ExceptionAsync(async () => await c.SendAsync(1)));
        s.RunUntilIdle();
        c.Close();
        s.RunUntilIdle();
        Assert.IsType<ChannelClosedException>(caught);
        Assert.Equal(0, c.Balance);
        Assert.False(c.TryReceive(out _));
    }

    [Fact]
    public void Constructor_NegativeCapacity_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Channel<int>(-1));
        Assert.Equal(0, new Channel<int>().Capacity);
        Assert.Equal(-1, Channel<int>.CreateUnbounded().Capacity);
    }
}

public class CapacityOneChannelTests : ChannelContractTests
{
    protected override Channel<int> Create() => new(1);

    [Fact]
    public void SendAsync_BufferFull_BlocksAndRefillsOnReceive()
    {
        using var s = new Scheduler();
        var c = new Channel<int>(1);
        int sent = 0;
        s.Go(async () => { for (int i = 0; i < 3; i++) { await c.SendAsync(i); sent++; } });
        s.RunUntilIdle();
        Assert.Equal(1, sent);
        Assert.Equal(1, c.Count);
        Assert.Equal(1, c.Balance);
        Assert.True(c.TryReceive(out int a)); // the blocked sender's item moves into the buffer
        Assert.Equal(0, a);
        Assert.Equal(1, c.Count);
        s.RunUntilIdle();
        Assert.True(c.TryReceive(out int b));
        Assert.Equal(1, b);
    }
}

public class BufferedChannelTests : ChannelContractTests
{
    protected override Channel<int> Create() => new(10);
}

public class UnboundedChannelTests : ChannelContractTests
{
    protected override Channel<int> Create() => Channel<int>.CreateUnbounded();

    [Fact]
    public void TrySend_NeverFails()
    {
        var c = Channel<int>.CreateUnbounded();
        for (int i = 0; i < 10_000; i++)
        {
            Assert.True(c.TrySend(i));
        }

        Assert.Equal(10_000, c.Count);
    }
}
