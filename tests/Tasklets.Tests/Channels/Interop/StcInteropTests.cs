using Tasklets.Tests.Infrastructure;
using Xunit;
using Stc = System.Threading.Channels;

namespace Tasklets.Tests.Channels.Interop;

/// <summary>
/// The STC adapters where Tasklets adds to STC's contract: tasklets that use them (kill, deadlock detection), the
/// readiness waits that a select's registrations wake, and a differential run against STC's own channels.
/// </summary>
public class StcInteropTests
{
    private static readonly TimeSpan s_guard = RunningScheduler.Guard;

    [Fact]
    public void WaitToReadAsync_SelectParksASendCase_WaiterIsWokenAndTheItemStaysForTryRead()
    {
        // A select's registration is queued under the select's locks: the readiness wait it makes ready is woken from
        // the thread pool after they are released.
        var c = new Channel<int>();
        Stc.ChannelReader<int> reader = c.AsChannelReader();
        ValueTask<bool> wait = reader.WaitToReadAsync();
        Assert.False(wait.IsCompleted);
        using var s = new Scheduler();
        int fired = -2;
        s.Go(async () => fired = await Select.WaitAsync(c.SendCase(5)));
        s.RunUntilIdle();
        Assert.True(((IAsyncResult)wait.AsTask()).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the readiness wait was never woken");
        Assert.True(reader.TryRead(out int item));
        Assert.Equal(5, item);
        s.RunUntilIdle();
        Assert.Equal(0, fired);
    }

    [Fact]
    public void WaitToReadAsync_SelectTryBuffersAnItem_WaiterIsWoken()
    {
        var c = new Channel<int>(4);
        Stc.ChannelReader<int> reader = c.AsChannelReader();
        ValueTask<bool> wait = reader.WaitToReadAsync();
        Assert.False(wait.IsCompleted);
        Assert.Equal(0, Select.Try(c.SendCase(9)));
        Assert.True(((IAsyncResult)wait.AsTask()).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the readiness wait was never woken");
        Assert.True(reader.TryRead(out int item));
        Assert.Equal(9, item);
    }

    [Fact]
    public void WaitToWriteAsync_SelectParksAReceiveCase_WaiterIsWoken()
    {
        var c = new Channel<int>();
        Stc.ChannelWriter<int> writer = c.AsChannelWriter();
        ValueTask<bool> wait = writer.WaitToWriteAsync();
        Assert.False(wait.IsCompleted);
        using var s = new Scheduler();
        ReceiveCase<int> rc = c.ReceiveCase();
        s.Go(async () => await Select.WaitAsync(rc));
        s.RunUntilIdle();
        Assert.True(((IAsyncResult)wait.AsTask()).AsyncWaitHandle.WaitOne(s_guard), "hang guard: the readiness wait was never woken");
        Assert.True(writer.TryWrite(3));
        s.RunUntilIdle();
        Assert.Equal(3, rc.Value);
    }

    [Fact]
    public void ReadAsync_InATasklet_KilledWhileWaiting_TakesNothing()
    {
        var c = new Channel<int>();
        Stc.ChannelReader<int> reader = c.AsChannelReader();
        using var s = new Scheduler();
        Exception? caught = null;
        Tasklet t = s.Go(async () => caught = await Record.ExceptionAsync(async () => await reader.ReadAsync()));
        s.RunUntilIdle();
        Assert.Equal(-1, c.Balance); // a library wait of the tasklet, parked on the channel
        t.Kill();
        s.RunUntilIdle();
        Assert.IsType<TaskletExitException>(caught);
        Assert.Equal(0, c.Balance);
        Assert.False(c.AsChannelWriter().TryWrite(1)); // nobody waits: the killed read took nothing
    }

    [Fact]
    public void WaitToReadAsync_InATasklet_ShowsInDump()
    {
        var c = new Channel<int> { Name = "events" };
        using var s = new Scheduler();
        s.Go(async () => await c.AsChannelReader().WaitToReadAsync(), "watcher");
        s.Go(async () => await c.AsChannelWriter().WaitToWriteAsync(), "feeder");
        s.RunUntilIdle();
        string dump = s.Dump();
        Assert.Contains("wait to receive on channel 'events'", dump, StringComparison.Ordinal);
        Assert.Contains("wait to send on channel 'events'", dump, StringComparison.Ordinal);
        Assert.Equal((1, 1), c.CountReadinessWaits());
        c.Close();
        s.RunUntilIdle();
        Assert.Equal((0, 0), c.CountReadinessWaits());
    }

    // ---------------------------------------------------------------- differential: the same script on STC and on the adapters

    public static TheoryData<int, int> Scripts()
    {
        var data = new TheoryData<int, int>();
        foreach (int capacity in new[] { 0, 1, 3, -1 })
        {
            for (int seed = 1; seed <= 25; seed++)
            {
                data.Add(capacity, seed);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Scripts))]
    public void Differential_SeededScript_AdaptersObserveWhatStcChannelsObserve(int capacity, int seed)
    {
        Stc.Channel<int> stc = capacity < 0
            ? Stc.Channel.CreateUnbounded<int>()
            : Stc.Channel.CreateBounded<int>(new Stc.BoundedChannelOptions(capacity) { FullMode = Stc.BoundedChannelFullMode.Wait });
        Channel<int> ours = capacity < 0 ? Channel<int>.CreateUnbounded() : new Channel<int>(capacity);
        List<string> expected = RunScript(stc.Reader, stc.Writer, seed);
        List<string> actual = RunScript(ours.AsChannelReader(), ours.AsChannelWriter(), seed);
        for (int i = 0; i < Math.Min(expected.Count, actual.Count); i++)
        {
            Assert.True(expected[i] == actual[i], $"capacity {capacity}, seed {seed}, step {i}: STC saw '{expected[i]}', the adapter '{actual[i]}'");
        }

        Assert.Equal(expected.Count, actual.Count);
    }

    // Only synchronous observations, from one thread: which operations complete at once, with what, and when pending
    // ones complete (checked after every step, in the order they were started). A pending operation is watched through
    // its ValueTask's own status (AsTask's task would complete later, from the thread pool, on both sides).
    private static List<string> RunScript(Stc.ChannelReader<int> reader, Stc.ChannelWriter<int> writer, int seed)
    {
        var random = new Random(seed);
        var trace = new List<string>();
        var pending = new List<Pending>();
        int next = 1;
        for (int step = 0; step < 60; step++)
        {
            int op = random.Next(100);
            string seen = op switch
            {
                < 20 => $"TryWrite {next} {writer.TryWrite(next++)}",
                < 38 => reader.TryRead(out int item) ? $"TryRead {item}" : "TryRead none",
                < 48 => Start(new Pending("WaitToRead", reader.WaitToReadAsync())),
                < 56 => Start(new Pending("WaitToWrite", writer.WaitToWriteAsync())),
                < 68 => Start(new Pending("Read", reader.ReadAsync())),
                < 80 => Start(new Pending($"Write {next}", writer.WriteAsync(next++))),
                < 88 => $"Count {reader.Count}",
                < 90 => $"TryComplete {writer.TryComplete(step % 2 == 0 ? null : new FormatException("e"))}",
                _ => $"Completion {Describe(reader.Completion)}",
            };
            trace.Add(seen);
            for (int i = 0; i < pending.Count; i++)
            {
                if (pending[i].IsCompleted)
                {
                    trace.Add($"  {pending[i].Name} -> {pending[i].Outcome()}");
                    pending.RemoveAt(i--);
                }
            }
        }

        trace.Add($"left pending: {string.Join(", ", pending.Select(p => p.Name))}");
        return trace;

        string Start(Pending operation)
        {
            if (operation.IsCompleted)
            {
                return $"{operation.Name} -> {operation.Outcome()}";
            }

            pending.Add(operation);
            return $"{operation.Name} pending";
        }
    }

    /// <summary>An operation of the script: its ValueTask, asked for its status without consuming it, and consumed once.</summary>
    private sealed class Pending
    {
        private readonly Func<bool> _isCompleted;
        private readonly Func<string> _result;

        public Pending(string name, ValueTask<bool> task)
            : this(name, () => task.IsCompleted, () => $"ok {task.Result}")
        {
        }

        public Pending(string name, ValueTask<int> task)
            : this(name, () => task.IsCompleted, () => $"ok {task.Result}")
        {
        }

        public Pending(string name, ValueTask task)
            : this(name, () => task.IsCompleted, () =>
            {
                task.GetAwaiter().GetResult();
                return "ok";
            })
        {
        }

        private Pending(string name, Func<bool> isCompleted, Func<string> result)
        {
            Name = name;
            _isCompleted = isCompleted;
            _result = result;
        }

        public string Name { get; }

        public bool IsCompleted => _isCompleted();

        public string Outcome()
        {
            try
            {
                return _result();
            }
            catch (OperationCanceledException)
            {
                return "canceled";
            }
            catch (Exception e)
            {
                return $"faulted {e.GetType().Name}:{e.InnerException?.GetType().Name}";
            }
        }
    }

    private static string Describe(Task task) => task switch
    {
        { IsCompletedSuccessfully: true } => "ok",
        { IsCanceled: true } => "canceled",
        { IsFaulted: true } => $"faulted {task.Exception!.InnerException!.GetType().Name}",
        _ => "pending",
    };
}

/// <summary>Deadlock detection sees a tasklet parked in an adapter's readiness wait like any library wait.</summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class StcInteropDeadlockTests
{
    [Fact]
    public void WaitToReadAsync_InATasklet_NobodyWrites_DeadlockIsReportedNamingTheWait()
    {
        // Under a Seed the program is a closed world: the channel made before Run is not reachable from outside.
        var c = new Channel<int> { Name = "never" };
        Exception? failure = null;
        var runner = new Thread(() => failure = Record.Exception(() =>
            Scheduler.Run(async () => await c.AsChannelReader().WaitToReadAsync(), new SchedulerOptions { Seed = 2 })))
        {
            IsBackground = true,
        };
        runner.Start();
        Assert.True(runner.Join(RunningScheduler.Guard), "hang guard: Run() did not return (a missed deadlock)");
        DeadlockException deadlock = Assert.IsType<DeadlockException>(failure);
        Assert.Contains("wait to receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }
}
