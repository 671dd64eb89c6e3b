using System.Runtime.CompilerServices;
using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// The waiter of one tasklet, which is also the tasklet's <see cref="SynchronizationContext"/>.
/// </summary>
/// <remarks>
/// A parked tasklet is always resumed by its scheduler: <see cref="Wake"/> queues the tasklet, and the scheduler
/// calls <see cref="Resume"/> on its own thread, which runs the stored continuation. Because the tasklet itself
/// runs on that thread, its continuation is always stored (by <see cref="OnCompleted"/>, within the same step)
/// before the scheduler can dequeue the wake-up, so no CAS is needed on the continuation. A wait is therefore
/// never reported completed to the awaiter before the scheduler resumed it (GetStatus says Pending until then).
/// Foreign awaits (Task.Delay, sockets) capture this object as the context; <see cref="Post"/> queues their
/// continuations on the same scheduler.
/// </remarks>
internal sealed class TaskletWaiter : Waiter
{
    private readonly Tasklet _tasklet;

    // Every await in an async method passes the same runtime delegate (it runs the state machine box given as the
    // state), so the waiter keeps only the state per wait; any other continuation goes to the cold state. Non-null
    // while a continuation is stored (s_nullState stands for a null state). Written by OnCompleted and read by
    // Resume, both on the scheduler thread. Saves a field per tasklet.
    private static readonly object s_nullState = new();
    private object? _continuationState;

    public TaskletWaiter(Tasklet tasklet)
    {
        _tasklet = tasklet;
    }

    public override Tasklet Owner => _tasklet;

    /// <inheritdoc/>
    public override bool IsAwaited => _continuationState is not null && ColdOrNull?.OtherContinuation is null; // scheduler thread

    public override void Wake(bool front) => _tasklet.Scheduler.MakeReady(_tasklet, front);

    /// <summary>
    /// What awaits the current wait, for Dump: the async method's state machine box, or the target of another
    /// continuation; null if nothing is stored. Never locks: from another thread a best-effort read of one reference
    /// (it may be the box of a wait that has just ended, never a torn value).
    /// </summary>
    internal object? AwaiterForDebugger
    {
        get
        {
            if (ColdOrNull?.OtherContinuation is { } other)
            {
                return other.Target;
            }

            object? state = _continuationState;
            return ReferenceEquals(state, s_nullState) ? null : state;
        }
    }

    /// <summary><see cref="Waiter.WakeFrom"/> for a tasklet: a waker on the same scheduler queues it without a thread check.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void WakeOwnerFrom(Tasklet? current, bool front)
    {
        Scheduler scheduler = _tasklet.Scheduler;
        if (current is not null && ReferenceEquals(current.Scheduler, scheduler))
        {
            scheduler.MakeReadyLocal(_tasklet, front); // the waker runs on this scheduler's thread
        }
        else
        {
            scheduler.MakeReady(_tasklet, front);
        }
    }

    /// <summary>Runs the parked continuation. Scheduler thread only, for a wake-up entry of this tasklet.</summary>
    public void Resume()
    {
        MarkCompleted();
        object? state = _continuationState;
        if (state is TaskletBodyBox body)
        {
            // Stored by TryAwaitFromBody: the body resumes with no delegate and no RunInternal in between.
            _continuationState = null;
            body.Resume();
            return;
        }

        if (state is not null)
        {
            Action<object?> continuation = AsyncMethodContinuation.Delegate;
            if (ColdOrNull is { OtherContinuation: { } other } cold)
            {
                continuation = other;
                cold.OtherContinuation = null;
            }

            _continuationState = null;
            continuation(ReferenceEquals(state, s_nullState) ? null : state);
        }

        // No continuation: the ValueTask was stored and not awaited yet; it now reports completion and the
        // later await finishes synchronously.
    }

