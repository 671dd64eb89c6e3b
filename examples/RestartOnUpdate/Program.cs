// The restart-on-update pattern (seed 001, "A use for killing tasklets"; seed 003's talk "Killing Considered Benign"
// is the idea behind it): a client publishes absolute scene updates faster than the server can apply them. When an
// update arrives while the previous one is still being applied, the server kills that update's tasklet (its finally
// blocks run) and starts the new one, so the scene follows the newest state instead of lagging further behind. The
// updates are absolute, so an aborted one corrupts nothing: the next one overwrites every object.
//
// Deterministic: the Seed gives virtual time and a seeded arrival plan, so the same updates are killed every run.
// Checks, against a plan computed without tasklets: the scene ends equal to the last update; each update that the
// next one arrived in time to overtake was killed, every other one completed and left the scene equal to itself; every
// update released its lease on the scene exactly once (killed ones in their finally block) and no two were applied at
// once. Exits non-zero on any violation.
//
//   dotnet run --project examples/RestartOnUpdate [-- seed]
using System.Globalization;
using RestartOnUpdate;
using Tasklets;

int seed = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 3;
const int Updates = 300;
const int Objects = 64;
TimeSpan step = TimeSpan.FromMilliseconds(1);     // applying one object waits for the next render tick
TimeSpan applyTime = step * Objects;

// The client's plan: the gap after each update, in whole milliseconds, never exactly the time an update takes to
// apply (the update's last tick and the next arrival would then be due at the same instant).
var random = new Random(seed);
var gaps = new TimeSpan[Updates];
for (int v = 0; v < Updates; v++)
{
    int ms;
    do
    {
        ms = random.Next(8, 2 * Objects + 16);
    }
    while (ms == Objects);

    gaps[v] = TimeSpan.FromMilliseconds(ms);
}

var scene = new Scene(Objects);
var log = new UpdateLog(Updates);
Scheduler.Run(async () =>
{
    var updates = new Channel<SceneUpdate> { Name = "updates" };
    _ = Tasklet.Go(async () =>
    {
        for (int v = 1; v <= Updates; v++)
        {
            await updates.SendAsync(SceneUpdate.Absolute(v, Objects));
            await Tasklet.Sleep(gaps[v - 1]);
        }

        updates.Close();
    }, "client");

    // The server: the pattern itself is these few lines.
    Tasklet? applying = null;
    await foreach (SceneUpdate update in updates)
    {
        if (applying is { IsAlive: true })
        {
            await applying.KillAndJoinAsync();     // returns once its finally blocks have run
            log.Killed(applying);
        }

        applying = Tasklet.Go(() => ApplyAsync(scene, update, step, log), $"apply {update.Version}");
    }

    if (applying is not null)
    {
        await applying;                            // the last update runs to its end
    }
}, new SchedulerOptions { Seed = seed });

// The plan without tasklets: update v is overtaken when the next one arrives before v's apply time is over.
var failures = new List<string>();
int expectedKilled = 0;
for (int v = 1; v <= Updates; v++)
{
    bool overtaken = v < Updates && gaps[v - 1] < applyTime;
    expectedKilled += overtaken ? 1 : 0;
    UpdateOutcome outcome = log.Outcome(v);
    UpdateOutcome expected = overtaken ? UpdateOutcome.Killed : UpdateOutcome.Completed;
    if (outcome != expected)
    {
        failures.Add($"update {v}: {outcome}, expected {expected} (gap {gaps[v - 1].TotalMilliseconds} ms, apply time {applyTime.TotalMilliseconds} ms)");
    }

    if (log.Releases(v) != 1)
    {
        failures.Add($"update {v} released its lease on the scene {log.Releases(v)} times, not once");
    }
}

failures.AddRange(log.Violations);
if (!scene.Holds(SceneUpdate.Absolute(Updates, Objects)))
{
    failures.Add($"the scene does not hold the last update {Updates}: {scene}");
}

if (scene.ActiveLeases != 0)
{
    failures.Add($"{scene.ActiveLeases} leases on the scene were never released");
}

if (expectedKilled == 0 || expectedKilled == Updates - 1)
{
    failures.Add($"the plan for seed {seed} kills {expectedKilled} of {Updates} updates: it checks only one path; choose another seed");
}

Console.WriteLine($"{Updates} absolute updates of {Objects} objects, {applyTime.TotalMilliseconds} ms (virtual) to apply one, seed {seed}:");
Console.WriteLine($"  {log.Count(UpdateOutcome.Killed)} killed mid-apply when the next arrived (their finally blocks released the scene; {log.PartiallyWritten} had written part of it),");
Console.WriteLine($"  {log.Count(UpdateOutcome.Completed)} completed (the scene equal to each when it finished), the scene ends equal to update {scene.Version}.");
foreach (string failure in failures.Take(20))
{
    Console.Error.WriteLine("FAIL: " + failure);
}

return failures.Count == 0 ? 0 : 1;

// One update's tasklet: it holds a lease on the scene while it writes, one object per tick. A kill arrives at a
// Sleep; the using block releases the lease on the way out, whatever ended the tasklet.
static async Task ApplyAsync(Scene scene, SceneUpdate update, TimeSpan step, UpdateLog log)
{
    using Scene.Lease lease = scene.BeginApply(update.Version, log);
    for (int i = 0; i < update.Positions.Length; i++)
    {
        lease.Write(i, update.Positions[i]);
        await Tasklet.Sleep(step);
    }

    if (!scene.Holds(update))
    {
        log.Violation($"update {update.Version} completed but the scene does not hold it: {scene}");
    }

    log.Completed(update.Version);
}
