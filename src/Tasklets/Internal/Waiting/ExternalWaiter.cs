using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// The waiter of a party that is not a tasklet: plain async code (resumed through its captured context or the
/// thread pool, never inline on the waker's stack) or an OS thread using the blocking API (<see cref="Block"/>);
/// also of a tasklet whose own waiter is busy with a stored, not yet awaited operation (it resumes through the
/// tasklet's context, and the tasklet knows it, so that a kill or a timeout can end it).
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

    // The tasklet that parked here because its own waiter was busy, or null; set by RentFor, cleared by Release.
    private Tasklet? _tasklet;

    /// <summary>A link for the list of waits an interrupt claimed (<see cref="Tasklet"/>'s WakeWithInterrupt); null otherwise.</summary>
    internal ExternalWaiter? NextClaimed;

    /// <summary>
    /// True for a wait of a tasklet that its interrupts must not end (a group waiting for its killed children): it is
    /// recorded with the tasklet only so that deadlock detection and Dump see it as the library wait it is. Written
    /// before the waiter joins the tasklet's list, under that list's lock, and read by interrupts under it.
    /// </summary>
    internal bool Uninterruptible { get; private set; }

    /// <summary>
    /// A waiter for <paramref name="tasklet"/> (null: plain code or an OS thread). A tasklet's is recorded with it
    /// until the wait ends, so that its interrupts reach this wait too.
    /// </summary>
    public static ExternalWaiter RentFor(Tasklet? tasklet) => RentFor(tasklet, uninterruptible: false);

    /// <summary>
    /// <see cref="RentFor(Tasklet?)"/>; with <paramref name="uninterruptible"/>, the tasklet's kills, timeouts and
    /// throws do not end the wait (see <see cref="Uninterruptible"/>).
    /// </summary>
    public static ExternalWaiter RentFor(Tasklet? tasklet, bool uninterruptible)
    {
        ExternalWaiter? waiter = t_cached;
        if (waiter is not null)
        {
            t_cached = null;
        }
        else
        {
            waiter = new ExternalWaiter();
        }

        waiter.Uninterruptible = uninterruptible; // before the list's lock publishes the waiter to interrupts
        if (tasklet is not null)
        {
            waiter._tasklet = tasklet;
            tasklet.AddExternalWait(waiter);
        }

        return waiter;
    }

    /// <inheritdoc/>
    public override bool IsAwaited
        => ReferenceEquals(Volatile.Read(ref _continuation), AsyncMethodContinuation.Delegate) || IsBodyContinuation(Volatile.Read(ref _continuationState));

    // A body on the library's builder awaits through ValueTaskAwaiter, which stores the body's continuation as the
    // state of its own invoker delegate: that is an awaited library wait too.
    private static bool IsBodyContinuation(object? state) => state is Action { Target: TaskletBodyBox };

    /// <summary>
    /// What awaits the current wait, for Dump: the async method's state machine box, or the target of another
    /// continuation; null if nothing is stored. Never locks (the fields are written under the monitor): a best-effort
    /// read of two references that may belong to neighbouring waits, never a torn value.
    /// </summary>
    internal object? AwaiterForDebugger
    {
        get
        {
            Action<object?>? continuation = Volatile.Read(ref _continuation);
            object? state = _continuationState;
            if (state is Action { Target: TaskletBodyBox body })
            {
                return body;
            }

            return ReferenceEquals(continuation, AsyncMethodContinuation.Delegate) ? state : continuation?.Target;
        }
    }

    /// <summary>Null: the wake-up goes through the captured context even when a tasklet parked here.</summary>
    public override Tasklet? Owner => null;

    /// <summary>Called by <see cref="Waiter.EndWait"/> when a wait ended: detaches from its tasklet, back to the thread's cache.</summary>
    public void Release()
    {
        if (_tasklet is { } tasklet)
        {
            _tasklet = null;
            tasklet.RemoveExternalWait(this);
        }

        t_cached ??= this;
    }

    /// <summary>
    /// Completes a yield of a tasklet whose waiter was busy: runs as a step of that tasklet on its scheduler (posted
    /// there by <see cref="Tasklet.YieldAsync"/>), so its continuation runs inline, in place of a second post.
    /// </summary>
    public void CompleteYield()
    {
        Continuation taken = CompleteAndTake();
        if (taken.Callback is null)
        {
            return; // not awaited yet: the later await completes synchronously
        }

        if (taken.ExecutionContext is null)
        {
            taken.Callback(taken.State);
        }
        else
        {
            ExecutionContext.Run(taken.ExecutionContext, s => taken.Callback(s), taken.State);
        }
    }

    public override void Wake(bool front)
    {
        Continuation taken = CompleteAndTake();
        if (taken.Callback is not null)
        {
            Dispatch(taken.Callback, taken.State, taken.Context, taken.ExecutionContext);
        }
    }

    // Claimed -> Completed, and the stored continuation (if any) taken out, under the monitor that OnCompleted takes
    // too: the two race when the waker is on another thread. A blocked OS thread is released.
    private Continuation CompleteAndTake()
    {
        lock (this)
        {
            MarkCompleted();
            var taken = new Continuation(_continuation, _continuationState, _capturedContext, _executionContext);
            _continuation = null;
            _continuationState = null;
            _capturedContext = null;
            _executionContext = null;
            Monitor.PulseAll(this);
            return taken;
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
        if (_tasklet is { } tasklet)
        {
            // A tasklet always resumes on its scheduler, as on its own waiter (which ignores ConfigureAwait(false)).
            context = tasklet._waiter;
        }
        else if ((flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0)
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
                if (_continuation is not null)
                {
                    // A second await of one pending ValueTask: storing it would drop the first continuation, whose
                    // awaiter would then never resume. Checked in Release too.
                    ThrowHelper.ThrowInvalidOperation(Strings.AwaitedTwice);
                }

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

    private readonly record struct Continuation(Action<object?>? Callback, object? State, object? Context, ExecutionContext? ExecutionContext);
}
