// The heartbeat watchdog (seed 001, "A story of simplification and abstraction (stackless timeouts)"): a parent
// tasklet receives on a channel under a timeout, the child doing the work sends on it as its heartbeat, and a receive
// that times out means the child has stopped reporting in. Tasklet.Timeout is stacklesslib's util.timeout: the
// blocking operation in progress at the deadline throws TaskletTimeoutException, and leaving the scope removes it.
// Here a watchdog per worker then kills the silent worker (its finally block runs) and starts a new incarnation.
//
// Deterministic: the Seed gives virtual time, so 30 s of beats take a fraction of a second and every run is the same.
// Faults are injected by a seeded plan: an incarnation hangs after a planned beat, either blocked on a reply that never
// comes or retrying forever without beating. One worker is slow but healthy: it beats just inside the timeout.
// Checks: every hang is detected exactly once, no later than the timeout after the worker hung and exactly the timeout
// after its last beat; the hung incarnation is dead, its finally block has run, and the next incarnation beats; no
// alarm is raised for a worker that was beating (the slow one included). Exits non-zero on any violation.
//
//   dotnet run --project examples/Watchdog [-- seed]
using System.Globalization;
using Tasklets;
using Watchdog;

int seed = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1;
const int Workers = 16;
TimeSpan timeout = TimeSpan.FromMilliseconds(200);
TimeSpan runFor = TimeSpan.FromSeconds(30);

var ledger = new Ledger(seed);
Scheduler.Run(async () =>
{
    TimeProvider clock = Scheduler.Current!.Time;
    long start = clock.GetTimestamp();
    TimeSpan Now() => clock.GetElapsedTime(start);

    for (int id = 0; id < Workers; id++)
    {
        int worker = id;
        _ = Tasklet.Go(() => WatchAsync(worker), $"watchdog {worker}");
    }

    await Tasklet.Sleep(runFor);
    ledger.EndedAt = Now();
    // Returning ends the run: Scheduler.Run kills the watchdogs and the workers, whose finally blocks run.

    // One watchdog: start the worker, then receive its beats under the timeout; a missed beat restarts it.
    async Task WatchAsync(int worker)
    {
        var beats = new Channel<int> { Name = $"beats of worker {worker}" };
        int incarnation = 1;
        Tasklet running = Start(incarnation);
        TimeSpan lastBeat = Now();
        while (true)
        {
            try
            {
                using (Tasklet.Timeout(timeout))
                {
                    _ = await beats.ReceiveAsync();
                }

                lastBeat = Now();
            }
            catch (TaskletTimeoutException)
            {
                TimeSpan detected = Now();
                await running.KillAndJoinAsync();      // its finally block has run when this returns
                ledger.Alarm(worker, incarnation, detected, lastBeat, running);
                running = Start(++incarnation);
                lastBeat = Now();
            }
        }

        Tasklet Start(int number)
        {
            Incarnation state = ledger.Begin(worker, number, Now());
            return Tasklet.Go(() => Worker.RunAsync(state, beats, Now), state.Name);
        }
    }
}, new SchedulerOptions { Seed = seed });

List<string> failures = ledger.Check(timeout);
Console.WriteLine(ledger.Summary(Workers, timeout));
foreach (string failure in failures.Take(20))
{
    Console.Error.WriteLine("FAIL: " + failure);
}

return failures.Count == 0 ? 0 : 1;
