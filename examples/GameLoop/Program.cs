// A game loop: 10,000 NPC tasklets on one scheduler, which the host pumps once per frame with RunFor(budget), the
// watchdog run (Stackless's run(timeout), soft mode: it returns at the next switch once the budget is spent). Each
// NPC waits for the next frame, updates once per frame, and every tenth frame reports a score over a channel. A frame
// whose budget runs out leaves some NPCs for the next one; those catch up frame by frame, so no update is lost or
// doubled. Every tenth frame has almost no budget (the renderer took it), to make that happen.
//
// Checks: after the last frame and a drain, every NPC made exactly one update per frame, in order, never ahead of the
// clock, and stands where its velocity puts it; the scorekeeper got every report; disposing the scheduler kills
// every tasklet and runs its finally block. Frame times (median, p99) are printed for information only: they depend on
// the machine. Exits non-zero on any violation.
//
//   dotnet run -c Release --project examples/GameLoop [-- frames]
using System.Diagnostics;
using System.Globalization;
using GameLoop;
using Tasklets;

int frames = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 120;
const int NpcCount = 10_000;
const int ScoreEvery = 10;
TimeSpan budget = TimeSpan.FromMilliseconds(8);
TimeSpan starvedBudget = TimeSpan.FromMilliseconds(0.05);

var failures = new List<string>();
var clock = new FrameClock();
var npcs = new Npc[NpcCount];
var scores = Channel<int>.CreateUnbounded("scores");
long scored = 0;
int reports = 0;
var scheduler = new Scheduler();
for (int i = 0; i < NpcCount; i++)
{
    var npc = npcs[i] = new Npc(i, clock);
    _ = scheduler.Go(() => NpcAsync(npc, clock, scores), $"npc {i}");
}

Tasklet scorekeeper = scheduler.Go(async () =>
{
    await foreach (int points in scores)
    {
        scored += points;
        reports++;
    }
}, "scorekeeper");

while (scheduler.RunOnce())
{
    // Start every NPC: each runs to its first wait for frame 1.
}

var frameTimes = new List<double>(frames);
int carriedOver = 0;
for (int frame = 1; frame <= frames; frame++)
{
    clock.Advance();                                   // frame begins: wakes every NPC waiting for it
    long started = Stopwatch.GetTimestamp();
    scheduler.RunFor(frame % 10 == 0 ? starvedBudget : budget);
    frameTimes.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
    carriedOver += npcs.Count(n => n.Frame < clock.Frame);
    // Render() would go here.
}

while (scheduler.RunOnce())
{
    // Drain: the NPCs left behind by the last frame catch up.
}

foreach (Npc npc in npcs)
{
    if (npc.Updates != frames || npc.Frame != frames || npc.Position != npc.Velocity * frames)
    {
        failures.Add($"npc {npc.Id}: {npc.Updates} updates, at frame {npc.Frame}, position {npc.Position}; expected {frames}, {frames}, {npc.Velocity * frames}");
    }

    failures.AddRange(npc.Violations);
}

long expectedScore = npcs.Sum(n => (long)n.Id % 5 * (frames / ScoreEvery));
if (reports != NpcCount * (frames / ScoreEvery) || scored != expectedScore)
{
    failures.Add($"the scorekeeper got {reports} reports worth {scored}; expected {NpcCount * (frames / ScoreEvery)} worth {expectedScore}");
}

scheduler.Dispose();                                   // kills every tasklet; their finally blocks run
int notStopped = npcs.Count(n => !n.Stopped);
if (notStopped != 0 || scorekeeper.IsAlive || scheduler.Tasklets.Count != 0)
{
    failures.Add($"after Dispose: {notStopped} NPCs did not run their finally block, scorekeeper alive: {scorekeeper.IsAlive}, {scheduler.Tasklets.Count} tasklets alive");
}

frameTimes.Sort();
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{NpcCount} NPC tasklets, {frames} frames of RunFor({budget.TotalMilliseconds} ms), every tenth of RunFor({starvedBudget.TotalMilliseconds} ms):"));
Console.WriteLine($"  {npcs.Sum(n => (long)n.Updates)} updates ({NpcCount} x {frames} expected), {reports} score reports, {carriedOver} NPC-frames carried over to the next frame;");
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"  frame time median {Quantile(frameTimes, 0.5):0.00} ms, p99 {Quantile(frameTimes, 0.99):0.00} ms (informative: depends on the machine)."));
foreach (string failure in failures.Take(20))
{
    Console.Error.WriteLine("FAIL: " + failure);
}

return failures.Count == 0 ? 0 : 1;

// One NPC: catch up to the clock one frame at a time, then wait for the next frame. Awaiting the next frame is the
// only switch point, so an NPC's update is never interleaved with another's.
static async Task NpcAsync(Npc npc, FrameClock clock, Channel<int> scores)
{
    try
    {
        while (true)
        {
            while (npc.Frame < clock.Frame)
            {
                npc.Update();
                if (npc.Frame % ScoreEvery == 0)
                {
                    await scores.SendAsync(npc.Id % 5);   // unbounded: completes at once, no switch
                }
            }

            await clock.NextFrameAsync(npc.Frame);
        }
    }
    finally
    {
        npc.Stopped = true;
    }
}

static double Quantile(List<double> sorted, double q) => sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];
