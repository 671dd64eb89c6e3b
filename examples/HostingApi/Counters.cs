using Tasklets;

namespace HostingApi;

/// <summary>A request to the counter service; the service answers through <see cref="Fail"/> or the reply of the subtype.</summary>
public abstract record CounterRequest
{
    /// <summary>Answers with an exception: the service stopped before it could serve the request.</summary>
    public abstract void Fail(Exception exception);
}

/// <summary>Add <paramref name="Amount"/> to counter <paramref name="Counter"/>; the reply is its new value.</summary>
public sealed record AddRequest(string Counter, long Amount, TaskCompletionSource<long> Reply) : CounterRequest
{
    public override void Fail(Exception exception) => Reply.TrySetException(exception);
}

/// <summary>Read every counter; the reply is a copy.</summary>
public sealed record SnapshotRequest(TaskCompletionSource<IReadOnlyDictionary<string, long>> Reply) : CounterRequest
{
    public override void Fail(Exception exception) => Reply.TrySetException(exception);
}

/// <summary>
/// The counter service: one tasklet owns the counters, so they need no lock; request handlers, on ASP.NET Core's
/// thread pool, send it requests on <see cref="Requests"/> and await the replies.
/// </summary>
/// <remarks>
/// A singleton resolved by <c>AddTasklet&lt;Counters&gt;</c> on the host's thread: its channel is made outside any
/// tasklet, so the service idle on it is waiting for outside code, not deadlocked.
/// </remarks>
public sealed class Counters
{
    private readonly Dictionary<string, long> _values = [];
    private long _served;

    /// <summary>The requests; buffered, so a burst of handlers does not wait for the service one by one.</summary>
    public Channel<CounterRequest> Requests { get; } = new(capacity: 64) { Name = "counter requests" };

    /// <summary>Completed by the service's finally block, with the number of requests it served.</summary>
    public TaskCompletionSource<long> Stopped { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>The service's tasklet: serves requests until the host stops it (a kill, at its receive).</summary>
    public async Task ServeAsync(CancellationToken stopping)
    {
        try
        {
            await foreach (CounterRequest request in Requests)
            {
                // Between two awaits nothing else runs on this scheduler: the update and the reply are one step.
                _served++;
                switch (request)
                {
                    case AddRequest add:
                        long value = _values.GetValueOrDefault(add.Counter) + add.Amount;
                        _values[add.Counter] = value;
                        add.Reply.TrySetResult(value);
                        break;
                    case SnapshotRequest snapshot:
                        snapshot.Reply.TrySetResult(new Dictionary<string, long>(_values));
                        break;
                }
            }
        }
        finally
        {
            // Killed (the host stops): no request is lost silently. Senders blocked or still to come get
            // ChannelClosedException; what is buffered is answered with an exception.
            Requests.Close();
            var stopped = new InvalidOperationException("The counter service stopped before it served this request.");
            while (Requests.TryReceive(out CounterRequest? left))
            {
                left.Fail(stopped);
            }

            Stopped.TrySetResult(_served);
        }
    }
}
