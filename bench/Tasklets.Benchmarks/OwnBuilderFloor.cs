using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Tasklets.Benchmarks;

/// <summary>
/// The floor of issue 17's design: the same one-thread handoff as <see cref="MiniScheduler"/>, but the coroutine
/// bodies are built by an own async method builder (<see cref="FloorTask"/>) and await an own struct awaiter, and the
/// run queue holds the bodies' boxes, which the loop resumes directly (no ExecutionContext.RunInternal, no
/// IValueTaskSource, no ValueTask type tests). It is what a handoff costs once the compiler's default machinery is
/// replaced; <see cref="SuspendedBytes"/> is what one suspended method holds in either box.
/// </summary>
internal static class OwnBuilderScheduler
{
    public static void Handoff(int n)
    {
        var channel = new FloorChannel();
        _ = ConsumeAsync(channel, n);
        _ = ProduceAsync(channel, n);
        while (channel.Runnable.TryDequeue(out FloorBox? next))
        {
            next.MoveNext();
        }

        // Self-check: a handoff that stalled would otherwise just look fast.
        long expected = (long)n * (n - 1) / 2;
        if (channel.Sum != expected)
        {
            throw new InvalidOperationException("The own-builder handoff lost items.");
        }

        static async FloorTask ConsumeAsync(FloorChannel c, int count)
        {
            long sum = 0;
            for (int i = 0; i < count; i++)
            {
                sum += await c.ReceiveAsync();
            }

            c.Sum = sum;
        }

        static async FloorTask ProduceAsync(FloorChannel c, int count)
        {
            for (int i = 0; i < count; i++)
            {
                await c.SendAsync(i);
            }
        }
    }

    /// <summary>
    /// Bytes retained per suspended method, after a full collection: <paramref name="n"/> minimal async methods each
    /// suspended at one await that never completes, in the standard box (an <c>async Task</c> awaiting a ValueTask over
    /// an IValueTaskSource, which registers the box itself as the continuation's state, as HandoffFloor's bodies do) or
    /// in the own builder's box. The parker's arrays are allocated before the first reading, so only the boxes count.
    /// </summary>
    public static double SuspendedBytes(int n, bool ownBox)
    {
        var parker = new Parker(n);
        long before = GC.GetTotalMemory(forceFullCollection: true);
        for (int i = 0; i < n; i++)
        {
            if (ownBox)
            {
                _ = SuspendOwn(parker);
            }
            else
            {
                _ = SuspendStandard(parker);
            }
        }

        long after = GC.GetTotalMemory(forceFullCollection: true);
        if (parker.Count != n)
        {
            throw new InvalidOperationException($"Expected {n} suspended methods, found {parker.Count}.");
        }

        GC.KeepAlive(parker);
        return (double)(after - before) / n;

        static async Task SuspendStandard(Parker p) => await new ValueTask(p, 0);

        static async FloorTask SuspendOwn(Parker p) => await p.WaitAsync();
    }

    /// <summary>Holds what each suspended method registered, so that the boxes stay reachable; never resumes them.</summary>
    private sealed class Parker(int capacity) : IValueTaskSource
    {
        private readonly object?[] _parked = new object?[capacity];

        public int Count { get; private set; }

        public ParkAwaiter WaitAsync() => new(this);

        public void Park(object box) => _parked[Count++] = box;

        public ValueTaskSourceStatus GetStatus(short token) => ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
            => Park(state ?? continuation);

        public void GetResult(short token) => throw new InvalidOperationException("A parked method is never resumed.");
    }

    /// <summary>The awaiter of <see cref="Parker"/>: never completes; the builder hands it the box (<see cref="IFloorAwaiter"/>).</summary>
    private readonly struct ParkAwaiter(Parker parker) : ICriticalNotifyCompletion, IFloorAwaiter
    {
        public bool IsCompleted => false;

        public ParkAwaiter GetAwaiter() => this;

        public void GetResult() => throw new InvalidOperationException("A parked method is never resumed.");

        public void Park(FloorBox box) => parker.Park(box);

        public void OnCompleted(Action continuation) => throw new NotSupportedException("Awaited only by a FloorTask body.");

        public void UnsafeOnCompleted(Action continuation) => throw new NotSupportedException("Awaited only by a FloorTask body.");
    }

    /// <summary>A rendezvous channel between one producer and one consumer on one thread, with struct awaiters.</summary>
    private sealed class FloorChannel
    {
        private FloorBox? _receiver; // the parked consumer's box, or null
        private FloorBox? _sender;   // the parked producer's box, or null
        private int _item;           // the parked producer's item
        private int _received;       // the item handed to the consumer, read by its GetResult

        public Queue<FloorBox> Runnable { get; } = new();

