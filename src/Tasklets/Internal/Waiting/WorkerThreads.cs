using System.Collections.Concurrent;

namespace Tasklets.Internal;

/// <summary>Work that <see cref="WorkerThreads"/> runs.</summary>
internal interface IThreadWorkItem
{
    /// <summary>Runs the work; never throws (the work's exception is its outcome).</summary>
    void Execute();
}

/// <summary>
/// The threads of <see cref="Tasklet.RunInThread{T}(Func{CancellationToken, T}, CancellationToken)"/>: elastic, one
/// per work item running at once, kept for a while when idle, and apart from the .NET thread pool.
/// </summary>
/// <remarks>
/// <para>Why not the thread pool: the pool's threads also deliver I/O completions (the socket engine posts them
/// there), and it starts with one thread per core. CPU work that runs for seconds in RunInThread took one of the two
/// pool threads on this machine for the whole run and slowed a server's sockets (the Beazley experiment's setting
/// (c)); the pool adds threads only when its queue stops moving.</para>
/// <para>Protocol: every <see cref="Queue"/> is paired with exactly one of: a wake-up handed to an idle worker (it
/// claims one unit of <see cref="s_idle"/> by CAS, then releases the semaphore once) or a new worker. A worker that
/// finds the queue empty offers itself (increments <see cref="s_idle"/>) and waits on the semaphore; on a timeout it
/// retires only if it can take back its own unit by CAS. If a queuer has claimed that unit first, a release is on
/// its way: the worker waits for it instead, so no release is left without a worker and no item without a thread.
/// A worker drains the queue after every wake-up, so an item is never stranded behind a retiring worker.</para>
/// </remarks>
internal static class WorkerThreads
{
    private static readonly ConcurrentQueue<IThreadWorkItem> s_queue = new();
    private static readonly SemaphoreSlim s_wake = new(0);
    private static int s_idle; // workers waiting on s_wake that no queuer has claimed

    /// <summary>How long an idle worker waits for work before it retires (5 s; tests shorten it to race retirement).</summary>
    internal static TimeSpan IdleTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Runs <paramref name="item"/> on a worker thread, with the caller's ExecutionContext (as Task.Run).</summary>
    public static void Queue(IThreadWorkItem item)
    {
        s_queue.Enqueue(item);
        while (true)
        {
            int idle = Volatile.Read(ref s_idle);
            if (idle == 0)
            {
                var worker = new Thread(static () => Work()) { IsBackground = true, Name = "Tasklets RunInThread" };
                worker.UnsafeStart();
                return;
            }

            // Claim one idle worker: it will be released once, and drains the queue, this item included.
            if (Interlocked.CompareExchange(ref s_idle, idle - 1, idle) == idle)
            {
                s_wake.Release();
                return;
            }
        }
    }

    private static void Work()
    {
        while (true)
        {
            while (s_queue.TryDequeue(out IThreadWorkItem? item))
            {
                item.Execute();
            }

            Interlocked.Increment(ref s_idle);
            if (s_wake.Wait(IdleTimeout))
            {
                continue; // a queuer claimed this worker: drain
            }

            // Timed out: retire if this worker's unit is still unclaimed; else a release is coming for it.
            while (true)
            {
                int idle = Volatile.Read(ref s_idle);
                if (idle == 0)
                {
                    s_wake.Wait();
                    break;
                }

                if (Interlocked.CompareExchange(ref s_idle, idle - 1, idle) == idle)
                {
                    return;
                }
            }
        }
    }
}
