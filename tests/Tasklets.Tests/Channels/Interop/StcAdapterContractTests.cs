using System.Runtime.CompilerServices;
using Tasklets.Tests.Infrastructure;
using Xunit;
using Stc = System.Threading.Channels;

namespace Tasklets.Tests.Channels.Interop;

/// <summary>
/// The System.Threading.Channels reader/writer contract, for <c>AsChannelReader()</c>/<c>AsChannelWriter()</c> over
/// every kind of Tasklets channel: the cases of dotnet/runtime's ChannelTestBase and RendezvousChannelTests, restated
/// for the adapters, run from plain code and thread-pool tasks (no tasklet), as an STC user would.
/// </summary>
public abstract class StcAdapterContractTests
{
    private static readonly TimeSpan s_guard = RunningScheduler.Guard;

    protected abstract Channel<int> Create();

    /// <summary>A Tasklets channel together with its STC faces.</summary>
    protected sealed record Pair(Channel<int> Channel, Stc.ChannelReader<int> Reader, Stc.ChannelWriter<int> Writer);

    protected Pair CreatePair()
    {
        Channel<int> c = Create();
        return new Pair(c, c.AsChannelReader(), c.AsChannelWriter());
    }

    /// <summary>A channel whose next write waits (unbuffered: always; buffered: filled); null for unbounded.</summary>
    protected Pair? CreateFullPair()
    {
        Pair p = CreatePair();
        if (p.Channel.Capacity < 0)
        {
            return null;
        }

        for (int i = 0; i < p.Channel.Capacity; i++)
        {
            Assert.True(p.Writer.TryWrite(1000 + i));
        }

        return p;
    }

    private bool BuffersItems => Create().Capacity != 0;