        public long Sum { get; set; }

        public ReceiveAwaiter ReceiveAsync() => new(this);

        public SendAwaiter SendAsync(int item) => new(this, item);

        internal readonly struct ReceiveAwaiter(FloorChannel c) : ICriticalNotifyCompletion, IFloorAwaiter
        {
            public ReceiveAwaiter GetAwaiter() => this;

            // Completes at once when a producer is parked: take its item and make it runnable.
            public bool IsCompleted
            {
                get
                {
                    if (c._sender is not { } sender)
                    {
                        return false;
                    }

                    c._sender = null;
                    c._received = c._item;
                    c.Runnable.Enqueue(sender);
                    return true;
                }
            }

            public int GetResult() => c._received;

            public void Park(FloorBox box) => c._receiver = box;

            public void OnCompleted(Action continuation) => throw new NotSupportedException("Awaited only by a FloorTask body.");

            public void UnsafeOnCompleted(Action continuation) => throw new NotSupportedException("Awaited only by a FloorTask body.");
        }

        internal readonly struct SendAwaiter(FloorChannel c, int item) : ICriticalNotifyCompletion, IFloorAwaiter
        {
            public SendAwaiter GetAwaiter() => this;

            // Completes at once when the consumer is parked: hand it the item and make it runnable.
            public bool IsCompleted
            {
                get
                {
                    if (c._receiver is not { } receiver)
                    {
                        return false;
                    }

                    c._receiver = null;
                    c._received = item;
                    c.Runnable.Enqueue(receiver);
                    return true;
                }
            }

            public void GetResult()
            {
            }

            public void Park(FloorBox box)
            {
                c._sender = box;
                c._item = item;
            }

            public void OnCompleted(Action continuation) => throw new NotSupportedException("Awaited only by a FloorTask body.");

            public void UnsafeOnCompleted(Action continuation) => throw new NotSupportedException("Awaited only by a FloorTask body.");
        }
    }
}

/// <summary>An awaiter that takes the suspended body's box itself, instead of a continuation delegate.</summary>
internal interface IFloorAwaiter
{
    void Park(FloorBox box);
}

/// <summary>
/// The task-like type of the floor's coroutine bodies. It carries nothing: the bodies report through their channel, and
/// a body's exception propagates out of whoever runs it (<see cref="FloorTaskBuilder.SetException"/>).
/// </summary>
[AsyncMethodBuilder(typeof(FloorTaskBuilder))]
internal readonly struct FloorTask;

/// <summary>A suspended body: its state machine, moved to the heap at its first suspension, resumed by the loop.</summary>
internal abstract class FloorBox
{
    public abstract void MoveNext();
}

/// <summary>The box of one state-machine type: the object header, the method table and the state machine, nothing else.</summary>
internal sealed class FloorBox<TStateMachine> : FloorBox
    where TStateMachine : IAsyncStateMachine
{
    public TStateMachine StateMachine = default!;

    public override void MoveNext() => StateMachine.MoveNext();
}

/// <summary>
/// The builder the compiler uses for a <see cref="FloorTask"/> body. It runs the body on the caller's stack until its
/// first suspension, then copies the state machine into a <see cref="FloorBox{TStateMachine}"/> once and hands the box to
/// the awaiter; later suspensions reuse the box. No ExecutionContext is captured or restored: the floor runs on one
/// thread with none.
/// </summary>
internal struct FloorTaskBuilder
{
    private FloorBox? _box; // null until the first suspension; then the box this builder's state machine lives in

    public static FloorTaskBuilder Create() => default;

    public readonly FloorTask Task => default;

    public readonly void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
        => stateMachine.MoveNext();

    public readonly void SetStateMachine(IAsyncStateMachine stateMachine)
    {
        // Called by the compiler's code only for a boxed state machine of the standard builders; ours boxes itself.
    }

    public readonly void SetResult()
    {
    }

    // Nobody awaits a floor body: its failure goes to whoever resumed it (the loop, or the caller of the first step).
    public readonly void SetException(Exception exception) => System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(exception);

    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => ((IFloorAwaiter)awaiter).Park(BoxOf(ref stateMachine));

    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => ((IFloorAwaiter)awaiter).Park(BoxOf(ref stateMachine));

    private FloorBox BoxOf<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        if (_box is { } box)
        {
            return box; // already running inside its box: stateMachine is box.StateMachine
        }

        // First suspension: the state machine is still on the caller's stack. Set _box before the copy, so that the
        // copy's builder (this field, inside the state machine) knows its box at the next suspension.
        var created = new FloorBox<TStateMachine>();
        _box = created;
        created.StateMachine = stateMachine;
        return created;
    }
}
