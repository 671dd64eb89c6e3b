using System.Diagnostics;
using System.Net.Http.Json;
using Tasklets;

namespace HostingApi;

/// <summary>
/// The self-check CI runs: concurrent requests against the started host, every reply checked, then a stop that must
/// be clean. Bounded: a fixed number of requests, and every wait under one deadline.
/// </summary>
public static class SelfTest
{
    private const int RequestCount = 400;
    private const int CounterCount = 8;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    public static async Task<int> RunAsync(WebApplication app)
    {
        var failures = new List<string>();
        using var deadline = new CancellationTokenSource(Deadline);
        var clock = Stopwatch.StartNew();
        await app.StartAsync(deadline.Token);
        string address = Api.Address(app);
        var counters = app.Services.GetRequiredService<Counters>();
        var scheduler = app.Services.GetRequiredService<Scheduler>();
        try
        {
            await CheckRepliesAsync(address, failures, deadline.Token);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            failures.Add($"the requests did not complete: {e.GetType().Name}: {e.Message}");
        }

        // The stop: the server stops, then the hosted scheduler kills the counter tasklet and waits for its finally
        // block, both under the deadline (the hosted scheduler gives up on the token and logs what is still alive).
        await app.StopAsync(deadline.Token);
        if (!counters.Stopped.Task.IsCompletedSuccessfully)
        {
            failures.Add("the counter tasklet's finally block had not run when StopAsync returned");
        }
        else if (await counters.Stopped.Task != RequestCount + 1)
        {
            failures.Add($"the counter tasklet served {await counters.Stopped.Task} requests, not {RequestCount + 1}");
        }

        if (scheduler.Tasklets.Count != 0)
        {
            failures.Add($"tasklets still alive after the stop:{Environment.NewLine}{scheduler.Dump()}");
        }

        await app.DisposeAsync();
        if (failures.Count > 0)
        {
            foreach (string failure in failures)
            {
                Console.Error.WriteLine($"FAIL: {failure}");
            }

            return 1;
        }

        Console.WriteLine(
            $"HostingApi: {RequestCount} concurrent requests to one counter tasklet on {address}: every reply and every " +
            $"total adds up; the host stopped cleanly (the tasklet's finally ran) in {clock.Elapsed.TotalSeconds:0.0} s in all.");
        return 0;
    }

    private static async Task CheckRepliesAsync(string address, List<string> failures, CancellationToken cancellationToken)
    {
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = 16 }) { BaseAddress = new Uri(address) };

        // Request i adds i + 1 to counter i % CounterCount, all at once.
        var sent = new Task<CounterValue?>[RequestCount];
        for (int i = 0; i < RequestCount; i++)
        {
            sent[i] = AddAsync(http, Name(i % CounterCount), i + 1, cancellationToken);
        }

        CounterValue?[] replies = await Task.WhenAll(sent);
        for (int c = 0; c < CounterCount; c++)
        {
            // One tasklet applied the additions one at a time, in some order: the values it replied, sorted, are the
            // running sums of the amounts in that order, so their steps are exactly the amounts sent to the counter.
            List<long> amounts = [.. Enumerable.Range(0, RequestCount).Where(i => i % CounterCount == c).Select(i => (long)i + 1)];
            List<long> values = [.. Enumerable.Range(0, RequestCount).Where(i => i % CounterCount == c).Select(i => replies[i]?.Value ?? -1)];
            values.Sort();
            List<long> steps = [.. values.Select((v, k) => k == 0 ? v : v - values[k - 1])];
            steps.Sort();
            if (!steps.SequenceEqual(amounts))
            {
                failures.Add($"counter {Name(c)}: the replied values {string.Join(',', values)} are not running sums of its amounts");
            }
        }

        Dictionary<string, long>? snapshot = await http.GetFromJsonAsync<Dictionary<string, long>>("/counters", cancellationToken);
        for (int c = 0; c < CounterCount; c++)
        {
            long expected = Enumerable.Range(0, RequestCount).Where(i => i % CounterCount == c).Sum(i => (long)i + 1);
            long actual = snapshot?.GetValueOrDefault(Name(c)) ?? -1;
            if (actual != expected)
            {
                failures.Add($"counter {Name(c)} is {actual}, not {expected}");
            }
        }

        long total = snapshot?.Values.Sum() ?? -1;
        if (total != (long)RequestCount * (RequestCount + 1) / 2 || snapshot?.Count != CounterCount)
        {
            failures.Add($"the counters hold {total} in {snapshot?.Count} counters, not {(long)RequestCount * (RequestCount + 1) / 2} in {CounterCount}");
        }
    }

    private static async Task<CounterValue?> AddAsync(HttpClient http, string counter, long amount, CancellationToken cancellationToken)
    {
        using HttpResponseMessage response = await http.PostAsync($"/counters/{counter}/add/{amount}", content: null, cancellationToken);
        response.EnsureSuccessStatusCode();
        CounterValue? value = await response.Content.ReadFromJsonAsync<CounterValue>(cancellationToken);
        return value?.Counter == counter ? value : null;
    }

    private static string Name(int counter) => $"c{counter}";
}