    /// <summary>
    /// The fast path of the library's body builder: stores the suspended body itself as the continuation of the wait
    /// <paramref name="token"/>, if that wait is this tasklet's and still pending; false otherwise (the caller then takes
    /// the ordinary path, which refuses a stale or foreign await).
    /// </summary>
    /// <remarks>
    /// No race: the builder calls this in a step of the box's tasklet, on the scheduler thread (a body runs nowhere
    /// else), and a wait of this waiter becomes Completed only in <see cref="Resume"/>, on that same thread, in a later
    /// step. So "pending" cannot change between the test and the store, as in <see cref="OnCompleted"/>.
    /// </remarks>
    public bool TryAwaitFromBody(TaskletBodyBox box, short token)
    {
        if (!ReferenceEquals(box.Owner, _tasklet) || ColdOrNull?.OtherContinuation is not null || GetStatus(token) != ValueTaskSourceStatus.Pending)
        {
            return false;
        }

        _continuationState = box;
        return true;
    }

    public override void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        // Only the tasklet itself may await its operations: the continuation is stored without synchronisation
        // because it is stored and resumed on the scheduler's thread (see the remarks). Awaited by another tasklet or
        // thread, it could be lost, or run as the wrong tasklet. Checked in Release too.
        if (!ReferenceEquals(Scheduler.CurrentOrNull?.RunningTasklet, _tasklet))
        {
            AwaitedElsewhere(continuation, state, token, flags);
            return;
        }

        // The context flag is ignored on purpose: a tasklet always resumes on its own scheduler.
        if (GetStatus(token) != ValueTaskSourceStatus.Pending)
        {
            PostLate(continuation, state);
            return;
        }

        // A body on the library's builder awaiting a ValueTask of this waiter: the awaiter hands over the body's
        // foreign continuation, which would only resume the body in this tasklet's step; resume the box directly.
        if (state is Action { Target: TaskletBodyBox body } && ReferenceEquals(body.Owner, _tasklet))
        {
            _continuationState = body;
            return;
        }

        if (!ReferenceEquals(continuation, AsyncMethodContinuation.Delegate))
        {
            Cold.OtherContinuation = continuation;
        }

        _continuationState = state ?? s_nullState;
    }

    // An await outside the tasklet. Throwing from OnCompleted would surface on the thread pool (the async-method
    // builder rethrows it there) and end the process; so the awaiter is resumed at once (through its own context,
    // another tasklet's for instance, or the thread pool), and its GetResult throws (Waiter.ThrowIfNotCompleted),
    // leaving the wait to its tasklet.
    private void AwaitedElsewhere(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        MarkAwaitedElsewhere(token);
        SynchronizationContext? context = (flags & ValueTaskSourceOnCompletedFlags.UseSchedulingContext) != 0 ? SynchronizationContext.Current : null;
        if (context is not null && context.GetType() != typeof(SynchronizationContext))
        {
            context.Post(static s => { var (c, st) = ((Action<object?>, object?))s!; c(st); }, (continuation, state));
        }
        else
        {
            ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: false);
        }
    }

    // Kept out of OnCompleted: a lambda capturing its parameters would allocate its closure on every call.
    private void PostLate(Action<object?> continuation, object? state)
    {
        // Completed while nobody awaited (a stored ValueTask): run the continuation as the next step.
        _tasklet.Scheduler.Post(_tasklet, static s => ((Action)s!)(), (Action)(() => continuation(state)));
    }

    public override void Post(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        _tasklet.Scheduler.Post(_tasklet, d, state);
    }

    public override void Send(SendOrPostCallback d, object? state)
    {
        ArgumentNullException.ThrowIfNull(d);
        if (_tasklet.Scheduler.IsOwnerThread)
        {
            d(state);
            return;
        }

        throw new NotSupportedException(Strings.SendToTaskletContext);
    }

    // One context per tasklet; copies would break "same instance => same tasklet".
    public override SynchronizationContext CreateCopy() => this;
}
