using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Threading.Tasks.Sources;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// The awaitable of a library operation without a result (<see cref="Channel{T}.SendAsync"/>,
/// <see cref="Tasklet.Yield"/>, <see cref="Tasklet.Checkpoint"/>): a struct shaped like <see cref="ValueTask"/>, either
/// completed synchronously (no source) or pending on the operation's reusable source and a version token.
/// </summary>
/// <remarks>
/// <para><b>Await it once.</b> Like a <see cref="ValueTask"/>, a <see cref="TaskletOp"/> may be awaited (or converted)
/// exactly once: its source is reused by the tasklet's next operation, and a second await is refused with an
/// <see cref="InvalidOperationException"/> (or, after reuse, would observe another operation). Do not store it in a
/// field, await it twice, or await it and also call <see cref="AsTask"/>; analyzers TASKLET003 and TASKLET004 flag that.</para>
/// <para><b>What converts to what.</b> It converts implicitly to <see cref="ValueTask"/> (so code typed
/// <c>ValueTask t = ch.SendAsync(x)</c> compiles unchanged), and explicitly with <see cref="AsValueTask"/>,
/// <see cref="AsTask"/> (a <see cref="Task"/> that may be awaited many times, from anywhere) and <see cref="Preserve"/>.
/// A conversion consumes the op as an await does.</para>
/// <para>Why a struct of its own rather than <see cref="ValueTask"/>: an awaiter the library owns lets the tasklet
/// body builder hand its continuation to the source directly, without <see cref="ValueTask"/>'s type tests
/// (DESIGN.md, "Performance design").</para>
/// </remarks>
public readonly struct TaskletOp
{
    // Null: completed successfully and synchronously. Otherwise the operation's source (a waiter, or a faulted source).
    private readonly IValueTaskSource? _source;
    private readonly short _token;

    /// <summary>An op pending on <paramref name="source"/> with the version <paramref name="token"/>.</summary>
    /// <param name="source">The source; null gives a completed op.</param>
    /// <param name="token">The version the source checks on every call.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal TaskletOp(IValueTaskSource? source, short token)
    {
        _source = source;
        _token = token;
    }

    /// <summary>A completed op (the same as <c>default</c>).</summary>
    public static TaskletOp CompletedOp => default;

    /// <summary>The source of a pending (or faulted) op; null when it completed synchronously. For the body builder.</summary>
    internal IValueTaskSource? Source => _source;

    /// <summary>The version token the source checks. For the body builder.</summary>
    internal short Token => _token;

    /// <summary>True when the operation has completed, successfully or not.</summary>
    public bool IsCompleted => _source is null || _source.GetStatus(_token) != ValueTaskSourceStatus.Pending;

    /// <summary>True when the operation has completed successfully.</summary>
    public bool IsCompletedSuccessfully => _source is null || _source.GetStatus(_token) == ValueTaskSourceStatus.Succeeded;

    /// <summary>An op that has failed with <paramref name="exception"/> (an <see cref="OperationCanceledException"/> reads as cancelled).</summary>
    internal static TaskletOp FromException(Exception exception) => new(new FaultedOpSource<VoidResult>(exception), 0);

    /// <summary>An op that was cancelled by <paramref name="cancellationToken"/> before it began.</summary>
    internal static TaskletOp FromCanceled(CancellationToken cancellationToken) => FromException(FaultedOpSource<VoidResult>.Canceled(cancellationToken));

    /// <summary>The same operation as a <see cref="ValueTask"/>; consumes this op (await the result once).</summary>
    /// <param name="op">The op.</param>
    public static implicit operator ValueTask(TaskletOp op) => op.AsValueTask();

    /// <summary>The same operation as a <see cref="ValueTask"/>; consumes this op (await the result once).</summary>
    /// <returns>A <see cref="ValueTask"/> over the same source and token.</returns>
    public ValueTask AsValueTask() => _source is null ? default : new ValueTask(_source, _token);

    /// <summary>
    /// The operation as a <see cref="Task"/>, which may be awaited any number of times, from anywhere. Call it from the
    /// tasklet that began the operation (its continuation is kept by that tasklet's waiter); consumes this op.
    /// </summary>
    /// <returns>A task that completes with the operation.</returns>
    public Task AsTask() => AsValueTask().AsTask();

    /// <summary>
    /// A <see cref="ValueTask"/> that may be awaited more than once (<see cref="ValueTask.Preserve"/>): this op itself
    /// when completed successfully, else a task over it. Consumes this op.
    /// </summary>
    /// <returns>The preserved <see cref="ValueTask"/>.</returns>
    public ValueTask Preserve() => _source is null ? default : AsValueTask().Preserve();

    /// <summary>
    /// <see cref="ValueTask.ConfigureAwait"/> of the same operation, for code that must configure its awaits (outside
    /// tasklets). Inside a tasklet the flag changes nothing: a tasklet always resumes on its own scheduler. Consumes this op.
    /// </summary>
    /// <param name="continueOnCapturedContext">Whether to resume on the captured context.</param>
    /// <returns>The configured awaitable.</returns>
    public ConfiguredValueTaskAwaitable ConfigureAwait(bool continueOnCapturedContext) => AsValueTask().ConfigureAwait(continueOnCapturedContext);

    /// <summary>The awaiter; <c>await</c> calls it. Await an op once.</summary>
    /// <returns>The awaiter.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Awaiter GetAwaiter() => new(_source, _token);

    /// <summary>The awaiter of a <see cref="TaskletOp"/>, as <see cref="ValueTaskAwaiter"/> is of a <see cref="ValueTask"/>.</summary>
    public readonly struct Awaiter : ICriticalNotifyCompletion
    {
        private readonly IValueTaskSource? _source;
        private readonly short _token;

        // Registers the body builder's fast path for this awaiter type (BodyAwaiter): a pending op of the body's own
        // tasklet stores the body's box in the tasklet's waiter, with no continuation delegate. An explicit static
        // constructor, so that it has run before any instance exists (an instance constructor call triggers it).
#pragma warning disable CA1810 // the registration must run before the first awaiter exists, not at first static access
        static Awaiter() => BodyAwaiter<Awaiter>.TryAwait = static (ref Awaiter awaiter, TaskletBodyBox box)
            => awaiter._source is TaskletWaiter waiter && waiter.TryAwaitFromBody(box, awaiter._token);
#pragma warning restore CA1810

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal Awaiter(IValueTaskSource? source, short token)
        {
            _source = source;
            _token = token;
        }

        /// <summary>The source of the awaited op; null when it completed synchronously. For the body builder.</summary>
        internal IValueTaskSource? Source => _source;

        /// <summary>The version token the source checks. For the body builder.</summary>
        internal short Token => _token;

        /// <summary>True when the operation has completed: the await goes on without suspending.</summary>
        public bool IsCompleted
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => _source is null || _source.GetStatus(_token) != ValueTaskSourceStatus.Pending;
        }

        /// <summary>Ends the await: returns, or throws the operation's exception. Call once.</summary>
        /// <exception cref="InvalidOperationException">The op was awaited already, or from outside its tasklet.</exception>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void GetResult() => _source?.GetResult(_token);

        /// <summary>Schedules <paramref name="continuation"/> for when the operation completes, flowing the <see cref="ExecutionContext"/>.</summary>
        /// <param name="continuation">What to run.</param>
        public void OnCompleted(Action continuation)
        {
            if (_source is null)
            {
                Task.CompletedTask.GetAwaiter().OnCompleted(continuation);
                return;
            }

            _source.OnCompleted(
                TaskletOpContinuation.InvokeAction,
                continuation,
                _token,
                ValueTaskSourceOnCompletedFlags.UseSchedulingContext | ValueTaskSourceOnCompletedFlags.FlowExecutionContext);
        }

        /// <summary>Schedules <paramref name="continuation"/> for when the operation completes, without flowing the <see cref="ExecutionContext"/>.</summary>
        /// <param name="continuation">What to run.</param>
        public void UnsafeOnCompleted(Action continuation)
        {
            if (_source is null)
            {
                Task.CompletedTask.GetAwaiter().UnsafeOnCompleted(continuation);
                return;
            }

            TaskletOpContinuation.UnsafeOnCompleted(_source, _token, continuation);
        }
    }
}

