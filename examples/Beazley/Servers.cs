using System.Net;
using System.Net.Sockets;
using Tasklets;

namespace Beazley;

/// <summary>Where the experiment's CPU-bound work runs, beside the echo server.</summary>
internal enum CpuLoad
{
    /// <summary>No CPU work: the server alone.</summary>
    None,

    /// <summary>A tasklet on the server's scheduler that calls <see cref="Tasklet.Checkpoint"/> after every chunk.</summary>
    CheckpointingTasklet,

    /// <summary>A tasklet on the server's scheduler that moved the same work into <see cref="Tasklet.RunInThread(Action{CancellationToken}, CancellationToken)"/>.</summary>
    RunInThread,

    /// <summary>The same work on a dedicated OS thread (the control server's setting).</summary>
    Thread,
}

/// <summary>An echo server of the experiment, listening on 127.0.0.1.</summary>
internal interface IEchoServer : IDisposable
{
    IPEndPoint EndPoint { get; }

    /// <summary>Stops accepting, ends the CPU work, and rethrows the first failure of a connection.</summary>
    void Stop();
}

/// <summary>
/// The Tasklets server: one scheduler on its own thread, an accept tasklet, one tasklet per connection awaiting real
/// sockets, and optionally the CPU-bound tasklet. Kills reach the socket awaits through each tasklet's
/// <see cref="Tasklet.CancellationToken"/>.
/// </summary>
internal sealed class TaskletEchoServer : IEchoServer
{
    private readonly Scheduler _scheduler = new();
    private readonly Socket _listener = Protocol.Listen();
    private readonly Thread _thread;
    private Exception? _failure;

    public TaskletEchoServer(CpuLoad load, CpuWork cpu)
    {
        _ = _scheduler.Go(AcceptAsync, "accept");
        switch (load)
        {
            case CpuLoad.None:
                break;
            case CpuLoad.CheckpointingTasklet:
                _ = _scheduler.Go(async () =>
                {
                    while (true)
                    {
                        cpu.Chunk();
                        await Tasklet.Checkpoint(); // gives way at once when a socket completion is waiting
                    }
                }, "cpu");
                break;
            case CpuLoad.RunInThread:
                _ = _scheduler.Go(async () =>
                {
                    await Tasklet.RunInThread(token =>
                    {
                        while (!token.IsCancellationRequested)
                        {
                            cpu.Chunk();
                        }
                    });
                }, "cpu in a thread");
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(load), load, "The Tasklets server runs its CPU work as a tasklet, checkpointing or in a thread.");
        }

        _thread = new Thread(RunScheduler) { Name = "server scheduler", IsBackground = true };
        _thread.Start();
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public void Stop()
    {
        // Kill every tasklet as a step of the server's scheduler; Run() then returns on its thread.
        _scheduler.InvokeAsync(() =>
        {
            foreach (Tasklet tasklet in _scheduler.Tasklets)
            {
                tasklet.Kill();
            }
        }).AsTask().GetAwaiter().GetResult();
        _thread.Join();
        if (_failure is not null)
        {
            throw new InvalidOperationException("The Tasklets echo server failed.", _failure);
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        _scheduler.Dispose();
    }

    private async Task AcceptAsync()
    {
        CancellationToken token = Tasklet.Current!.CancellationToken; // cancelled by Stop's kill
        while (true)
        {
            Socket connection = await _listener.AcceptAsync(token);
            connection.NoDelay = true;
            _ = Tasklet.Go(() => Protocol.EchoAsync(connection, Tasklet.Current!.CancellationToken), "connection");
        }
    }

    private void RunScheduler()
    {
        try
        {
            _scheduler.Run();
        }
        catch (Exception e)
        {
            _failure = e;
        }
    }
}

/// <summary>
/// The control: the same server as plain <c>async Task</c> code, the CPU work on a dedicated thread (what a .NET
/// developer writes without Tasklets). On the thread pool, or on one thread (a minimal single-threaded
/// SynchronizationContext): the floor of any one-thread event loop, which pays a thread hop per completion as a
/// scheduler does.
/// </summary>
internal sealed class PlainAsyncEchoServer : IEchoServer
{
    private readonly Socket _listener = Protocol.Listen();
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _connections = [];
    private readonly Task _accept;
    private readonly Thread? _cpuThread;
    private readonly OneThreadLoop? _loop;

    public PlainAsyncEchoServer(CpuLoad load, CpuWork cpu, bool oneThread)
    {
        if (oneThread)
        {
            _loop = new OneThreadLoop();
            _accept = _loop.Start(AcceptAsync);
        }
        else
        {
            _accept = Task.Run(AcceptAsync);
        }

        if (load == CpuLoad.Thread)
        {
            _cpuThread = new Thread(() =>
            {
                while (!_stop.IsCancellationRequested)
                {
                    cpu.Chunk();
                }
            })
            { Name = "cpu", IsBackground = true };
            _cpuThread.Start();
        }
        else if (load != CpuLoad.None)
        {
            throw new ArgumentOutOfRangeException(nameof(load), load, "The plain async server runs its CPU work on a thread, or none.");
        }
    }

    public IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

    public void Stop()
    {
        _stop.Cancel();
        _cpuThread?.Join();
        Task[] all;
        lock (_connections)
        {
            all = [.. _connections, _accept];
        }

        try
        {
            Task.WhenAll(all).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException)
        {
            // The accept loop ends by cancellation; a connection failure would have been rethrown instead.
        }
        finally
        {
            _loop?.Stop();
        }
    }

    public void Dispose()
    {
        _listener.Dispose();
        _stop.Dispose();
    }

    private async Task AcceptAsync()
    {
        while (true)
        {
            Socket connection = await _listener.AcceptAsync(_stop.Token);
            connection.NoDelay = true;
            lock (_connections)
            {
                // On one thread the echo starts inline and its continuations come back to the loop; else on the pool.
                _connections.Add(_loop is null ? Task.Run(() => Protocol.EchoAsync(connection, _stop.Token)) : Protocol.EchoAsync(connection, _stop.Token));
            }
        }
    }
}

/// <summary>A minimal single-threaded SynchronizationContext on a thread of its own: posted work runs in order.</summary>
internal sealed class OneThreadLoop : SynchronizationContext
{
    private readonly System.Collections.Concurrent.BlockingCollection<(SendOrPostCallback Callback, object? State)> _queue = [];
    private readonly Thread _thread;

    public OneThreadLoop()
    {
        _thread = new Thread(() =>
        {
            SetSynchronizationContext(this);
            foreach ((SendOrPostCallback callback, object? state) in _queue.GetConsumingEnumerable())
            {
                callback(state);
            }
        })
        { Name = "one-thread loop", IsBackground = true };
        _thread.Start();
    }

    public override void Post(SendOrPostCallback d, object? state) => _queue.Add((d, state));

    /// <summary>Runs <paramref name="start"/> on the loop's thread; its awaits come back there.</summary>
    public Task Start(Func<Task> start)
    {
        var started = new TaskCompletionSource<Task>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(_ => started.SetResult(start()), null);
        return started.Task.Unwrap();
    }

    public void Stop()
    {
        _queue.CompleteAdding();
        _thread.Join();
    }
}
