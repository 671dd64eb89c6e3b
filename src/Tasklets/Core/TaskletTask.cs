using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// The return type of an <c>async</c> tasklet body: <c>Tasklet.Go(async () =&gt; { ... })</c> binds its lambda to it,
/// with no change to the lambda, so that the body runs on the library's own async method builder instead of the
/// compiler's default one.
/// </summary>
/// <remarks>
/// <para>Valid only as a tasklet body: the scheduler starts it and resumes it directly, keeping the body's
/// <see cref="ExecutionContext"/> across its awaits (AsyncLocal values flow as they do in an ordinary async method).
/// An <c>async TaskletTask</c> method called any other way throws <see cref="InvalidOperationException"/> when it is
/// called. Write helper methods as ordinary <c>async Task</c> or <c>async ValueTask</c> methods.</para>
/// <para>It cannot be awaited and carries nothing: the tasklet is the handle (<c>await tasklet</c> joins it).</para>
/// </remarks>
[AsyncMethodBuilder(typeof(TaskletTaskMethodBuilder))]
public readonly struct TaskletTask
{
}

/// <summary>
/// The return type of an <c>async</c> tasklet body that produces a result: <c>Tasklet.Go(async () =&gt; 42)</c> binds
/// to it; see <see cref="TaskletTask"/>. The result is the tasklet's (<see cref="Tasklet{T}.Result"/>,
/// <c>await tasklet</c>).
/// </summary>
/// <typeparam name="T">The result type.</typeparam>
[AsyncMethodBuilder(typeof(TaskletTaskMethodBuilder<>))]
public readonly struct TaskletTask<T>
{
}

/// <summary>The async method builder of <see cref="TaskletTask"/>, used by the compiler; not meant to be called by user code.</summary>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct TaskletTaskMethodBuilder
{
    // The tasklet until the body first suspends, its box afterwards (TaskletBody.Box).
    private object? _owner;

    /// <summary>Creates a builder.</summary>
    /// <returns>The builder.</returns>
    public static TaskletTaskMethodBuilder Create() => default;

    /// <summary>The task-like value the body returns (it carries nothing).</summary>
    [SuppressMessage("Performance", "CA1822", Justification = "The compiler calls the builder's members on an instance.")]
    public readonly TaskletTask Task => default;

    /// <summary>Starts the body: only the scheduler's start of a tasklet may.</summary>
    /// <typeparam name="TStateMachine">The compiler's state machine.</typeparam>
    /// <param name="stateMachine">The state machine.</param>
    /// <exception cref="InvalidOperationException">The method was not called as a tasklet body.</exception>
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        _owner = TaskletBody.ClaimStart(nameof(TaskletTask));
        stateMachine.MoveNext();
    }

    /// <summary>Not used by the library's builder.</summary>
    /// <param name="stateMachine">The state machine.</param>
    [SuppressMessage("Performance", "CA1822", Justification = "The compiler calls the builder's members on an instance.")]
    public readonly void SetStateMachine(IAsyncStateMachine stateMachine) => TaskletBody.SetStateMachine(stateMachine);

    /// <summary>The body returned.</summary>
    public readonly void SetResult() => TaskletBody.OwnerOf(_owner).SetBodyCompleted(System.Threading.Tasks.Task.CompletedTask);

    /// <summary>The body threw.</summary>
    /// <param name="exception">What it threw.</param>
    public readonly void SetException(Exception exception) => TaskletBody.OwnerOf(_owner).SetBodyFailed(exception);

    /// <summary>Suspends the body on an awaiter that flows the ExecutionContext itself.</summary>
    /// <typeparam name="TAwaiter">The awaiter.</typeparam>
    /// <typeparam name="TStateMachine">The state machine.</typeparam>
    /// <param name="awaiter">The awaiter.</param>
    /// <param name="stateMachine">The state machine.</param>
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => awaiter.OnCompleted(TaskletBody.Box(ref _owner, ref stateMachine).ForeignContinuation);

    /// <summary>Suspends the body.</summary>
    /// <typeparam name="TAwaiter">The awaiter.</typeparam>
    /// <typeparam name="TStateMachine">The state machine.</typeparam>
    /// <param name="awaiter">The awaiter.</param>
    /// <param name="stateMachine">The state machine.</param>
    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => TaskletBody.AwaitUnsafe(ref _owner, ref awaiter, ref stateMachine);
}

