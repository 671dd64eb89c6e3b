using Tasklets;
using Stc = System.Threading.Channels;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Docs;

/// <summary>
/// Runs every snippet of docs/for-channels-users.md (IdiomPagesTests checks that each one appears here as printed) and
/// checks what the page says about it.
/// </summary>
public class ForChannelsUsersSnippetTests
{
    private static Channel<T> Bounded<T>(int n) => new Channel<T>(n);

    private static Channel<T> Unbounded<T>() => Channel<T>.CreateUnbounded();

    private static Channel<T> Unbuffered<T>() => new Channel<T>();

    [Fact]
    public void Kinds_BoundedWaitsWhenFull_UnboundedNever_UnbufferedForAReceiver()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Channel<int> ch = Bounded<int>(1);
        int x = 1;
        Assert.True(ch.TrySend(x));
        Assert.False(ch.TrySend(x)); // full: TrySend says so, SendAsync waits
        Channel<int> unbounded = Unbounded<int>();
        for (int i = 0; i < 1000; i++)
        {
            Assert.True(unbounded.TrySend(i));
        }

        Channel<int> rendezvous = Unbuffered<int>();
        Assert.False(rendezvous.TrySend(x)); // nobody receives
        Assert.Equal(1, ch.Count);
        Assert.Equal(1000, unbounded.Count);
        Assert.True(ch.TryReceive(out x));
        Assert.Equal(1, x);
    }

    [Fact]
    public void SendReceive_TheAsyncFormsAndTheTryForms()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var received = new List<int>();
        s.Go(async () =>
        {
            Channel<int> ch = Unbuffered<int>();
            CancellationToken ct = CancellationToken.None;
            Tasklet producer = Tasklet.Go(async () =>
            {
                for (int x = 0; x < 3; x++)
                {
                    await ch.SendAsync(x, ct);
                }

                ch.Close();
            });
            received.Add(await ch.ReceiveAsync(ct));
            await foreach (var x in ch)
            {
                received.Add(x);
            }

            await producer;
            Assert.False(ch.TryReceive(out int x2)); // closed and drained
            Assert.Equal(0, x2);
        });
        s.Run();
        Assert.Equal([0, 1, 2], received);
    }

    [Fact]
    public void CloseWithError_ReceiversDrainThenGetItInside_AwaitForeachThrows_CompletionFaults()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var ex = new InvalidOperationException("the producer failed");
        Channel<int> ch = Bounded<int>(2);
        Exception? blockedSender = null;
        s.Go(async () =>
        {
            ch.TrySend(1);
            ch.TrySend(2);
            Tasklet sender = Tasklet.Go(async () => blockedSender = await Record.ExceptionAsync(async () => await ch.SendAsync(3)));
            await Tasklet.Yield(); // the sender blocks on the full buffer
            ch.Close(ex);
            ch.Close(); // idempotent: the first close and its error stay
            var drained = new List<int>();
            var thrown = await Assert.ThrowsAsync<ChannelClosedException>(async () =>
            {
                await foreach (var x in ch)
                {
                    drained.Add(x);
                }
            });
            Assert.Same(ex, thrown.InnerException);
            Assert.Equal([1, 2], drained);
            var late = await Assert.ThrowsAsync<ChannelClosedException>(async () => await ch.ReceiveAsync());
            Assert.Same(ex, late.InnerException);
            await sender;
        });
        s.Run();
        Assert.Same(ex, Assert.IsType<ChannelClosedException>(blockedSender).InnerException);
        Assert.True(ch.Completion.IsFaulted);
        Assert.Same(ex, ch.Completion.Exception!.InnerException);
        Assert.Equal(0, ch.Count);
    }

    [Fact]
    public void Select_TwoReaders_AndATimeout_AndATimeoutScope()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        s.Go(async () =>
        {
            Channel<int> a = Bounded<int>(1);
            Channel<int> b = Bounded<int>(1);
            b.TrySend(7);
            Assert.Equal(1, await Select.WaitAsync(a.ReceiveCase(), b.ReceiveCase()));
            Assert.Equal(0, a.Count + b.Count); // exactly one case fired; a kept nothing it did not have

            Channel<int> ch = Unbuffered<int>();
            TimeSpan timeout = TimeSpan.FromSeconds(1);
            Assert.Equal(-1, await Select.WaitAsync(timeout, ch.ReceiveCase()));

            await Assert.ThrowsAsync<TaskletTimeoutException>(async () =>
            {
                using (Tasklet.Timeout(timeout))
                {
                    await ch.ReceiveAsync();
                }
            });
        });
        Assert.False(s.RunFor(TimeSpan.FromSeconds(30)));
    }

    [Fact]
    public async Task Bridges_StcCodeReadsAndWritesATaskletsChannel()
    {
        Channel<int> ch = Unbuffered<int>();
        Stc.ChannelReader<int> reader = ch.AsChannelReader();
        Stc.ChannelWriter<int> writer = ch.AsChannelWriter();

        // Unbuffered: a blocked sender makes the channel readable, and WaitToReadAsync takes nothing.
        Task send = writer.WriteAsync(5).AsTask();
        Assert.True(await reader.WaitToReadAsync().AsTask().WaitAsync(RunningScheduler.Guard));
        Assert.False(send.IsCompleted);
        Assert.True(reader.TryRead(out int item));
        Assert.Equal(5, item);
        await send.WaitAsync(RunningScheduler.Guard);

        var ex = new FormatException("bad input");
        Assert.True(writer.TryComplete(ex)); // Close(ex)
        Assert.False(writer.TryComplete());
        Assert.True(ch.IsClosed);
        Assert.Same(ex, await Assert.ThrowsAsync<FormatException>(async () => await reader.WaitToReadAsync()));
        var closed = await Assert.ThrowsAsync<Stc.ChannelClosedException>(async () => await reader.ReadAsync());
        Assert.Same(ex, closed.InnerException);
    }

    [Fact]
    public async Task Bridges_TaskletsReadAnStcChannelThroughAView_AndWriteOneByAwaitingItsWriter()
    {
        Stc.Channel<int> stc = Stc.Channel.CreateUnbounded<int>();
        for (int i = 1; i <= 100; i++)
        {
            Assert.True(stc.Writer.TryWrite(i));
        }

        stc.Writer.Complete();
        Stc.ChannelReader<int> reader = stc.Reader;
        Stc.Channel<int> results = Stc.Channel.CreateUnbounded<int>();
        Stc.ChannelWriter<int> writer = results.Writer;
        int sum = 0;
        var run = Task.Run(() => Scheduler.Run(async () =>
        {
            Channel<int> ch = reader.AsTaskletChannel();
            await foreach (var x in ch) // ends when the reader completes: every item came through once
            {
                sum += x;
                await writer.WriteAsync(x);
            }
        }));
        await run.WaitAsync(RunningScheduler.Guard);
        Assert.Equal(5050, sum);
        writer.Complete();
        int copied = 0;
        await foreach (int x in results.Reader.ReadAllAsync())
        {
            copied += x;
        }

        Assert.Equal(5050, copied);
    }
}
