// An ASP.NET Core minimal API in front of a tasklet service (issue 16). The counters live in one tasklet on the hosted
// scheduler (Tasklets.Hosting): request handlers, on ASP.NET Core's thread pool, send it requests on a Tasklets channel
// and await its replies. Run it as a server and try it with curl, or with --self-test, which CI runs: it binds a free
// port on 127.0.0.1, sends concurrent requests, checks that every reply and the totals add up, stops the host and
// checks that the shutdown was clean; it exits non-zero if anything did not hold.
//
//   dotnet run --project examples/HostingApi                 # a server on http://127.0.0.1:5080 (or ASPNETCORE_URLS)
//   dotnet run --project examples/HostingApi -- --self-test
using HostingApi;
using Tasklets;

const string SelfTestSwitch = "--self-test";
bool selfTest = args.Contains(SelfTestSwitch);

WebApplicationBuilder builder = WebApplication.CreateBuilder([.. args.Where(a => a != SelfTestSwitch)]);
if (selfTest)
{
    builder.WebHost.UseUrls("http://127.0.0.1:0"); // a free port: read back from the server below
    builder.Logging.SetMinimumLevel(LogLevel.Warning);
}
else
{
    builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning); // one line per request is too many here
    if (builder.Configuration["urls"] is null)
    {
        builder.WebHost.UseUrls("http://127.0.0.1:5080");
    }
}

builder.Services.AddSingleton<Counters>();
builder.Services.AddTasklet<Counters>((counters, stopping) => counters.ServeAsync(stopping), name: "counters");

WebApplication app = builder.Build();
app.MapPost("/counters/{name}/add/{amount:long}", Api.AddAsync);
app.MapGet("/counters", Api.SnapshotAsync);

if (!selfTest)
{
    app.Lifetime.ApplicationStarted.Register(() =>
    {
        string url = Api.Address(app);
        Console.WriteLine($"Counters on {url}; Ctrl+C stops the host (and the counter tasklet's finally reports).");
        Console.WriteLine($"  curl -X POST {url}/counters/apples/add/3");
        Console.WriteLine($"  curl {url}/counters");
    });
    var counters = app.Services.GetRequiredService<Counters>();
    await app.RunAsync(); // until Ctrl+C or SIGTERM; then it stops the host and disposes it
    Console.WriteLine($"The counter service served {await counters.Stopped.Task} requests and stopped.");
    return 0;
}

return await SelfTest.RunAsync(app);
