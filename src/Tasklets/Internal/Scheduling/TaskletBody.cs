using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// What the library's own async method builder (<see cref="TaskletTaskMethodBuilder"/>) does for a tasklet body: the
/// start claim, the box the suspended body lives in, and the two ways it is resumed.
/// </summary>
/// <remarks>
/// <para><b>Start.</b> The scheduler marks the tasklet it is starting (<see cref="Scheduler.RunBodyStart"/>); the
/// builder's Start takes that mark, so an <c>async TaskletTask</c> method called anywhere else finds none and throws.</para>
/// <para><b>Suspension.</b> On the first await that does not complete at once, the state machine is copied into a
/// <see cref="TaskletBox{TStateMachine}"/>, once per body. An await of a library operation on the tasklet's own waiter
/// stores the box in the waiter (<see cref="TaskletWaiter.TryAwaitFromBody"/>), and the scheduler's wake-up of the
/// tasklet resumes it directly. Any other awaiter gets <see cref="TaskletBodyBox.ForeignContinuation"/>, which resumes
/// the body only as a step of its tasklet: the body never runs off its scheduler, even after
/// <c>ConfigureAwait(false)</c>.</para>
/// <para><b>Context.</b> The thread's <see cref="ExecutionContext"/> at the suspension is the body's; a resume installs it
/// only when it is not the scheduler's loop context (the one every step leaves behind), and gives the loop context back
/// if the step changed it. That keeps AsyncLocal values as an ordinary async method sees them, at the cost of one
/// thread-static read per suspension and one per resumption instead of <c>ExecutionContext.RunInternal</c> per step.</para>
/// </remarks>
internal static class TaskletBody
{
    /// <summary>The tasklet whose start is running this body; throws if the method is not being started as a tasklet body.</summary>
    public static Tasklet ClaimStart(string taskType)
        => Scheduler.CurrentOrNull?.TakeBodyStart()
            ?? throw new InvalidOperationException(Strings.TaskletTaskOutsideBody(taskType));

    /// <summary>The tasklet of a builder whose owner field is the tasklet (not suspended yet) or its box.</summary>
    public static Tasklet OwnerOf(object? owner)
        => owner as Tasklet ?? (owner as TaskletBodyBox)?.Owner ?? throw new InvalidOperationException(Strings.TaskletTaskOutsideBody(nameof(TaskletTask)));

    public static void SetStateMachine(IAsyncStateMachine stateMachine)
    {
        // The compiler calls it only for builders of class state machines that box themselves; this one boxes the
        // state machine itself, as the runtime's builders do, so there is nothing to record.
        ArgumentNullException.ThrowIfNull(stateMachine);
    }

    /// <summary>The body's box, created at its first suspension; records the thread's ExecutionContext as the body's.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TaskletBodyBox Box<TStateMachine>(ref object? owner, ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        // Exact-type test: the owner field holds either the tasklet or this body's own box, whose type is known here.
        if (owner is not TaskletBox<TStateMachine> box)
        {
            box = CreateBox(ref owner, ref stateMachine);
        }

        box.Owner._context = ExecutionContext.Capture(); // the body's, kept in its tasklet (see Tasklet._context)
        return box;
    }

    private static TaskletBox<TStateMachine> CreateBox<TStateMachine>(ref object? owner, ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        var box = new TaskletBox<TStateMachine> { Owner = OwnerOf(owner) };
        // Before the copy: the builder inside the boxed state machine must already point at its box, so that its
        // later awaits and its completion find it (a class state machine shares the field, a struct copies it).
        owner = box;
        box.StateMachine = stateMachine;
        return box;
    }

    /// <summary>AwaitUnsafeOnCompleted for both builders.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void AwaitUnsafe<TAwaiter, TStateMachine>(ref object? owner, ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
    {
        TaskletBodyBox box = Box(ref owner, ref stateMachine);
        // The library's awaiters: the box itself goes to the tasklet's waiter, and the wake-up resumes it directly; no
        // delegate is made (64 B per tasklet). The type test is decided when the method is compiled for a struct
        // awaiter; the field read costs one load. Any other awaiter (or a library one that declines: an op of another
        // tasklet, a completed or faulted one) gets the foreign continuation, which resumes the body only as a step of
        // its tasklet. Called through a delegate, not an interface on the awaiter: an interface call on a struct
        // awaiter boxes it (32 B per await) until the JIT's optimising tier removes the box.
        if (default(TAwaiter) is not null && BodyAwaiter<TAwaiter>.TryAwait is { } fast && fast(ref awaiter, box))
        {
            return;
        }

        awaiter.UnsafeOnCompleted(box.ForeignContinuation);
    }
}

