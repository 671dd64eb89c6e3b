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

    // ---------------------------------------------------------------- Close(error) and Completion

    /// <summary>Fills the buffer; false for an unbounded channel, which is never full.</summary>
    private static bool FillToFull(Channel<int> c)
    {
        if (c.Capacity < 0)
        {
            return false;
        }

        for (int i = 0; i < c.Capacity; i++)
        {
            Assert.True(c.TrySend(100 + i));
        }

        return true;
    }

    [Fact]
    public void CloseWithError_BufferedItems_ReceiversDrainThenThrowClosedWithError()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            if (c.Capacity == 0)
            {
                return;
            }

            var error = new FormatException("producer failed");
            await c.SendAsync(1);
            c.Close(error);
            Assert.True(c.IsClosed);
            Assert.Equal(1, await c.ReceiveAsync()); // items sent before the close still arrive
            Assert.False(c.TryReceive(out _)); // the Try pattern reports, it does not throw
            var received = await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.ReceiveAsync());
            Assert.Same(error, received.InnerException);
            var sent = await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.SendAsync(2));
            Assert.Same(error, sent.InnerException);
            Assert.False(c.TrySend(2));
            Assert.Same(error, Assert.Throws<ChannelClosedException>(() => c.SendException(new InvalidCastException())).InnerException);
        });
    }

    [Fact]
    public void CloseWithError_BlockedReceiversOfEveryKind_EachLearnsTheError()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            var error = new FormatException("producer failed");
            Exception? plain = null, loop = null;
            var rc = c.ReceiveCase();
            int fired = -2;
            Tasklet.Go(async () => plain = await Record.ExceptionAsync(async () => await c.ReceiveAsync()));
            Tasklet.Go(async () => loop = await Record.ExceptionAsync(async () =>
            {
                await foreach (int x in c)
                {
                }
            }));
            Tasklet.Go(async () => fired = await Select.WaitAsync(rc));
            await Tasklet.Yield();
            Assert.Equal(-3, c.Balance);
            c.Close(error);
            await Tasklet.Yield();
            Assert.Same(error, Assert.IsType<ChannelClosedException>(plain).InnerException);
            Assert.Same(error, Assert.IsType<ChannelClosedException>(loop).InnerException); // the loop does not end quietly
            Assert.Equal(0, fired);
            Assert.True(rc.IsClosed);
            Assert.Same(error, rc.CloseError);
            Assert.Equal(0, c.Balance);
        });
    }

    [Fact]
    public void CloseWithError_AwaitForeach_DrainsThenThrows()
    {
        var got = new List<int>();
        Exception? caught = null;
        RunMain(async () =>
        {
            Channel<int> c = Create();
            int items = c.Capacity == 0 ? 0 : 1;
            for (int i = 0; i < items; i++)
            {
                await c.SendAsync(i);
            }

            var error = new FormatException("producer failed");
            c.Close(error);
            caught = await Record.ExceptionAsync(async () =>
            {
                await foreach (int x in c)
                {
                    got.Add(x);
                }
            });
            Assert.Same(error, Assert.IsType<ChannelClosedException>(caught).InnerException);
            Assert.Equal(items, got.Count);

            Channel<int> normal = Create();
            normal.Close();
            await foreach (int x in normal)
            {
                got.Add(x); // a plain close still ends the loop quietly
            }
        });
    }

    [Fact]
    public void CloseWithError_BlockedSender_ThrowsClosedWithErrorAndItemIsNotDelivered()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            if (!FillToFull(c))
            {
                return;
            }

            var error = new FormatException("producer failed");
            Exception? caught = null;
            Tasklet.Go(async () => caught = await Record.ExceptionAsync(async () => await c.SendAsync(1)));
            await Tasklet.Yield();
            Assert.Equal(1, c.Balance);
            c.Close(error);
            await Tasklet.Yield();
            Assert.Same(error, Assert.IsType<ChannelClosedException>(caught).InnerException);
            var drained = new List<int>();
            while (c.TryReceive(out int x))
            {
                drained.Add(x);
            }

            Assert.DoesNotContain(1, drained); // the blocked sender's item was not delivered, and it knows
            Assert.Equal(c.Capacity, drained.Count);
        });
    }

    [Fact]
    public void Close_Again_KeepsTheFirstClose()
    {
        Channel<int> c = Create();
        var first = new FormatException("first");
        Assert.True(c.TryClose(first));
        Assert.False(c.TryClose(new InvalidCastException("second")));
        c.Close(new InvalidCastException("third"));
        c.Close();
        Assert.Same(first, Assert.Throws<ChannelClosedException>(() => c.SendAsync(1).AsTask().GetAwaiter().GetResult()).InnerException);
        Assert.Same(first, c.Completion.Exception!.InnerException);

        Channel<int> normal = Create();
        normal.Close();
        normal.Close(new FormatException("too late"));
        Assert.True(normal.Completion.IsCompletedSuccessfully); // a normal close stays normal
        Assert.Null(Assert.Throws<ChannelClosedException>(() => normal.SendAsync(1).AsTask().GetAwaiter().GetResult()).InnerException);
    }

    [Fact]
    public void Completion_ClosedAndDrained_CompletesAtTheLastReceive()
    {
        Channel<int> c = Create();
        Task completion = c.Completion;
        Assert.Same(completion, c.Completion);
        Assert.False(completion.IsCompleted);
        bool buffered = c.Capacity != 0 && c.TrySend(7);
        Assert.False(completion.IsCompleted);
        c.Close();
        Assert.Equal(!buffered, completion.IsCompleted); // an item left: not drained yet
        if (buffered)
        {
            Assert.True(c.TryReceive(out int x));
            Assert.Equal(7, x);
            Assert.True(completion.IsCompletedSuccessfully); // completed as the receive that drained it returned
        }

        Assert.Same(completion, c.Completion);
    }

    [Fact]
    public void Completion_ReadFirstAfterDrain_IsCompleted()
    {
        Channel<int> c = Create();
        c.Close();
        Assert.True(c.Completion.IsCompletedSuccessfully);
        Assert.Same(c.Completion, c.Completion);

        Channel<int> failed = Create();
        var error = new FormatException();
        failed.Close(error);
        Assert.True(failed.Completion.IsFaulted);
        Assert.Same(error, failed.Completion.Exception!.InnerException);
    }

    [Fact]
    public void Completion_PendingExceptionAfterClose_CompletesOnlyWhenTaken()
    {
        Channel<int> c = Create();
        c.SendException(new FormatException("signal"));
        c.Close();
        Assert.False(c.Completion.IsCompleted); // a receiver still has something to get
        Assert.Throws<FormatException>(() => c.TryReceive(out _));
        Assert.True(c.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task Completion_ClosedWithError_FaultsWithIt()
    {
        Channel<int> c = Create();
        var error = new FormatException();
        Task completion = c.Completion;
        c.Close(error);
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(() => completion));

        Channel<int> canceled = Create();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        canceled.Close(new OperationCanceledException(cts.Token));
        Assert.True(canceled.Completion.IsCanceled);
        var oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => canceled.Completion);
        Assert.Equal(cts.Token, oce.CancellationToken);
    }

    [Fact]
    public void Completion_DrainedBySelect_Completes()
    {
        Channel<int> c = Create();
        Task completion = c.Completion;
        if (c.Capacity == 0)
        {
            return;
        }

        Assert.True(c.TrySend(1));
        c.Close(new FormatException());
        var rc = c.ReceiveCase();
        Assert.Equal(0, Select.Try(rc));
        Assert.Equal(1, rc.Value);
        // A select releases the gate with others possibly held: the completion comes from the thread pool, at once.
        Assert.True(((IAsyncResult)completion).AsyncWaitHandle.WaitOne(RunningScheduler.Guard), "hang guard: Completion never completed");
        Assert.True(completion.IsFaulted);
    }

    public static TheoryData<string> DrainPaths => new() { "close", "receive", "select" };

    [Theory]
    [MemberData(nameof(DrainPaths))]
    public void Completion_Continuation_NeverRunsInlineNorUnderTheLock(string path)
    {
        Channel<int> c = Create();
        bool buffered = path != "close" && c.Capacity != 0;
        if (buffered)
        {
            Assert.True(c.TrySend(1));
        }

        int closer = Environment.CurrentManagedThreadId;
        int ranOn = -1;
        int countSeen = -1;
        Task continuation = c.Completion.ContinueWith(
            _ =>
            {
                ranOn = Environment.CurrentManagedThreadId;
                countSeen = c.Count; // takes the channel's gate: run under it, this would spin forever
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        c.Close();
        if (buffered && path == "receive")
        {
            Assert.True(c.TryReceive(out _));
        }
        else if (buffered)
        {
            Assert.Equal(0, Select.Try(c.ReceiveCase()));
        }

        // Blocking here keeps this thread from running the continuation later: only inline could it run here.
        Assert.True(((IAsyncResult)continuation).AsyncWaitHandle.WaitOne(RunningScheduler.Guard), "hang guard: the continuation never ran (or ran under the lock)");
        Assert.NotEqual(closer, ranOn);
        Assert.Equal(0, countSeen);
    }

    [Fact]
    public void ReceiveCase_ClosedWithError_FiresWithIsClosedAndCloseError()
    {
        RunMain(async () =>
        {
            Channel<int> c = Create();
            var rc = c.ReceiveCase();
            if (c.Capacity != 0)
            {
                Assert.True(c.TrySend(5));
            }

            var error = new FormatException();
            c.Close(error);
            if (c.Capacity != 0)
            {
                Assert.Equal(0, await Select.WaitAsync(rc));
                Assert.False(rc.IsClosed);
                Assert.Null(rc.CloseError); // fired with an item
                Assert.Equal(5, rc.Value);
            }

            Assert.Equal(0, Select.Try(rc));
            Assert.True(rc.IsClosed);
            Assert.Same(error, rc.CloseError);

            Channel<int> normal = Create();
            var rn = normal.ReceiveCase();
            normal.Close();
            Assert.Equal(0, await Select.WaitAsync(rn));
            Assert.True(rn.IsClosed);
            Assert.Null(rn.CloseError);
        });
    }

    [Fact]
    public void SendReceive_WithCompletionRead_AllocateNothingInSteadyState()
    {
        // Completion (and the cold state it lives in) must not put the hot paths on an allocating path.
        long allocated = -1;
        Scheduler.Run(async () =>
        {
            Channel<int> c = Create();
            _ = c.Completion;
            Tasklet consumer = Tasklet.Go(async () =>
            {
                for (int k = 1; ; k++)
                {
                    await c.ReceiveAsync();
                    if (k % 3 != 0)
                    {
                        await Tasklet.Yield(); // so that sends alternate between a parked receiver and none
                    }
                }
            });

            // Every transition path: a handoff to a parked receiver (which parked first), a buffered send and its
            // receive (buffered kinds), a parked sender and its receive (unbuffered).
            long before = 0;
            for (int i = 0; i < 11_000; i++)
            {
                if (i == 1_000)
                {
                    before = GC.GetAllocatedBytesForCurrentThread();
                }

                await c.SendAsync(i);
                await Tasklet.Yield(); // one send per turn, one receive per turn: the buffer stays small
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            consumer.Kill();
        });
        Assert.Equal(0, allocated);
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
