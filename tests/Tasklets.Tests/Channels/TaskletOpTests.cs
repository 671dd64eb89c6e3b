using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Channels;

/// <summary>
/// TaskletOp and TaskletOp&lt;T&gt;, the library's struct awaitables: both forms (completed synchronously, pending),
/// the conversions, the standard builder's path, the exceptions through GetResult and the await-once rule.
/// </summary>
public class TaskletOpTests
{
    [Fact]
    public void Await_CompletedSynchronously_HasNoSourceAndGivesTheResult()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        int got = 0;
        Tasklet t = s.Go(async () =>
        {
            var ch = new Channel<int>(1);
            TaskletOp send = ch.SendAsync(7); // buffered: completes at once
            Assert.True(send.IsCompleted);
            Assert.True(send.IsCompletedSuccessfully);
            Assert.Null(send.Source);
            await send;
            TaskletOp<int> receive = ch.ReceiveAsync();
            Assert.True(receive.IsCompletedSuccessfully);
            Assert.Null(receive.Source);
            got = await receive;
        });
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Dead, t.State);
        Assert.Null(t.Exception);
        Assert.Equal(7, got);
    }

    [Fact]
    public void Await_Pending_CompletesWhenThePartnerArrives()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        bool pendingSeen = false;
        int got = 0;
        s.Go(async () =>
        {
            TaskletOp<int> receive = ch.ReceiveAsync(); // nobody sends yet: parks
            pendingSeen = !receive.IsCompleted && receive.Source is not null;
            got = await receive;
        });
        s.RunUntilIdle();
        Assert.True(pendingSeen);
        s.Go(async () => await ch.SendAsync(42));
        s.RunUntilIdle();
        Assert.Equal(42, got);
    }

    [Fact]
    public void ConvertedToValueTask_ThenAwaited_CompletesWithTheResult()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        int got = 0;
        bool sent = false;
        s.Go(async () =>
        {
            ValueTask<int> receive = ch.ReceiveAsync(); // implicit conversion of a pending op
            got = await receive;
        });
        s.Go(async () =>
        {
            ValueTask send = ch.SendAsync(5);
            await send;
            sent = true;
        });
        s.RunUntilIdle();
        Assert.Equal(5, got);
        Assert.True(sent);
    }

    [Fact]
    public async Task AsTask_FromATasklet_CompletesWithTheOperation()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Task<int>? received = null;
        Task? yielded = null;
        s.Go(async () =>
        {
            yielded = Tasklet.Yield().AsTask();
            await yielded;
            received = ch.ReceiveAsync().AsTask();
            await received;
        });
        s.Go(async () => await ch.SendAsync(9));
        s.RunUntilIdle();
        Assert.True(yielded!.IsCompletedSuccessfully);
        Assert.True(received!.IsCompletedSuccessfully);
        Assert.Equal(9, await received); // completed already
    }

    [Fact]
    public void Await_InsideANestedOrdinaryAsyncMethod_UsesTheStandardBuilderAndCompletes()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        int sum = 0;
        s.Go(async () => sum = await ReceiveTwiceAsync(ch));
        s.Go(async () =>
        {
            await ch.SendAsync(1);
            await Tasklet.Yield();
            await ch.SendAsync(2);
        });
        s.RunUntilIdle();
        Assert.Equal(3, sum);

        static async Task<int> ReceiveTwiceAsync(Channel<int> ch)
        {
            int a = await ch.ReceiveAsync();
            await Tasklet.Checkpoint();
            int b = await ch.ReceiveAsync();
            return a + b;
        }
    }

    [Fact]
    public void GetResult_ClosedChannel_ThrowsChannelClosedException()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Exception? whilePending = null;
        Exception? afterClose = null;
        s.Go(async () => whilePending = await Record(async () => await ch.ReceiveAsync()));
        s.RunUntilIdle();
        ch.Close();
        s.Go(async () =>
        {
            TaskletOp<int> op = ch.ReceiveAsync(); // closed already: completed with the fault
            Assert.True(op.IsCompleted);
            Assert.False(op.IsCompletedSuccessfully);
            afterClose = await Record(async () => await op);
        });
        s.RunUntilIdle();
        Assert.IsType<ChannelClosedException>(whilePending);
        Assert.IsType<ChannelClosedException>(afterClose);
    }

    [Fact]
    public void GetResult_KilledWhileBlocked_ThrowsTaskletExitException()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Exception? seen = null;
        Tasklet t = s.Go(async () =>
        {
            try
            {
                await ch.SendAsync(1);
            }
            catch (TaskletExitException e)
            {
                seen = e;
                throw;
            }
        });
        s.RunUntilIdle();
        t.Kill();
        s.RunUntilIdle();
        Assert.IsType<TaskletExitException>(seen);
        Assert.False(t.IsAlive);
    }

    [Fact]
    public void GetResult_TimeoutExpires_ThrowsTaskletTimeoutException()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        Exception? receive = null;
        Exception? select = null;
        s.Go(async () =>
        {
            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                receive = await Record(async () => await ch.ReceiveAsync());
            }

            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                select = await Record(async () => await Select.WaitAsync(ch.ReceiveCase()));
            }
        });
        s.RunFor(TimeSpan.FromSeconds(5)); // virtual time
        Assert.IsType<TaskletTimeoutException>(receive);
        Assert.IsType<TaskletTimeoutException>(select);
    }

    [Fact]
    public void GetResult_Cancelled_ThrowsOperationCanceledException()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        using var cts = new CancellationTokenSource();
        Exception? before = null;
        Exception? during = null;
        s.Go(async () =>
        {
            using var cancelled = new CancellationTokenSource();
            await cancelled.CancelAsync();
            TaskletOp op = ch.SendAsync(1, cancelled.Token); // cancelled before it began: ValueTask.FromCanceled's exception
            Assert.True(op.IsCompleted);
            before = await Record(async () => await op);
            during = await Record(async () => await ch.ReceiveAsync(cts.Token));
        });
        s.RunUntilIdle();
        cts.Cancel();
        s.RunUntilIdle();
        Assert.IsType<TaskCanceledException>(before);
        Assert.IsAssignableFrom<OperationCanceledException>(during);
        Assert.Equal(0, ch.Count);
    }

    [Fact]
    public void Await_Default_CompletesAtOnce()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        int result = -1;
        bool done = false;
        s.Go(async () =>
        {
            await default(TaskletOp);
            await TaskletOp.CompletedOp;
            result = await default(TaskletOp<int>);
            result += await new TaskletOp<int>(0);
            done = true;
        });
        s.RunUntilIdle();
        Assert.True(done);
        Assert.Equal(0, result);
        Assert.True(default(TaskletOp).IsCompletedSuccessfully);
        Assert.True(default(TaskletOp<int>).AsValueTask().IsCompletedSuccessfully);
    }

    [Fact]
    public void Await_SamePendingOpTwice_SecondIsRefused()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        int first = 0;
        Exception? second = null;
        Exception? secondYield = null;
        Tasklet main = s.Go(async () =>
        {
            _ = Tasklet.Go(async () => await ch.SendAsync(1));
            TaskletOp<int> op = ch.ReceiveAsync(); // parks: the sender has not run yet
            first = await op;
            TaskletOp yielded = Tasklet.Yield();
            await yielded;
#pragma warning disable TASKLET004 // the misuse under test: the second await must throw
            second = await Record(async () => await op);
            secondYield = await Record(async () => await yielded);
#pragma warning restore TASKLET004
        });
        s.RunUntilIdle();
        Assert.Equal(1, first);
        Assert.Equal(TaskletState.Dead, main.State);
        Assert.Contains("already awaited", Assert.IsType<InvalidOperationException>(second).Message, StringComparison.Ordinal);
        Assert.IsType<InvalidOperationException>(secondYield);
    }

    [Fact]
    public void Await_FromAnotherTasklet_IsRefusedAndLeavesTheWaitToItsOwner()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        TaskletOp<int> op = default;
        Exception? foreign = null;
        s.Go(async () =>
        {
            op = ch.ReceiveAsync();
            await Tasklet.Sleep(TimeSpan.FromSeconds(1)); // leaves the receive stored, not awaited
        });
        s.RunUntilIdle();
        s.Go(async () => foreign = await Record(async () => await op));
        s.RunUntilIdle();
        Assert.IsType<InvalidOperationException>(foreign);
    }

    [Fact]
    public void SelectWaitAsync_ReturnsTheFiredIndex_AsATaskletOp()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var a = new Channel<int>();
        var b = new Channel<int>(1);
        int fired = -2;
        int nothing = -2;
        s.Go(async () =>
        {
            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            nothing = await Select.WaitAsync(TimeSpan.Zero, fromA, fromB);
            TaskletOp<int> op = Select.WaitAsync(fromA, fromB);
            fired = await op;
        });
        s.RunUntilIdle();
        s.Go(async () => await b.SendAsync(3));
        s.RunUntilIdle();
        Assert.Equal(-1, nothing);
        Assert.Equal(1, fired);
    }

    private static async Task<Exception?> Record(Func<Task> action)
    {
        try
        {
            await action();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }
}
