using System.Collections.Concurrent;

namespace Tasklets.Benchmarks;

/// <summary>
/// A minimal single-threaded SynchronizationContext (lock + queue + Monitor.Wait): the cooperative, one-core
/// baseline of the peer measurements ("STC st", docs/performance.md). Posted work runs in order on the thread inside <see cref="Run"/>.
/// </summary>
internal sealed class SingleThreadContext : SynchronizationContext
{
    private readonly BlockingCollection<(SendOrPostCallback, object?)> _queue = new(new ConcurrentQueue<(SendOrPostCallback, object?)>());

    public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));

    public static T Run<T>(Func<Task<T>> main)
    {
        SynchronizationContext? saved = Current;
        var context = new SingleThreadContext();
        SetSynchronizationContext(context);
        try
        {
            Task<T> task = main();
            task.ContinueWith(_ => context._queue.CompleteAdding(), TaskScheduler.Default);
            foreach ((SendOrPostCallback callback, object? state) in context._queue.GetConsumingEnumerable())
            {
                callback(state);
            }

            return task.GetAwaiter().GetResult();
        }
        finally
        {
            SetSynchronizationContext(saved);
        }
    }
}