    private static async Task AssertCanceledAsync(Task task, CancellationToken token)
    {
        OperationCanceledException oce = await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task.WaitAsync(s_guard));
        Assert.Equal(token, oce.CancellationToken);
        Assert.True(task.IsCanceled);
    }

    private static void Wait(Task task) => Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the task did not finish");

    /// <summary>Awaits a pending operation under the hang guard: a wake-up that never comes fails the test instead of hanging it.</summary>
    protected static Task<T> Within<T>(ValueTask<T> pending) => pending.AsTask().WaitAsync(s_guard);

    /// <inheritdoc cref="Within{T}(ValueTask{T})"/>
    protected static Task Within(ValueTask pending) => pending.AsTask().WaitAsync(s_guard);

    /// <summary>The result of a ValueTask that must have completed already (never blocks).</summary>
    protected static T Done<T>(ValueTask<T> task)
    {
        Assert.True(task.IsCompleted, "the operation had not completed");
        return task.Result;
    }

    // ---------------------------------------------------------------- completion

    [Fact]
    public void Completion_SameTaskBeforeAndAfterComplete()
    {
        Pair p = CreatePair();
        Task completion = p.Reader.Completion;
        Assert.False(completion.IsCompleted);
        Assert.Same(completion, p.Reader.Completion);
        p.Writer.Complete();
        Assert.Same(completion, p.Reader.Completion);
        Assert.Equal(TaskStatus.RanToCompletion, completion.Status);
    }

    [Fact]
    public async Task Complete_WaitingReader_CompletesCompletionAndFailsTheRead()
    {
        Pair p = CreatePair();
        ValueTask<int> read = p.Reader.ReadAsync();
        Assert.False(read.IsCompleted);
        p.Writer.Complete();
        await p.Reader.Completion.WaitAsync(s_guard);
        await Assert.ThrowsAsync<Stc.ChannelClosedException>(async () => await Within(read));
    }

    [Fact]
    public void Complete_Twice_ThrowsAndTryCompleteSaysFalse()
    {
        Pair p = CreatePair();
        Assert.True(p.Writer.TryComplete());
        Assert.False(p.Writer.TryComplete());
        Assert.False(p.Writer.TryComplete(new FormatException()));
        Assert.ThrowsAny<InvalidOperationException>(() => p.Writer.Complete());
    }

    [Fact]
    public async Task TryComplete_WithErrorOrCancellation_ReachesCompletion()
    {
        Pair ok = CreatePair();
        Assert.True(ok.Writer.TryComplete());
        await ok.Reader.Completion.WaitAsync(s_guard);

        Pair failed = CreatePair();
        var error = new FormatException();
        Assert.True(failed.Writer.TryComplete(error));
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(() => failed.Reader.Completion));

        Pair canceled = CreatePair();
        using var cts = new CancellationTokenSource();
        cts.Cancel();
        Assert.True(canceled.Writer.TryComplete(new OperationCanceledException(cts.Token)));
        await AssertCanceledAsync(canceled.Reader.Completion, cts.Token);
    }

    [Fact]
    public async Task Complete_WithError_ReachesWritersAndWaitersOldAndNew()
    {
        var error = new FormatException();
        Pair? full = CreateFullPair();
        if (full is not null)
        {
            ValueTask pendingWrite = full.Writer.WriteAsync(42);
            ValueTask<bool> pendingWaitToWrite = full.Writer.WaitToWriteAsync();
            Assert.False(pendingWrite.IsCompleted);
            Assert.False(pendingWaitToWrite.IsCompleted);
            full.Writer.Complete(error);
            Assert.Same(error, (await Assert.ThrowsAsync<Stc.ChannelClosedException>(async () => await Within(pendingWrite))).InnerException);
            Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await Within(pendingWaitToWrite)));
        }

        Pair p = CreatePair();
        ValueTask<bool> waitingReader = p.Reader.WaitToReadAsync();
        p.Writer.Complete(error);
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await Within(waitingReader)));
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await p.Reader.WaitToReadAsync()));
        Assert.Same(error, await Assert.ThrowsAsync<FormatException>(async () => await p.Writer.WaitToWriteAsync()));
        Assert.Same(error, (await Assert.ThrowsAsync<Stc.ChannelClosedException>(async () => await p.Writer.WriteAsync(1))).InnerException);
        Assert.Same(error, (await Assert.ThrowsAsync<Stc.ChannelClosedException>(() => p.Reader.ReadAsync().AsTask())).InnerException);
        Assert.True(p.Reader.Completion.IsFaulted);
    }

    [Fact]
    public async Task Complete_WithCancellation_ReadsAreCanceled()
    {
        Pair p = CreatePair();
        ValueTask<int> parked = p.Reader.ReadAsync();
        p.Writer.Complete(new OperationCanceledException());
        Assert.True(p.Reader.Completion.IsCanceled);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await Within(parked));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => p.Reader.ReadAsync().AsTask());
    }

    [Fact]
    public async Task ReadAsync_AfterComplete_ThrowsStcClosed()
    {
        Pair p = CreatePair();
        Task<int> parked = p.Reader.ReadAsync().AsTask();
        Assert.False(parked.IsCompleted);
        p.Writer.Complete();
        await Assert.ThrowsAsync<Stc.ChannelClosedException>(() => parked);
        await Assert.ThrowsAsync<Stc.ChannelClosedException>(() => p.Reader.ReadAsync().AsTask());
        Assert.False(p.Reader.TryRead(out _));
        Assert.False(p.Writer.TryWrite(1));
        await Assert.ThrowsAnyAsync<InvalidOperationException>(async () => await p.Writer.WriteAsync(1));
    }

    [Fact]
    public void Count_IsTheBufferedItems()
    {
        Pair p = CreatePair();
        Assert.True(p.Reader.CanCount);
        Assert.Equal(0, p.Reader.Count);
        if (BuffersItems)
        {
            Assert.True(p.Writer.TryWrite(1));
            Assert.Equal(1, p.Reader.Count);
        }
        else
        {
            ValueTask blocked = p.Writer.WriteAsync(1);
            Assert.Equal(0, p.Reader.Count); // as STC's rendezvous channel: a blocked writer's item is not counted
            Assert.True(p.Reader.TryRead(out _));
            Assert.True(blocked.IsCompletedSuccessfully);
        }
    }

    // ---------------------------------------------------------------- WaitToReadAsync / WaitToWriteAsync

    [Fact]
    public void WaitToReadAsync_DataAvailableBefore_CompletesSynchronously()
    {
        Pair p = CreatePair();
        ValueTask write = p.Writer.WriteAsync(42);
        ValueTask<bool> wait = p.Reader.WaitToReadAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.True(Done(wait));
        Assert.Equal(BuffersItems, write.IsCompleted); // unbuffered: the writer still waits, and WaitToRead took nothing
        Assert.True(p.Reader.TryRead(out int item));
        Assert.Equal(42, item);
        Assert.True(write.IsCompletedSuccessfully);
    }

    [Fact]
    public void WaitToReadAsync_DataAvailableAfter_CompletesWhenWritten()
    {
        Pair p = CreatePair();
        ValueTask<bool> wait = p.Reader.WaitToReadAsync();
        Assert.False(wait.IsCompleted);
        ValueTask write = p.Writer.WriteAsync(42);
        Assert.True(wait.IsCompleted); // the writer's call claimed and woke the waiter before it returned
        Assert.True(Done(wait));
        Assert.True(p.Reader.TryRead(out int item));
        Assert.Equal(42, item);
        Assert.True(write.IsCompletedSuccessfully);
    }

    [Fact]
    public void WaitToReadAsync_Completed_FalseSynchronouslyOrWhenCompleted()
    {
        Pair before = CreatePair();
        before.Writer.Complete();
        ValueTask<bool> now = before.Reader.WaitToReadAsync();
        Assert.True(now.IsCompletedSuccessfully);
        Assert.False(Done(now));

        Pair after = CreatePair();
        ValueTask<bool> pending = after.Reader.WaitToReadAsync();
        Assert.False(pending.IsCompleted);
        after.Writer.Complete();
        Assert.False(Done(pending));
    }

    [Fact]
    public async Task WaitToReadAsync_CompletedWithItemsLeft_TrueUntilDrained()
    {
        if (!BuffersItems)
        {
            return;
        }

        Pair p = CreatePair();
        Assert.True(p.Writer.TryWrite(1));
        p.Writer.Complete();
        Assert.True(await p.Reader.WaitToReadAsync());
        Assert.True(p.Reader.TryRead(out _));
        Assert.False(await p.Reader.WaitToReadAsync());
    }

    [Fact]
    public void WaitToWriteAsync_Completed_False()
    {
        Pair p = CreatePair();
        p.Writer.Complete();
        ValueTask<bool> wait = p.Writer.WaitToWriteAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.False(Done(wait));
    }

    [Fact]
    public void WaitToWriteAsync_EmptyBufferingChannel_TrueSynchronously()
    {
        if (!BuffersItems)
        {
            return;
        }

        ValueTask<bool> wait = CreatePair().Writer.WaitToWriteAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.True(Done(wait));
    }

    [Fact]
    public void WaitToWriteAsync_BlockedReader_TrueSynchronously()
    {
        Pair p = CreatePair();
        ValueTask<int> reader = p.Reader.ReadAsync();
        ValueTask<bool> wait = p.Writer.WaitToWriteAsync();
        Assert.True(wait.IsCompletedSuccessfully);
        Assert.True(Done(wait));
        Assert.False(reader.IsCompleted); // it took nothing from the reader either
    }

    [Fact]
    public async Task WaitToWriteAsync_ManyWaiting_AllSatisfiedByReaders()
    {
        Pair p = CreateFullPair() ?? CreatePair();
        Task<bool>[] waits = Enumerable.Range(0, 100).Select(_ => p.Writer.WaitToWriteAsync().AsTask()).ToArray();
        Task<int>[] reads = Enumerable.Range(0, 100).Select(_ => p.Reader.ReadAsync().AsTask()).ToArray();
        Wait(Task.WhenAll(waits));
        Assert.All(waits, w => Assert.True(w.Result));
        p.Writer.Complete(); // the reads that got nothing end
        await Task.WhenAny(Task.WhenAll(reads), Task.Delay(s_guard));
        Assert.All(reads, r => Assert.True(r.IsCompleted));
    }

    [Fact]
    public async Task WaitToReadAsync_ConsecutiveWaitsThenTryRead_Succeed()
    {
        Pair p = CreatePair();
        for (int i = 0; i < 5; i++)
        {
            ValueTask<bool> wait = p.Reader.WaitToReadAsync();
            ValueTask write = p.Writer.WriteAsync(i);
            Assert.True(await Within(wait));
            Assert.True(p.Reader.TryRead(out int item));
            Assert.Equal(i, item);
            await Within(write);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task WaitToReadAsync_DataWritten_TrueWithOrWithoutToken(bool cancelable)
    {
        Pair p = CreatePair();
        using var cts = new CancellationTokenSource();
        CancellationToken token = cancelable ? cts.Token : default;
        ValueTask<bool> wait = p.Reader.WaitToReadAsync(token);
        Assert.False(wait.IsCompleted);
        ValueTask write = p.Writer.WriteAsync(42, token);
        Assert.True(await Within(wait));
        Assert.True(p.Reader.TryRead(out _));
        await Within(write);
    }

    [Fact]
    public async Task WaitToReadAsync_Canceled_IsCanceledAndLeavesNothingBehind()
    {
        Pair p = CreatePair();
        using var cts = new CancellationTokenSource();
        ValueTask<bool> wait = p.Reader.WaitToReadAsync(cts.Token);
        Assert.False(wait.IsCompleted);
        cts.Cancel();
        await AssertCanceledAsync(wait.AsTask(), cts.Token);
        ValueTask<bool> next = p.Reader.WaitToReadAsync();
        ValueTask write = p.Writer.WriteAsync(1);
        Assert.True(await Within(next));
        Assert.True(p.Reader.TryRead(out int item));
        Assert.Equal(1, item);
        await Within(write);
    }

    // ---------------------------------------------------------------- TryRead / TryWrite / ReadAsync / WriteAsync

    [Fact]
    public void TryRead_DataAvailable_Succeeds()
    {
        Pair p = CreatePair();
        ValueTask write = p.Writer.WriteAsync(42);
        Assert.True(p.Reader.TryRead(out int item));
        Assert.Equal(42, item);
        Assert.True(write.IsCompletedSuccessfully);
    }

    [Fact]
    public void ManyWriteAsync_ThenManyTryRead_InOrder()
    {
        Pair p = CreatePair();
        const int N = 2000;
        var writes = new ValueTask[N];
        for (int i = 0; i < N; i++)
        {
            writes[i] = p.Writer.WriteAsync(i);
        }

        for (int i = 0; i < N; i++)
        {
            Assert.True(p.Reader.TryRead(out int item));
            Assert.Equal(i, item);
        }

        Assert.All(writes, w => Assert.True(w.IsCompletedSuccessfully));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Precanceled_EveryOperation_CanceledAtOnceTakingNothing(bool dataAvailable)
    {
        Pair p = CreatePair();
        if (dataAvailable && BuffersItems)
        {
            Assert.True(p.Writer.TryWrite(42));
        }

        var canceled = new CancellationToken(canceled: true);
        Assert.True(p.Reader.ReadAsync(canceled).IsCanceled);
        Assert.True(p.Reader.WaitToReadAsync(canceled).IsCanceled);
        Assert.True(p.Writer.WriteAsync(1, canceled).IsCanceled);
        Assert.True(p.Writer.WaitToWriteAsync(canceled).IsCanceled);
        Assert.Equal(dataAvailable && BuffersItems ? 1 : 0, p.Reader.Count);
    }

    [Fact]
    public async Task ReadAsync_ThenWriteAsync_WriteCompletesSynchronously()
    {
        Pair p = CreatePair();
        ValueTask<int> read = p.Reader.ReadAsync();
        Assert.False(read.IsCompleted);
        ValueTask write = p.Writer.WriteAsync(42);
        Assert.True(write.IsCompletedSuccessfully); // handed to the parked reader
        Assert.Equal(42, await Within(read));
    }

    [Fact]
    public async Task WriteAsync_ThenReadAsync_Succeeds()
    {
        Pair p = CreatePair();
        ValueTask write = p.Writer.WriteAsync(42);
        ValueTask<int> read = p.Reader.ReadAsync();
        Wait(Task.WhenAll(write.AsTask(), read.AsTask()));
        Assert.Equal(42, await Within(read));
    }

    [Fact]
    public async Task ReadAsync_Canceled_TakesNothingAndTheNextReaderGetsTheItem()
    {
        Pair p = CreatePair();
        for (int i = 0; i < 5; i++)
        {
            using var cts = new CancellationTokenSource();
            ValueTask<int> read = p.Reader.ReadAsync(cts.Token);
            Assert.False(read.IsCompleted);
            cts.Cancel();
            await AssertCanceledAsync(read.AsTask(), cts.Token);
        }

        for (int i = 0; i < 7; i++)
        {
            ValueTask<int> read = p.Reader.ReadAsync();
            await p.Writer.WriteAsync(i);
            Assert.Equal(i, await Within(read));
        }
    }

    [Fact]
    public async Task WriteAsync_CanceledWhileWaiting_DeliversNothing()
    {
        Pair? p = CreateFullPair();
        if (p is null)
        {
            return;
        }

        using var cts = new CancellationTokenSource();
        ValueTask first = p.Writer.WriteAsync(42);
        ValueTask second = p.Writer.WriteAsync(43, cts.Token);
        ValueTask third = p.Writer.WriteAsync(44);
        cts.Cancel();
        await AssertCanceledAsync(second.AsTask(), cts.Token);
        var got = new List<int>();
        while (got.Count < p.Channel.Capacity + 2)
        {
            got.Add(await p.Reader.ReadAsync());
        }

        Assert.DoesNotContain(43, got);
        Assert.Equal([42, 44], got.Skip(p.Channel.Capacity));
        await Within(first);
        await Within(third);
    }

    [Fact]
    public async Task ReadAsync_ManyWaitingReaders_EachGetsOneItem()
    {
        Pair p = CreatePair();
        const int N = 100;
        Task<int>[] reads = Enumerable.Range(0, N).Select(_ => p.Reader.ReadAsync().AsTask()).ToArray();
        for (int i = 0; i < N; i++)
        {
            Assert.True(p.Writer.TryWrite(i), $"TryWrite {i}: a reader waits, so the write must pair");
        }

        int[] all = await Task.WhenAll(reads).WaitAsync(s_guard);
        Assert.Equal(Enumerable.Range(0, N), all.OrderBy(x => x));
    }

    // ---------------------------------------------------------------- the ValueTask protocol

    [Fact]
    public async Task ValueTasks_AwaitedTwice_Throw()
    {
        Pair p = CreatePair();
        ValueTask<int> read = p.Reader.ReadAsync();
        Assert.True(p.Writer.TryWrite(42));
        Assert.Equal(42, await Within(read));
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().IsCompleted);
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().OnCompleted(() => { }));
        Assert.Throws<InvalidOperationException>(() => read.GetAwaiter().GetResult());

        ValueTask<bool> wait = p.Reader.WaitToReadAsync();
        Assert.True(p.Writer.TryWrite(43) || !BuffersItems);
        if (!BuffersItems)
        {
            _ = p.Writer.WriteAsync(43);
        }

        Assert.True(await Within(wait));
        Assert.Throws<InvalidOperationException>(() => wait.GetAwaiter().IsCompleted);
        Assert.Throws<InvalidOperationException>(() => wait.GetAwaiter().GetResult());
    }

    [Fact]
    public void ValueTasks_GetResultBeforeCompletion_Throws()
    {
        Assert.Throws<InvalidOperationException>(() => CreatePair().Reader.ReadAsync().GetAwaiter().GetResult());
        Assert.Throws<InvalidOperationException>(() => CreatePair().Reader.WaitToReadAsync().GetAwaiter().GetResult());
        if (CreateFullPair() is { } full)
        {
            Assert.Throws<InvalidOperationException>(() => full.Writer.WriteAsync(42).GetAwaiter().GetResult());
        }

        if (CreateFullPair() is { } full2)
        {
            Assert.Throws<InvalidOperationException>(() => full2.Writer.WaitToWriteAsync().GetAwaiter().GetResult());
        }
    }

    [Fact]
    public void ValueTasks_SecondContinuation_Throws()
    {
        ValueTaskAwaiter<int> read = CreatePair().Reader.ReadAsync().GetAwaiter();
        read.OnCompleted(() => { });
        Assert.Throws<InvalidOperationException>(() => read.OnCompleted(() => { }));

        ValueTaskAwaiter<bool> wait = CreatePair().Reader.WaitToReadAsync().GetAwaiter();
        wait.UnsafeOnCompleted(() => { });
        Assert.Throws<InvalidOperationException>(() => wait.UnsafeOnCompleted(() => { }));

        if (CreateFullPair() is { } full)
        {
            ValueTaskAwaiter write = full.Writer.WriteAsync(42).GetAwaiter();
            write.OnCompleted(() => { });
            Assert.Throws<InvalidOperationException>(() => write.OnCompleted(() => { }));
        }
    }

    public static TheoryData<bool, bool, bool, bool?> ContextCases()
    {
        var data = new TheoryData<bool, bool, bool, bool?>();
        foreach (bool readOrWait in new[] { true, false })
        {
            foreach (bool completeFirst in new[] { true, false })
            {
                foreach (bool flowContext in new[] { true, false })
                {
                    foreach (bool? captured in new bool?[] { null, false, true })
                    {
                        data.Add(readOrWait, completeFirst, flowContext, captured);
                    }
                }
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(ContextCases))]
    public async Task Reader_Continuation_ResumesOnTheCapturedContextIfAsked(bool readOrWait, bool completeFirst, bool flowContext, bool? continueOnCapturedContext)
    {
        await Task.Run(async () =>
        {
            Pair p = CreatePair();
            ValueTask<bool> vt = readOrWait ? ToBool(p.Reader.ReadAsync()) : p.Reader.WaitToReadAsync();
            var ran = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var local = new AsyncLocal<int>();
            bool onContext = false, flowed = false;
            void Continuation()
            {
                onContext = SynchronizationContext.Current is PostingContext;
                flowed = local.Value == 42;
                ran.SetResult();
            }

            if (completeFirst)
            {
                Assert.False(vt.IsCompleted);
                Write(p);
            }

            SynchronizationContext.SetSynchronizationContext(new PostingContext());
            local.Value = 42;
            if (continueOnCapturedContext is bool captured)
            {
                ConfiguredValueTaskAwaitable<bool>.ConfiguredValueTaskAwaiter awaiter = vt.ConfigureAwait(captured).GetAwaiter();
                if (flowContext)
                {
                    awaiter.OnCompleted(Continuation);
                }
                else
                {
                    awaiter.UnsafeOnCompleted(Continuation);
                }
            }
            else if (flowContext)
            {
                vt.GetAwaiter().OnCompleted(Continuation);
            }
            else
            {
                vt.GetAwaiter().UnsafeOnCompleted(Continuation);
            }

            local.Value = 0;
            SynchronizationContext.SetSynchronizationContext(null);
            if (!completeFirst)
            {
                Assert.False(vt.IsCompleted);
                Write(p);
            }

            Wait(ran.Task);
            Assert.True(vt.IsCompletedSuccessfully);
            Assert.Equal(continueOnCapturedContext != false, onContext);
            if (!completeFirst)
            {
                Assert.Equal(flowContext, flowed);
            }
        });

        // An unbuffered write waits for the reader: start it, and let the reader (or TryRead after a wait) take it.
        static void Write(Pair p)
        {
            if (!p.Writer.TryWrite(1))
            {
                _ = p.Writer.WriteAsync(1);
            }
        }

        static async ValueTask<bool> ToBool(ValueTask<int> read) => await Within(read).ConfigureAwait(false) == 1;
    }

    // ---------------------------------------------------------------- concurrency from the thread pool

    [Fact]
    public void SingleProducerSingleConsumer_ThreadPool_EveryItemInOrder()
    {
        Pair p = CreatePair();
        const int N = 20_000;
        Task producer = Task.Run(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                await p.Writer.WriteAsync(i);
            }
        });
        Task consumer = Task.Run(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                Assert.Equal(i, await p.Reader.ReadAsync());
            }
        });
        Wait(Task.WhenAll(producer, consumer));
    }

    [Fact]
    public void PingPong_TwoChannels_ThreadPool_EveryItemInOrder()
    {
        Pair a = CreatePair();
        Pair b = CreatePair();
        const int N = 10_000;
        Task left = Task.Run(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                Assert.Equal(i, await a.Reader.ReadAsync());
                await b.Writer.WriteAsync(i);
            }
        });
        Task right = Task.Run(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                await a.Writer.WriteAsync(i);
                Assert.Equal(i, await b.Reader.ReadAsync());
            }
        });
        Wait(Task.WhenAll(left, right));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 10)]
    [InlineData(10, 1)]
    [InlineData(10, 10)]
    public void ManyProducersManyConsumers_WaitToReadThenTryRead_SumConserved(int readers, int writers)
    {
        Pair p = CreatePair();
        const int N = 10_000;
        long total = 0;
        int remainingWriters = writers;
        int remainingItems = N;
        var tasks = new List<Task>();
        for (int r = 0; r < readers; r++)
        {
            tasks.Add(Task.Run(async () =>
            {
                while (await p.Reader.WaitToReadAsync())
                {
                    if (p.Reader.TryRead(out int value))
                    {
                        Interlocked.Add(ref total, value);
                    }
                }
            }));
        }

        for (int w = 0; w < writers; w++)
        {
            tasks.Add(Task.Run(async () =>
            {
                int value;
                while ((value = Interlocked.Decrement(ref remainingItems)) >= 0)
                {
                    await p.Writer.WriteAsync(value + 1);
                }

                if (Interlocked.Decrement(ref remainingWriters) == 0)
                {
                    p.Writer.Complete();
                }
            }));
        }

        Wait(Task.WhenAll(tasks));
        Assert.Equal(N * (N + 1L) / 2, total);
    }

    [Fact]
    public void ReadAllAsync_ThreadPoolWriter_ReadsEverythingThenEnds()
    {
        Pair p = CreatePair();
        const int N = 5_000;
        Task producer = Task.Run(async () =>
        {
            for (int i = 0; i < N; i++)
            {
                await p.Writer.WriteAsync(i);
            }

            p.Writer.Complete();
        });
        var got = new List<int>();
        Task consumer = Task.Run(async () =>
        {
            await foreach (int x in p.Reader.ReadAllAsync())
            {
                got.Add(x);
            }
        });
        Wait(Task.WhenAll(producer, consumer));
        Assert.Equal(Enumerable.Range(0, N), got);
    }

    [Fact]
    public async Task ReadAllAsync_CompletedWithError_ThrowsIt()
    {
        Pair p = CreatePair();
        var error = new FormatException();
        Task producer = Task.Run(async () =>
        {
            await p.Writer.WriteAsync(1);
            p.Writer.Complete(error);
        });
        var got = new List<int>();
        Exception? caught = await Record.ExceptionAsync(() => Task.Run(async () =>
        {
            await foreach (int x in p.Reader.ReadAllAsync())
            {
                got.Add(x);
            }
        }).WaitAsync(s_guard));
        Wait(producer);
        Assert.Same(error, caught);
        Assert.Equal([1], got);
    }

    private sealed class PostingContext : SynchronizationContext
    {
        public override void Post(SendOrPostCallback d, object? state)
        {
            ThreadPool.QueueUserWorkItem(_ =>
            {
                SetSynchronizationContext(this);
                try
                {
                    d(state);
                }
                finally
                {
                    SetSynchronizationContext(null);
                }
            });
        }
    }
}