/// <summary>
/// The body builder's fast path for one awaiter type: set by the static constructors of the library's awaiters
/// (<see cref="TaskletOp.Awaiter"/>, <see cref="TaskletOp{T}.Awaiter"/>), null for any other type.
/// </summary>
/// <remarks>
/// Read without synchronisation: a reference is read whole, and the awaiter's static constructor has completed on any
/// thread that constructed an instance (the runtime guarantees it before the instance constructor runs). A thread that
/// read null anyway (an awaiter copied from another thread before its type was initialised here) takes the foreign
/// continuation, which is correct too, only slower.
/// </remarks>
/// <typeparam name="TAwaiter">The awaiter type.</typeparam>
internal static class BodyAwaiter<TAwaiter>
{
    /// <summary>Stores the suspended body in the awaited op's waiter if that op is its tasklet's and pending; false otherwise.</summary>
    public static TryAwaitFromBody? TryAwait;

    /// <summary>The fast path's shape: the awaiter by reference (no copy), the box of the suspending body.</summary>
    public delegate bool TryAwaitFromBody(ref TAwaiter awaiter, TaskletBodyBox box);
}

/// <summary>A suspended tasklet body: the compiler's state machine, boxed once per body (see <see cref="TaskletBody"/>).</summary>
internal abstract class TaskletBodyBox
{
    private static readonly SendOrPostCallback s_resume = static s => ((TaskletBodyBox)s!).Resume();

    /// <summary>The tasklet this body belongs to.</summary>
    public Tasklet Owner = null!;

    /// <summary>The continuation given to foreign awaiters: it resumes the body only as a step of its tasklet.</summary>
    /// <remarks>Kept in the tasklet's cold state, made at the first foreign await: most bodies never make one.</remarks>
    public Action ForeignContinuation => Owner.Cold.BodyForeignContinuation ??= OnForeignCompleted;

    /// <summary>
    /// Resumes the body. Scheduler thread, in a step of <see cref="Owner"/>: from its waiter's wake-up, or from a
    /// foreign continuation run there.
    /// </summary>
    public void Resume()
    {
        // Between steps the thread holds the scheduler's loop context: every step gives it back (RunPosted, the
        // runtime's boxes through RunInternal, and this method below). So the body's is installed only if it differs.
        ExecutionContext? loop = Owner.Scheduler.LoopContext;
        ExecutionContext? context = Owner._context;
        if (context is not null && !ReferenceEquals(context, loop))
        {
            ExecutionContext.Restore(context);
        }

        MoveNext();

        // The step may have set AsyncLocals (or installed the body's context above): the next step must not see them.
        if (loop is not null && !ReferenceEquals(ExecutionContext.Capture(), loop))
        {
            ExecutionContext.Restore(loop);
        }
    }

    /// <summary>The state machine type, for Dump's method names.</summary>
    public abstract Type StateMachineType { get; }

    private protected abstract void MoveNext();

    private void OnForeignCompleted()
    {
        Tasklet owner = Owner;
        // In a step of the owner (a continuation posted through the tasklet's SynchronizationContext, or one the
        // awaiter ran inline during the suspension): resume now. Anywhere else (a thread-pool thread after
        // ConfigureAwait(false), another scheduler's thread, another tasklet's step): as a step of the owner, posted
        // to its scheduler, so that the body never runs off its scheduler. Only one thread runs a scheduler at a
        // time, and Current is that thread's, so the test cannot see another thread's step.
        if (ReferenceEquals(Tasklet.CurrentOrNull, owner))
        {
            Resume();
        }
        else
        {
            owner.Scheduler.Post(owner, s_resume, this);
        }
    }
}

/// <summary>The box of one body's state machine.</summary>
/// <typeparam name="TStateMachine">The compiler's state machine.</typeparam>
internal sealed class TaskletBox<TStateMachine> : TaskletBodyBox
    where TStateMachine : IAsyncStateMachine
{
    /// <summary>The state machine (a copy of the struct, or the class instance in Debug builds).</summary>
    public TStateMachine StateMachine = default!;

    public override Type StateMachineType => typeof(TStateMachine);

    private protected override void MoveNext() => StateMachine.MoveNext();
}