/// <summary>The async method builder of <see cref="TaskletTask{T}"/>, used by the compiler; not meant to be called by user code.</summary>
/// <typeparam name="T">The result type.</typeparam>
[EditorBrowsable(EditorBrowsableState.Never)]
public struct TaskletTaskMethodBuilder<T>
{
    private object? _owner;

    /// <summary>Creates a builder.</summary>
    /// <returns>The builder.</returns>
    public static TaskletTaskMethodBuilder<T> Create() => default;

    /// <summary>The task-like value the body returns (it carries nothing: the result goes to the tasklet).</summary>
    [SuppressMessage("Performance", "CA1822", Justification = "The compiler calls the builder's members on an instance.")]
    public readonly TaskletTask<T> Task => default;

    /// <summary>Starts the body: only the scheduler's start of a tasklet may.</summary>
    /// <typeparam name="TStateMachine">The compiler's state machine.</typeparam>
    /// <param name="stateMachine">The state machine.</param>
    /// <exception cref="InvalidOperationException">The method was not called as a tasklet body.</exception>
    public void Start<TStateMachine>(ref TStateMachine stateMachine)
        where TStateMachine : IAsyncStateMachine
    {
        _owner = TaskletBody.ClaimStart(nameof(TaskletTask<T>) + "<T>");
        stateMachine.MoveNext();
    }

    /// <summary>Not used by the library's builder.</summary>
    /// <param name="stateMachine">The state machine.</param>
    [SuppressMessage("Performance", "CA1822", Justification = "The compiler calls the builder's members on an instance.")]
    public readonly void SetStateMachine(IAsyncStateMachine stateMachine) => TaskletBody.SetStateMachine(stateMachine);

    /// <summary>The body returned <paramref name="result"/>.</summary>
    /// <param name="result">The result.</param>
    public readonly void SetResult(T result) => TaskletBody.OwnerOf(_owner).SetBodyCompleted(System.Threading.Tasks.Task.FromResult(result));

    /// <summary>The body threw.</summary>
    /// <param name="exception">What it threw.</param>
    public readonly void SetException(Exception exception) => TaskletBody.OwnerOf(_owner).SetBodyFailed<T>(exception);

    /// <summary>Suspends the body on an awaiter that flows the ExecutionContext itself.</summary>
    /// <typeparam name="TAwaiter">The awaiter.</typeparam>
    /// <typeparam name="TStateMachine">The state machine.</typeparam>
    /// <param name="awaiter">The awaiter.</param>
    /// <param name="stateMachine">The state machine.</param>
    public void AwaitOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : INotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => awaiter.OnCompleted(TaskletBody.Box(ref _owner, ref stateMachine).ForeignContinuation);

    /// <summary>Suspends the body.</summary>
    /// <typeparam name="TAwaiter">The awaiter.</typeparam>
    /// <typeparam name="TStateMachine">The state machine.</typeparam>
    /// <param name="awaiter">The awaiter.</param>
    /// <param name="stateMachine">The state machine.</param>
    public void AwaitUnsafeOnCompleted<TAwaiter, TStateMachine>(ref TAwaiter awaiter, ref TStateMachine stateMachine)
        where TAwaiter : ICriticalNotifyCompletion
        where TStateMachine : IAsyncStateMachine
        => TaskletBody.AwaitUnsafe(ref _owner, ref awaiter, ref stateMachine);
}
