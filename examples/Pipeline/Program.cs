// A fan-out/fan-in pipeline with select, timeouts and cancellation: a producer feeds items into a buffered channel in
// bursts, eight workers take them (fan-out), each item has a time budget, and a collector selects over the results
// and the items that ran out of time (fan-in). The whole run has a deadline: a CancellationTokenSource on the
// scheduler's clock. Its token kills the producer (Go with a token), ends the workers' selects, sleeps and sends
// (Select.WaitAsync(timeout, token, cases), Sleep and SendAsync with the token), and the collector's select.
//
// Deterministic: the Seed gives virtual time and the item costs are seeded. The check is conservation: every item is
// accounted for exactly once, as an output (with the right value), as timed out, or as cancelled (never sent, left in
// the input channel, or in a worker when the deadline came). Exits non-zero on any violation.
//
//   dotnet run --project examples/Pipeline [-- seed]
using System.Globalization;
using Pipeline;
using Tasklets;

int seed = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 16;
const int Items = 2_000;
const int Workers = 8;
const int Burst = 250;
TimeSpan itemBudget = TimeSpan.FromMilliseconds(40);
TimeSpan burstPause = TimeSpan.FromMilliseconds(400);
TimeSpan idleTimeout = TimeSpan.FromMilliseconds(100);
TimeSpan stallTimeout = TimeSpan.FromMilliseconds(500);
TimeSpan deadline = TimeSpan.FromSeconds(3);

var random = new Random(seed);
int[] costMs = Enumerable.Range(0, Items + 1).Select(_ => random.Next(1, 61)).ToArray();
var ledger = new Ledger(Items);
int idleTimeouts = 0;
int stalls = 0;
TimeSpan cancelledAt = TimeSpan.Zero;

Scheduler.Run(async () =>
{
    TimeProvider clock = Scheduler.Current!.Time;
    long start = clock.GetTimestamp();
    using var run = new CancellationTokenSource(deadline, clock);
    CancellationToken token = run.Token;
    var inputs = new Channel<int>(capacity: 16) { Name = "inputs" };
    var results = new Channel<Result>(capacity: 16) { Name = "results" };
    var late = new Channel<int>(capacity: 16) { Name = "late" };
    var workersDone = new WaitGroup { Name = "workers" };

    // The producer: the token kills it wherever it is blocked; the finally block accounts for what it never sent.
    _ = Tasklet.Go(async () =>
    {
        int next = 1;
        try
        {
            for (; next <= Items; next++)
            {
                if (next % Burst == 1 && next > 1)
                {
                    await Tasklet.Sleep(burstPause);
                }

                await inputs.SendAsync(next);          // returns once the item is in the channel; a kill here sent nothing
            }
        }
        finally
        {
            for (int item = next; item <= Items; item++)
            {
                ledger.Cancelled(item, Ledger.NeverSent);
            }

            inputs.Close();
        }
    }, "producer", token);

    // Fan-out: each worker selects on the input with an idle timeout and the run's token.
    workersDone.Add(Workers);
    for (int w = 0; w < Workers; w++)
    {
        _ = Tasklet.Go(async () =>
        {
            try
            {
                await WorkAsync(inputs, results, late, token);
            }
            finally
            {
                workersDone.Done();
            }
        }, $"worker {w}");
    }

    _ = Tasklet.Go(async () =>
    {
        await workersDone.WaitAsync();
        results.Close();
        late.Close();
    }, "closer");

    // Fan-in: select over the results and the late items until both are closed. The deadline ends the select with
    // OperationCanceledException; from then on the collector drains what the workers handed over before it.
    var resultCase = results.ReceiveCase();
    var lateCase = late.ReceiveCase();
    SelectCase[] open = [resultCase, lateCase];
    int openCount = 2;
    while (openCount > 0)
    {
        int fired;
        try
        {
            fired = await Select.WaitAsync(stallTimeout, token, open.AsSpan(0, openCount));
        }
        catch (OperationCanceledException)
        {
            cancelledAt = clock.GetElapsedTime(start);
            token = CancellationToken.None;
            continue;
        }

        if (fired == -1)
        {
            stalls++;
            continue;
        }

        SelectCase done = open[fired];
        if (done == resultCase && !resultCase.IsClosed)
        {
            ledger.Output(resultCase.Value);
        }
        else if (done == lateCase && !lateCase.IsClosed)
        {
            ledger.TimedOut(lateCase.Value);
        }
        else
        {
            // A closed channel's case is always ready: drop it (Go would set the channel to nil).
            open[fired] = open[openCount - 1];
            openCount--;
        }
    }

    // The workers are gone and the producer closed the input: what is still buffered there was never taken.
    while (inputs.TryReceive(out int left))
    {
        ledger.Cancelled(left, Ledger.LeftInInput);
    }
}, new SchedulerOptions { Seed = seed });

List<string> failures = ledger.Check();
if (cancelledAt != deadline)
{
    failures.Add($"the collector's select was cancelled at {cancelledAt.TotalMilliseconds} ms, not at the deadline {deadline.TotalMilliseconds} ms");
}

foreach (string path in new[] { Ledger.Done, Ledger.Late, Ledger.NeverSent, Ledger.LeftInInput, Ledger.InWork })
{
    if (ledger.Count(path) == 0)
    {
        failures.Add($"no item ended as '{path}' under seed {seed}: that path went unchecked; choose another seed");
    }
}

Console.WriteLine($"{Items} items, {Workers} workers, a budget of {itemBudget.TotalMilliseconds} ms per item, the run cancelled at {deadline.TotalSeconds} s (virtual), seed {seed}:");
Console.WriteLine($"  {ledger.Summary()}");
Console.WriteLine($"  {(failures.Count == 0 ? "every item accounted for exactly once" : "VIOLATIONS below")}; worker idle timeouts {idleTimeouts}, collector stall timeouts {stalls}.");
foreach (string failure in failures.Take(20))
{
    Console.Error.WriteLine("FAIL: " + failure);
}

return failures.Count == 0 ? 0 : 1;

// One worker: take an item, work on it under the item's budget, hand it to the results or, out of time, to the late
// channel. The run's token ends every wait with OperationCanceledException; the item in hand is then cancelled.
async Task WorkAsync(Channel<int> inputs, Channel<Result> results, Channel<int> late, CancellationToken token)
{
    var next = inputs.ReceiveCase();
    while (true)
    {
        try
        {
            if (await Select.WaitAsync(idleTimeout, token, next) == -1)
            {
                idleTimeouts++;                        // nothing to do for a while: a producer between bursts
                continue;
            }
        }
        catch (OperationCanceledException)
        {
            return;                                    // holding nothing: a cancelled select performed no case
        }

        if (next.IsClosed)
        {
            return;
        }

        int item = next.Value;
        bool inTime;
        try
        {
            using (Tasklet.Timeout(itemBudget))
            {
                await Tasklet.Sleep(TimeSpan.FromMilliseconds(costMs[item]), token);   // the work
            }

            inTime = true;
        }
        catch (TaskletTimeoutException)
        {
            inTime = false;
        }
        catch (OperationCanceledException)
        {
            ledger.Cancelled(item, Ledger.InWork);
            return;
        }

        try
        {
            if (inTime)
            {
                await results.SendAsync(new Result(item, (long)item * item), token);
            }
            else
            {
                await late.SendAsync(item, token);
            }
        }
        catch (OperationCanceledException)
        {
            ledger.Cancelled(item, Ledger.HandingOver);    // not delivered: the send threw
            return;
        }
    }
}