/// <summary>
/// The awaitable of a library operation with a result (<see cref="Channel{T}.ReceiveAsync"/>,
/// <see cref="Select.WaitAsync(ReadOnlySpan{SelectCase})"/>): a struct shaped like <see cref="ValueTask{TResult}"/>,
/// either completed synchronously (the result inline) or pending on the operation's reusable source and a version token.
/// </summary>
/// <typeparam name="T">The result type.</typeparam>
/// <remarks>
/// <para><b>Await it once.</b> Like a <see cref="ValueTask{TResult}"/>, a <see cref="TaskletOp{T}"/> may be awaited (or
/// converted) exactly once: its source is reused by the tasklet's next operation, and a second await is refused with an
/// <see cref="InvalidOperationException"/>. Do not store it in a field, await it twice, or await it and also call
/// <see cref="AsTask"/>; analyzers TASKLET003 and TASKLET004 flag that.</para>
/// <para><b>What converts to what.</b> It converts implicitly to <see cref="ValueTask{TResult}"/>, and explicitly with
/// <see cref="AsValueTask"/>, <see cref="AsTask"/> (a <see cref="Task{TResult}"/> that may be awaited many times, from
/// anywhere) and <see cref="Preserve"/>. A conversion consumes the op as an await does.</para>
/// </remarks>
public readonly struct TaskletOp<T>
{
    // Null: completed successfully and synchronously with _result. Otherwise the operation's source.
    private readonly IValueTaskSource<T>? _source;
    private readonly T _result;
    private readonly short _token;

    /// <summary>An op completed synchronously with <paramref name="result"/>.</summary>
    /// <param name="result">The result.</param>
    public TaskletOp(T result)
    {
        _source = null;
        _result = result;
        _token = 0;
    }

    /// <summary>An op pending on <paramref name="source"/> with the version <paramref name="token"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal TaskletOp(IValueTaskSource<T> source, short token)
    {
        _source = source;
        _result = default!;
        _token = token;
    }

    /// <summary>The source of a pending (or faulted) op; null when it completed synchronously. For the body builder.</summary>
    internal IValueTaskSource<T>? Source => _source;

    /// <summary>The version token the source checks. For the body builder.</summary>
    internal short Token => _token;

    /// <summary>True when the operation has completed, successfully or not.</summary>
    public bool IsCompleted => _source is null || _source.GetStatus(_token) != ValueTaskSourceStatus.Pending;

    /// <summary>True when the operation has completed successfully.</summary>
    public bool IsCompletedSuccessfully => _source is null || _source.GetStatus(_token) == ValueTaskSourceStatus.Succeeded;

    /// <summary>An op that has failed with <paramref name="exception"/> (an <see cref="OperationCanceledException"/> reads as cancelled).</summary>
    internal static TaskletOp<T> FromException(Exception exception) => new(new FaultedOpSource<T>(exception), 0);

    /// <summary>An op that was cancelled by <paramref name="cancellationToken"/> before it began.</summary>
    internal static TaskletOp<T> FromCanceled(CancellationToken cancellationToken) => FromException(FaultedOpSource<T>.Canceled(cancellationToken));

    /// <summary>The same operation as a <see cref="ValueTask{TResult}"/>; consumes this op (await the result once).</summary>
    /// <param name="op">The op.</param>
    public static implicit operator ValueTask<T>(TaskletOp<T> op) => op.AsValueTask();

    /// <summary>The same operation as a <see cref="ValueTask{TResult}"/>; consumes this op (await the result once).</summary>
    /// <returns>A <see cref="ValueTask{TResult}"/> with the result, or over the same source and token.</returns>
    public ValueTask<T> AsValueTask() => _source is null ? new ValueTask<T>(_result) : new ValueTask<T>(_source, _token);

    /// <summary>
    /// The operation as a <see cref="Task{TResult}"/>, which may be awaited any number of times, from anywhere. Call it
    /// from the tasklet that began the operation; consumes this op.
    /// </summary>
    /// <returns>A task that completes with the operation's result.</returns>
    public Task<T> AsTask() => AsValueTask().AsTask();

    /// <summary>
    /// A <see cref="ValueTask{TResult}"/> that may be awaited more than once (<see cref="ValueTask{TResult}.Preserve"/>):
    /// the result itself when completed successfully, else a task over the op. Consumes this op.
    /// </summary>
    /// <returns>The preserved <see cref="ValueTask{TResult}"/>.</returns>
    public ValueTask<T> Preserve() => _source is null ? new ValueTask<T>(_result) : AsValueTask().Preserve();

    /// <summary>
    /// <see cref="ValueTask{TResult}.ConfigureAwait"/> of the same operation, for code that must configure its awaits
    /// (outside tasklets). Inside a tasklet the flag changes nothing. Consumes this op.
    /// </summary>
    /// <param name="continueOnCapturedContext">Whether to resume on the captured context.</param>
    /// <returns>The configured awaitable.</returns>
    public ConfiguredValueTaskAwaitable<T> ConfigureAwait(bool continueOnCapturedContext) => AsValueTask().ConfigureAwait(continueOnCapturedContext);

    /// <summary>The awaiter; <c>await</c> calls it. Await an op once.</summary>
    /// <returns>The awaiter.</returns>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Awaiter GetAwaiter() => new(_source, _result, _token);

    /// <summary>The awaiter of a <see cref="TaskletOp{T}"/>, as <see cref="ValueTaskAwaiter{TResult}"/> is of a <see cref="ValueTask{TResult}"/>.</summary>
    public readonly struct Awaiter : ICriticalNotifyCompletion
    {
        private readonly IValueTaskSource<T>? _source;
        private readonly T _result;
        private readonly short _token;

        // Registers the body builder's fast path for this awaiter type (BodyAwaiter): a pending op of the body's own
        // tasklet stores the body's box in the tasklet's waiter, with no continuation delegate. An explicit static
        // constructor, so that it has run before any instance exists (an instance constructor call triggers it).
#pragma warning disable CA1810 // the registration must run before the first awaiter exists, not at first static access
        static Awaiter() => BodyAwaiter<Awaiter>.TryAwait = static (ref Awaiter awaiter, TaskletBodyBox box) => awaiter._source switch
        {
            TaskletWaiter waiter => waiter.TryAwaitFromBody(box, awaiter._token), // select, a receive's yield
            ValueTaskReceive<T> receive => receive.TryAwaitFromBody(box, awaiter._token), // a parked receive: its node
            _ => false,
        };
#pragma warning restore CA1810

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        internal Awaiter(IValueTaskSource<T>? source, T result, short token)
        {
            _source = source;
            _result = result;
            _token = token;
        }

        /// <summary>The source of the awaited op; null when it completed synchronously. For the body builder.</summary>
        internal IValueTaskSource<T>? Source => _source;

        /// <summary>The version token the source checks. For the body builder.</summary>
        internal short Token => _token;

        /// <summary>True when the operation has completed: the await goes on without suspending.</summary>
        public bool IsCompleted
        {
            [MethodImpl(MethodImplOptions.AggressiveInlining)]
            get => _source is null || _source.GetStatus(_token) != ValueTaskSourceStatus.Pending;
        }

        /// <summary>Ends the await: returns the result, or throws the operation's exception. Call once.</summary>
        /// <returns>The result.</returns>
        /// <exception cref="InvalidOperationException">The op was awaited already, or from outside its tasklet.</exception>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public T GetResult() => _source is null ? _result : _source.GetResult(_token);

        /// <summary>Schedules <paramref name="continuation"/> for when the operation completes, flowing the <see cref="ExecutionContext"/>.</summary>
        /// <param name="continuation">What to run.</param>
        public void OnCompleted(Action continuation)
        {
            if (_source is null)
            {
                Task.CompletedTask.GetAwaiter().OnCompleted(continuation);
                return;
            }

            _source.OnCompleted(
                TaskletOpContinuation.InvokeAction,
                continuation,
                _token,
                ValueTaskSourceOnCompletedFlags.UseSchedulingContext | ValueTaskSourceOnCompletedFlags.FlowExecutionContext);
        }

        /// <summary>Schedules <paramref name="continuation"/> for when the operation completes, without flowing the <see cref="ExecutionContext"/>.</summary>
        /// <param name="continuation">What to run.</param>
        public void UnsafeOnCompleted(Action continuation)
        {
            if (_source is null)
            {
                Task.CompletedTask.GetAwaiter().UnsafeOnCompleted(continuation);
                return;
            }

            TaskletOpContinuation.UnsafeOnCompleted(_source, _token, continuation);
        }
    }
}