public sealed class StcAdapterUnbufferedTests : StcAdapterContractTests
{
    protected override Channel<int> Create() => new();

    [Fact]
    public void TryWriteTryRead_NoPartner_BothFalse()
    {
        Pair p = CreatePair();
        for (int i = 0; i < 3; i++)
        {
            Assert.False(p.Writer.TryWrite(42));
            Assert.False(p.Reader.TryRead(out int item));
            Assert.Equal(0, item);
        }
    }

    [Fact]
    public void WaitToReadAsync_BlockedWriter_TrueAndTheWriterStillWaits()
    {
        Pair p = CreatePair();
        ValueTask write = p.Writer.WriteAsync(7);
        ValueTask<bool> wait = p.Reader.WaitToReadAsync();
        Assert.True(wait.IsCompletedSuccessfully && Done(wait)); // a waiting writer is readable
        Assert.False(write.IsCompleted); // ... and the wait did not take its item
        Assert.Equal(1, p.Channel.Balance);
        Assert.True(p.Reader.TryRead(out int item));
        Assert.Equal(7, item);
        Assert.True(write.IsCompletedSuccessfully);
    }

    [Fact]
    public async Task WaitToWriteAsync_ManyWaiting_OneParkedReaderWakesThemAll()
    {
        Pair p = CreatePair();
        ValueTask<bool> first = p.Writer.WaitToWriteAsync();
        ValueTask<bool> second = p.Writer.WaitToWriteAsync();
        Assert.False(first.IsCompleted);
        Assert.False(second.IsCompleted);
        ValueTask<int> read = p.Reader.ReadAsync();
        Assert.True(await Within(first));
        Assert.True(await Within(second));
        ValueTask<bool> third = p.Writer.WaitToWriteAsync();
        Assert.True(third.IsCompletedSuccessfully && Done(third)); // the reader still waits
        Assert.True(p.Writer.TryWrite(5));
        Assert.Equal(5, await Within(read));
    }

    [Fact]
    public void ReadAsync_Continuation_NeverRunsOnTheWriter()
    {
        Pair p = CreatePair();
        int writer = Environment.CurrentManagedThreadId;
        int ranOn = -1;
        Task read = p.Reader.ReadAsync().AsTask().ContinueWith(
            _ => ranOn = Environment.CurrentManagedThreadId,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        Assert.True(p.Writer.TryWrite(42));
        Assert.True(((IAsyncResult)read).AsyncWaitHandle.WaitOne(RunningScheduler.Guard), "hang guard");
        Assert.NotEqual(writer, ranOn);
    }
}

public sealed class StcAdapterCapacityOneTests : StcAdapterContractTests
{
    protected override Channel<int> Create() => new(1);
}

public sealed class StcAdapterBufferedTests : StcAdapterContractTests
{
    protected override Channel<int> Create() => new(10);
}

public sealed class StcAdapterUnboundedTests : StcAdapterContractTests
{
    protected override Channel<int> Create() => Channel<int>.CreateUnbounded();
}
