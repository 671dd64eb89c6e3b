using Tasklets.Tests.Infrastructure;
using Xunit;
using Stc = System.Threading.Channels;

namespace Tasklets.Tests.Channels.Interop;

/// <summary>
/// <c>ChannelReader&lt;T&gt;.AsTaskletChannel()</c>: a Tasklets channel fed on demand by a pump from an STC reader. The
/// pump runs on the thread pool, so each test waits for observable state (the view's readiness waits, its balance)
/// under a hang guard, never for time.
/// </summary>
public class TaskletViewTests
{
    private static readonly TimeSpan s_guard = RunningScheduler.Guard;

    private static void WaitUntil(Func<bool> condition, string what) => RunningScheduler.WaitUntil(condition, what);

    // The pump is parked waiting for demand: a write-readiness wait on the view.
    private static bool PumpWaitsForDemand(Channel<int> view) => view.CountReadinessWaits().Write == 1;

    [Fact]
    public void AsTaskletChannel_ReaderCompletes_TaskletReceivesEveryItemInOrderThenTheLoopEnds()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        for (int i = 0; i < 100; i++)
        {
            Assert.True(source.Writer.TryWrite(i));
        }

        source.Writer.Complete();
        Channel<int> view = source.Reader.AsTaskletChannel("events");
        Assert.Equal("events", view.Name);
        var got = new List<int>();
        Scheduler.Run(async () =>
        {
            await foreach (int x in view)
            {
                got.Add(x);
            }
        });
        Assert.Equal(Enumerable.Range(0, 100), got);
        Assert.True(view.IsClosed);
        Assert.True(view.Completion.IsCompletedSuccessfully);
    }

    [Fact]
    public void AsTaskletChannel_ReaderFaulted_ViewClosedWithTheErrorAfterTheItems()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        var error = new FormatException("source failed");
        Assert.True(source.Writer.TryWrite(1));
        source.Writer.Complete(error);
        Channel<int> view = source.Reader.AsTaskletChannel();
        Exception? caught = null;
        int first = 0;
        Scheduler.Run(async () =>
        {
            first = await view.ReceiveAsync();
            caught = await Record.ExceptionAsync(async () => await view.ReceiveAsync());
        });
        Assert.Equal(1, first);
        Assert.Same(error, Assert.IsType<ChannelClosedException>(caught).InnerException);
        Assert.Same(error, view.Completion.Exception!.InnerException);
    }

    [Fact]
    public void AsTaskletChannel_NoReceiver_NothingLeavesTheReader()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(source.Writer.TryWrite(i));
        }

        Channel<int> view = source.Reader.AsTaskletChannel();
        WaitUntil(() => PumpWaitsForDemand(view) || view.Balance > 0, "the pump never settled");
        Assert.True(PumpWaitsForDemand(view), "the pump read ahead: it holds an item nobody asked for");
        Assert.Equal(3, source.Reader.Count);

        using var s = new Scheduler();
        int got = -1;
        s.Go(async () => got = await view.ReceiveAsync());
        s.RunUntilIdle(); // parked: the pump is woken by the demand
        WaitUntil(
            () =>
            {
                s.RunOnce(); // the pump's handoff wakes the tasklet through the scheduler's inbox
                return got >= 0;
            },
            "the receiver never got an item");
        Assert.Equal(0, got);
        WaitUntil(() => PumpWaitsForDemand(view), "the pump did not go back to waiting for demand");
        Assert.Equal(2, source.Reader.Count); // one item per receive
    }

    [Fact]
    public async Task AsTaskletChannel_ReceiverGivesUpAfterThePumpTookAnItem_TheNextReceiverGetsIt()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        Channel<int> view = source.Reader.AsTaskletChannel();
        WaitUntil(() => PumpWaitsForDemand(view), "the pump never waited for demand");

        using var cts = new CancellationTokenSource();
        ValueTask<int> first = view.ReceiveAsync(cts.Token); // plain code: a demand that will go away
        WaitUntil(() => !PumpWaitsForDemand(view), "the demand did not wake the pump");
        cts.Cancel(); // the pump now waits for the reader, committed to deliver what it takes
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => first.AsTask().WaitAsync(s_guard));
        Assert.True(source.Writer.TryWrite(42));
        WaitUntil(() => view.Balance == 1, "the pump did not hold the item in a send");
        Assert.Equal(0, source.Reader.Count); // it left the reader ...
        Assert.True(view.TryReceive(out int item)); // ... and is still delivered, to the next receiver
        Assert.Equal(42, item);
    }

    [Fact]
    public void AsTaskletChannel_SelectOverTheViewAndAChannel_ReceivesFromBoth()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        Channel<int> view = source.Reader.AsTaskletChannel();
        var local = new Channel<int>();
        var got = new List<int>();
        var producer = Task.Run(async () =>
        {
            for (int i = 0; i < 50; i++)
            {
                await source.Writer.WriteAsync(i);
            }

            source.Writer.Complete();
        });
        Scheduler.Run(async () =>
        {
            Tasklet.Go(async () =>
            {
                for (int i = 100; i < 150; i++)
                {
                    await local.SendAsync(i);
                }

                local.Close();
            });
            ReceiveCase<int> fromView = view.ReceiveCase();
            ReceiveCase<int> fromLocal = local.ReceiveCase();
            bool viewOpen = true, localOpen = true;
            while (viewOpen || localOpen)
            {
                int fired = viewOpen && localOpen
                    ? await Select.WaitAsync(fromView, fromLocal)
                    : viewOpen ? await Select.WaitAsync(fromView) : 1 + await Select.WaitAsync(fromLocal);
                ReceiveCase<int> c = fired == 0 ? fromView : fromLocal;
                if (c.IsClosed)
                {
                    if (fired == 0)
                    {
                        viewOpen = false;
                    }
                    else
                    {
                        localOpen = false;
                    }
                }
                else
                {
                    got.Add(c.Value);
                }
            }
        });
        Assert.True(((IAsyncResult)producer).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the producer");
        Assert.Equal(Enumerable.Range(0, 50).Concat(Enumerable.Range(100, 50)), got.OrderBy(x => x));
    }

    [Fact]
    public void AsTaskletChannel_CloseByAnyoneButThePump_IsRefused()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        Channel<int> view = source.Reader.AsTaskletChannel();
        var refused = Assert.Throws<InvalidOperationException>(() => view.Close());
        Assert.Contains("AsTaskletChannel", refused.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidOperationException>(() => view.Close(new FormatException()));
        Assert.Throws<InvalidOperationException>(() => view.AsChannelWriter().TryComplete());
        Assert.False(view.IsClosed);
        source.Writer.Complete();
        Assert.True(((IAsyncResult)view.Completion).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the pump never closed the view");
    }

    [Fact]
    public async Task AsTaskletChannel_Canceled_ViewClosedWithTheCancellation()
    {
        var source = Stc.Channel.CreateUnbounded<int>();
        using var cts = new CancellationTokenSource();
        Channel<int> view = source.Reader.AsTaskletChannel(cancellationToken: cts.Token);
        cts.Cancel();
        Assert.True(((IAsyncResult)view.Completion).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the pump never stopped");
        Assert.True(view.Completion.IsCanceled);
        Assert.Equal(cts.Token, (await Assert.ThrowsAnyAsync<OperationCanceledException>(() => view.Completion)).CancellationToken);
        var closed = await Assert.ThrowsAsync<ChannelClosedException>(() => view.ReceiveAsync().AsTask().WaitAsync(s_guard));
        Assert.IsAssignableFrom<OperationCanceledException>(closed.InnerException);
        Assert.True(source.Writer.TryWrite(1));
        Assert.Equal(1, source.Reader.Count); // a stopped pump takes nothing more
    }

    [Fact]
    public async Task AsTaskletChannel_TaskletWaitsWhileTheSourceIsIdle_NoFalseDeadlock()
    {
        // Under a Seed the closed world would report a tasklet blocked on a channel made before Run; the view is
        // reachable from outside (its pump is plain code), so the scheduler idles until the item comes.
        var source = Stc.Channel.CreateUnbounded<int>();
        Channel<int> view = source.Reader.AsTaskletChannel();
        int got = 0;
        var writer = Task.Run(() =>
        {
            WaitUntil(() => view.Balance == -1, "the tasklet never waited on the view");
            return source.Writer.TryWrite(7);
        });
        Scheduler.Run(async () => got = await view.ReceiveAsync(), new SchedulerOptions { Seed = 4 });
        Assert.True(await writer.WaitAsync(s_guard));
        Assert.Equal(7, got);
    }
}
