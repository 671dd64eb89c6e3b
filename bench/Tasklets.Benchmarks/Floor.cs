using System.Threading.Tasks.Sources;
using BenchmarkDotNet.Attributes;

namespace Tasklets.Benchmarks;

/// <summary>
/// The yardstick of DESIGN.md: a minimal hand-written handoff between two async methods on one thread (a reusable
/// IValueTaskSource per coroutine, a plain queue of runnable ones, no locks, no kill, timeout or select). It is what the
/// async machinery itself costs per item; chan_sync is measured against it. One op = one item (one switch).
/// MinimalUnbounded is the same for chan_async's shape: the producer never waits, its items go through an
/// unsynchronised, growing queue, and the consumer drains it; that is the least a chan_async item can cost here.
/// OwnBuilderHandoff is issue 17's floor, the yardstick of a design past the compiler's defaults: the same handoff with
/// an own async method builder for the bodies and an own struct awaiter, the loop resuming the bodies' boxes directly
/// (<see cref="OwnBuilderScheduler"/>). The bytes one suspended method holds in either box are the quick table's
/// (<see cref="OwnBuilderScheduler.SuspendedBytes"/>).
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class HandoffFloor
{
    private const int N = 100_000;

    [Benchmark(OperationsPerInvoke = N)]
    public void MinimalHandoff() => MiniScheduler.Handoff(N, unbounded: false);

    [Benchmark(OperationsPerInvoke = N)]
    public void MinimalUnbounded() => MiniScheduler.Handoff(N, unbounded: true);

    [Benchmark(OperationsPerInvoke = N)]
    public void OwnBuilderHandoff() => OwnBuilderScheduler.Handoff(N);

    /// <summary>One run of a floor for the quick table: n items, timed, with the bytes the run allocated.</summary>
    internal static Sample Timed(int n, Action<int> handoff)
    {
        long allocated = GC.GetAllocatedBytesForCurrentThread();
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        handoff(n);
        return new Sample(System.Diagnostics.Stopwatch.GetElapsedTime(start), GC.GetAllocatedBytesForCurrentThread() - allocated, n);
    }
}

/// <summary>The cost of a channel's lock: a System.Threading.Lock pair against one CAS and a release store (SpinGate's shape).</summary>
[ShortRunJob]
public class GateCost
{
    private const int N = 1_000_000;
    private readonly Lock _lock = new();
    private int _held;
    private long _counter;

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public long LockEnterExit()
    {
        for (int i = 0; i < N; i++)
        {
            _lock.Enter();
            _counter++;
            _lock.Exit();
        }

        return _counter;
    }

    [Benchmark(OperationsPerInvoke = N)]
    public long CasThenReleaseStore()
    {
        for (int i = 0; i < N; i++)
        {
            while (Interlocked.CompareExchange(ref _held, 1, 0) != 0)
            {
            }

            _counter++;
            Volatile.Write(ref _held, 0);
        }

        return _counter;
    }
}

/// <summary>The smallest cooperative scheduler that can hand an item from one async method to another.</summary>
internal static class MiniScheduler
{
    public static void Handoff(int n, bool unbounded)
    {
        var queue = new Queue<Coroutine>();
        var channel = new MiniChannel(queue, unbounded ? new Queue<int>() : null);
        var consumer = new Coroutine();
        var producer = new Coroutine();
        channel.Current = consumer;
        Task<long> received = ConsumeAsync(channel, n);
        channel.Current = producer;
        _ = ProduceAsync(channel, n);
        while (queue.TryDequeue(out Coroutine? next))
        {
            channel.Current = next;
            next.Resume();
        }

        // Self-check: a handoff that stalled would otherwise just look fast.
        long expected = (long)n * (n - 1) / 2;
        if (!received.IsCompletedSuccessfully || received.Result != expected)
        {
            throw new InvalidOperationException("The minimal handoff lost items.");
        }

        static async Task<long> ConsumeAsync(MiniChannel c, int count)
        {
            long sum = 0;
            for (int i = 0; i < count; i++)
            {
                sum += await c.ReceiveAsync();
            }

            return sum;
        }

        static async Task ProduceAsync(MiniChannel c, int count)
        {
            for (int i = 0; i < count; i++)
            {
                await c.SendAsync(i);
            }
        }
    }

    private sealed class Coroutine : IValueTaskSource<int>, IValueTaskSource
    {
        private Action<object?>? _continuation;
        private object? _state;
        private bool _done;

        public int Value { get; set; }

        public short Version { get; private set; }

        public void Resume()
        {
            _done = true;
            Action<object?> continuation = _continuation!;
            _continuation = null;
            continuation(_state);
        }

        public ValueTaskSourceStatus GetStatus(short token) => _done ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            _continuation = continuation;
            _state = state;
        }

        public int GetResult(short token)
        {
            _done = false;
            Version++;
            return Value;
        }

        void IValueTaskSource.GetResult(short token)
        {
            _done = false;
            Version++;
        }
    }

    // buffer: null for the rendezvous, else an unbounded buffer (then the sender never waits).
    private sealed class MiniChannel(Queue<Coroutine> queue, Queue<int>? buffer)
    {
        private Coroutine? _receiver;
        private Coroutine? _sender;
        private int _item;

        public Coroutine Current { get; set; } = null!;

        public ValueTask<int> ReceiveAsync()
        {
            if (buffer is not null && buffer.TryDequeue(out int buffered))
            {
                return new ValueTask<int>(buffered);
            }

            if (_sender is { } sender)
            {
                _sender = null;
                queue.Enqueue(sender);
                return new ValueTask<int>(_item);
            }

            _receiver = Current;
            return new ValueTask<int>(Current, Current.Version);
        }

        public ValueTask SendAsync(int item)
        {
            if (_receiver is { } receiver)
            {
                _receiver = null;
                receiver.Value = item;
                queue.Enqueue(receiver);
                return default;
            }

            if (buffer is not null)
            {
                buffer.Enqueue(item);
                return default;
            }

            _sender = Current;
            _item = item;
            return new ValueTask(Current, Current.Version);
        }
    }
}
