using System.Threading.Tasks.Sources;

namespace Tasklets.Internal;

/// <summary>
/// The continuation delegate the runtime passes to <see cref="IValueTaskSource.OnCompleted"/> when an async method
/// awaits a <see cref="ValueTask"/>: one delegate for every await in the process, with the method's state machine box
/// as the state. <see cref="TaskletWaiter"/> stores only the state when it sees this delegate.
/// </summary>
/// <remarks>
/// Found once, by awaiting a probe source in an async method and recording what the await passed; then the probe
/// completes and the method finishes. Knowing the delegate up front (rather than taking whichever delegate a waiter
/// sees first) keeps a process whose first await was, say, <c>AsTask()</c> from sending every ordinary await down
/// the rare path.
/// </remarks>
internal static class AsyncMethodContinuation
{
    /// <summary>The delegate.</summary>
    public static readonly Action<object?> Delegate = Capture();

    private static Action<object?> Capture()
    {
        var probe = new Probe();
        Task awaiting = AwaitProbe(probe);
        Action<object?> captured = probe.Continuation
            ?? throw new InvalidOperationException("An awaited ValueTask did not register a continuation.");
        probe.Complete();
        awaiting.GetAwaiter().GetResult();
        return captured;
    }

    private static async Task AwaitProbe(Probe probe) => await new ValueTask(probe, 0);

    private sealed class Probe : IValueTaskSource
    {
        private object? _state;
        private bool _completed;

        public Action<object?>? Continuation { get; private set; }

        public ValueTaskSourceStatus GetStatus(short token) => _completed ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            Continuation = continuation;
            _state = state;
        }

        public void GetResult(short token)
        {
        }

        public void Complete()
        {
            _completed = true;
            Continuation!(_state);
        }
    }
}
