using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http.Features;
using Tasklets;

namespace HostingApi;

/// <summary>A counter's value, as the API returns it.</summary>
public sealed record CounterValue(string Counter, long Value);

/// <summary>The request handlers: plain async code on ASP.NET Core's thread pool, clients of the counter tasklet.</summary>
public static class Api
{
    /// <summary>POST /counters/{name}/add/{amount}: the counter's new value.</summary>
    public static async Task<IResult> AddAsync(string name, long amount, Counters counters, CancellationToken aborted)
    {
        // The reply crosses back from the tasklet world to the thread pool: a TaskCompletionSource is the type .NET
        // code awaits, carries a value or an exception, and with RunContinuationsAsynchronously the handler's
        // continuation never runs on the scheduler's thread.
        var reply = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!await SendAsync(counters, new AddRequest(name, amount, reply), aborted))
        {
            return Stopping();
        }

        try
        {
            return Results.Ok(new CounterValue(name, await reply.Task.WaitAsync(aborted)));
        }
        catch (InvalidOperationException)
        {
            return Stopping(); // buffered when the service stopped: its finally answered with this
        }
    }

    /// <summary>GET /counters: every counter's value.</summary>
    public static async Task<IResult> SnapshotAsync(Counters counters, CancellationToken aborted)
    {
        var reply = new TaskCompletionSource<IReadOnlyDictionary<string, long>>(TaskCreationOptions.RunContinuationsAsynchronously);
        if (!await SendAsync(counters, new SnapshotRequest(reply), aborted))
        {
            return Stopping();
        }

        try
        {
            return Results.Ok(await reply.Task.WaitAsync(aborted));
        }
        catch (InvalidOperationException)
        {
            return Stopping();
        }
    }

    /// <summary>The first address the server listens on (after it started).</summary>
    public static string Address(WebApplication app)
        => app.Services.GetRequiredService<IServer>().Features.GetRequiredFeature<IServerAddressesFeature>().Addresses.First();

    // False when the service has stopped (it closed its channel): the request was not taken, and the caller knows.
    private static async Task<bool> SendAsync(Counters counters, CounterRequest request, CancellationToken aborted)
    {
        try
        {
            await counters.Requests.SendAsync(request, aborted);
            return true;
        }
        catch (ChannelClosedException)
        {
            return false;
        }
    }

    private static IResult Stopping() => Results.Problem("The counter service is stopping.", statusCode: StatusCodes.Status503ServiceUnavailable);
}