/// <summary>The continuation the op awaiters pass to their source, with the awaiting <see cref="Action"/> as the state.</summary>
/// <remarks>
/// <para>The compiler's standard builders (an ordinary <c>async Task</c> method, and tasklet bodies until they have
/// their own builder) give a struct awaiter only an <see cref="Action"/>: their state machine box's MoveNext. The
/// runtime's own <see cref="ValueTaskAwaiter"/> is handed the box instead, and the waiters rely on that: they recognise
/// an async method's await by <see cref="AsyncMethodContinuation.Delegate"/> with the box as the state (deadlock
/// detection, interrupts and Dump only count such awaits). So an unsafe await whose action is a box's MoveNext passes
/// the same pair the runtime would; any other action goes through <see cref="InvokeAction"/>.</para>
/// <para>A box is recognised by the runtime's box interface, looked up once by name: should a runtime not have it, every
/// action takes the <see cref="InvokeAction"/> path, which completes as well (the waiters then treat the await as
/// foreign, as they do an <c>AsTask()</c>).</para>
/// </remarks>
internal static class TaskletOpContinuation
{
    /// <summary>
    /// Runs the <see cref="Action"/> given as the state (as <see cref="ValueTaskAwaiter"/>'s invoker does). One delegate
    /// for every op await whose action is not a state machine box's: a waiter that wants to tell such an await from a
    /// foreign continuation compares with it.
    /// </summary>
    internal static readonly Action<object?> InvokeAction = static state => ((Action)state!).Invoke();

