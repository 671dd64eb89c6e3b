using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// The waiter of a party that is not a tasklet: plain async code (resumed through its captured context or the
/// thread pool, never inline on the waker's stack) or an OS thread using the blocking API (<see cref="Block"/>).
/// Pooled per thread: a thread that waits again reuses it.
/// </summary>
/// <remarks>
/// Wake and OnCompleted race (the waker may be on another thread), so both take the waiter's monitor. The
/// continuation is dispatched after the monitor is released, and nothing touches the waiter after that, so the
/// owner may reuse it as soon as it resumes.
/// </remarks>
internal sealed class ExternalWaiter : Waiter
{
    [ThreadStatic]
    private static ExternalWaiter? t_cached;

    private Action<object?>? _continuation;
    private object? _continuationState;
    private object? _capturedContext;
    private ExecutionContext? _executionContext;

    public static ExternalWaiter Rent()
    {
        ExternalWaiter? waiter = t_cached;
        if (waiter is not null)
        {
            t_cached = null;
            return waiter;
        }

        return new ExternalWaiter();
    }

    public override Tasklet? Owner => null;

    /// <summary>Called by <see cref="Waiter.EndWait"/> when a wait ended: the waiter goes back to its thread's cache.</summary>
    public void ReturnToThreadCache() => t_cached ??= this;

    public override void Wake(bool front)
    {
        Action<object?>? continuation;
        object? state, context;
        ExecutionContext? executionContext;
        lock (this)
        {
            MarkCompleted();
            continuation = _continuation;
            state = _continuationState;
            context = _capturedContext;
            executionContext = _executionContext;
            _continuation = null;
            _continuationState = null;
            _capturedContext = null;
            _executionContext = null;
            Monitor.PulseAll(this);
        }

        if (continuation is not null)
        {
            Dispatch(continuation, state, context, executionContext);
        }
    }

    /// <summary>Blocks the calling OS thread until the wait is claimed and woken.</summary>
    public void Block()
    {
        lock (this)
        {
            while (GetStatus((short)Generation) == ValueTaskSourceStatus.Pending)
            {
                Monitor.Wait(this);
            }
        }
    }

    public override void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        object? context = null;
        if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
        {
            SynchronizationContext? sc = SynchronizationContext.Current;
            if (sc is not null && sc.GetType() != typeof(SynchronizationContext))
            {
                context = sc;
            }
            else if (TaskScheduler.Current != TaskScheduler.Default)
            {
                context = TaskScheduler.Current;
            }
        }

        ExecutionContext? executionContext = (flags & ValueTaskSourceOnCompletedFlags.FlowExecutionContext) != 0
            ? ExecutionContext.Capture()
            : null;

        lock (this)
        {
            if (GetStatus(token) == ValueTaskSourceStatus.Pending)
            {
                _continuation = continuation;
                _continuationState = state;
                _capturedContext = context;
                _executionContext = executionContext;
                return;
            }
        }

        Dispatch(continuation, state, context, executionContext);
    }

    private static void Dispatch(Action<object?> continuation, object? state, object? context, ExecutionContext? executionContext)
    {
        if (executionContext is not null)
        {
            var inner = continuation;
            var innerState = state;
            continuation = _ => ExecutionContext.Run(executionContext, s => inner(s), innerState);
        }

        switch (context)
        {
            case SynchronizationContext sc:
                sc.Post(static s => { var (c, st) = ((Action<object?>, object?))s!; c(st); }, (continuation, state));
                break;
            case TaskScheduler ts:
                _ = Task.Factory.StartNew(continuation, state, CancellationToken.None, TaskCreationOptions.DenyChildAttach, ts);
                break;
            default:
                ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: false);
                break;
        }
    }
}