    // The interface every state machine box of the standard builders implements; AsyncMethodContinuation.Delegate
    // accepts exactly its instances. Null if this runtime has no such type.
    private static readonly Type? s_boxInterface =
        Type.GetType("System.Runtime.CompilerServices.IAsyncStateMachineBox, System.Private.CoreLib", throwOnError: false);

    // The box type seen last: a loop awaits in the same method, so this spares the interface check. Any thread may
    // overwrite it; a reference is read and written whole, and a stale value only sends the check down the slow path.
    private static Type? s_lastBoxType;

    /// <summary>The unsafe await of an op without a result: the runtime's pair for a box, else the invoker.</summary>
    internal static void UnsafeOnCompleted(IValueTaskSource source, short token, Action continuation)
    {
        object? target = continuation.Target;
        if (target is not null && IsStateMachineBox(target))
        {
            source.OnCompleted(AsyncMethodContinuation.Delegate, target, token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
            return;
        }

        source.OnCompleted(InvokeAction, continuation, token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
    }

    /// <summary>The unsafe await of an op with a result: the runtime's pair for a box, else the invoker.</summary>
    internal static void UnsafeOnCompleted<T>(IValueTaskSource<T> source, short token, Action continuation)
    {
        object? target = continuation.Target;
        if (target is not null && IsStateMachineBox(target))
        {
            source.OnCompleted(AsyncMethodContinuation.Delegate, target, token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
            return;
        }

        source.OnCompleted(InvokeAction, continuation, token, ValueTaskSourceOnCompletedFlags.UseSchedulingContext);
    }

    // True when target is a state machine box, so that the runtime's delegate may run it (it rejects anything else).
    // A MoveNext action wrapped for causality tracing (a debugger attached) has a wrapper as its target: not a box.
    private static bool IsStateMachineBox(object target)
    {
        Type type = target.GetType();
        if (ReferenceEquals(type, Volatile.Read(ref s_lastBoxType)))
        {
            return true;
        }

        if (s_boxInterface is null || !s_boxInterface.IsAssignableFrom(type))
        {
            return false;
        }

        Volatile.Write(ref s_lastBoxType, type);
        return true;
    }
}

/// <summary>No result: the type argument of a faulted source for <see cref="TaskletOp"/>.</summary>
internal readonly struct VoidResult
{
}

/// <summary>
/// The source of an op that failed before it parked (a closed channel, a pre-cancelled token): completed from the start,
/// its GetResult throws the stored exception every time (as a faulted task's would). Never reused, so the token is unused.
/// </summary>
internal sealed class FaultedOpSource<T> : IValueTaskSource, IValueTaskSource<T>
{
    private readonly ExceptionDispatchInfo _error;

    public FaultedOpSource(Exception exception)
    {
        _error = ExceptionDispatchInfo.Capture(exception);
    }

    /// <summary>The exception awaiting a task cancelled by <paramref name="cancellationToken"/> throws (ValueTask.FromCanceled's).</summary>
    public static Exception Canceled(CancellationToken cancellationToken) => new TaskCanceledException(null, null, cancellationToken);

    public ValueTaskSourceStatus GetStatus(short token)
        => _error.SourceException is OperationCanceledException ? ValueTaskSourceStatus.Canceled : ValueTaskSourceStatus.Faulted;

    public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        // Completed already: nobody awaiting through IsCompleted gets here; a direct caller is resumed on the pool.
        ThreadPool.UnsafeQueueUserWorkItem(continuation, state, preferLocal: true);
    }

    void IValueTaskSource.GetResult(short token) => _error.Throw();

    public T GetResult(short token)
    {
        _error.Throw();
        return default!;
    }
}
