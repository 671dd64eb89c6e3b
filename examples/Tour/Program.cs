// The README's tour as a program that runs and checks itself. Each 'tour:begin <name>' region below is a code block of
// README.md, word for word (tests/Tasklets.Tests/Docs/ReadmeTourTests.cs compares them, whitespace aside); the code
// around a region sets up what it uses and checks what it did. Exits non-zero on a wrong result.
//
//   dotnet run --project examples/Tour
// tour:begin first
using Tasklets;

int total = Scheduler.Run(async () =>
{
    var jobs = new Channel<int>(capacity: 10) { Name = "jobs" };
    var results = new Channel<int> { Name = "results" };        // unbuffered: a send waits for a receiver

    for (int w = 0; w < 3; w++)
    {
        _ = Tasklet.Go(async () =>                              // "_ =": it runs on its own (else CS4014)
        {
            await foreach (int job in jobs)                     // ends when jobs is closed and drained
            {
                await results.SendAsync(job * job);
            }
        }, name: $"worker {w}");
    }

    _ = Tasklet.Go(async () =>
    {
        for (int i = 1; i <= 100; i++)
        {
            await jobs.SendAsync(i);
        }

        jobs.Close();
    }, name: "producer");

    int sum = 0;
    for (int i = 0; i < 100; i++)
    {
        sum += await results.ReceiveAsync();
    }

    return sum;                                                 // Run returns; leftover tasklets are killed
});
// tour:end

var seeded = new SchedulerOptions { Seed = 16 };
(string Section, Outcome Outcome)[] outcomes =
[
    ("a tour: three workers square 1..100", new Outcome(total == 338_350, $"main summed {total}")),
    ("select, timeouts, kill", Scheduler.Run(Sections.SelectTimeoutsAndKillAsync, seeded)),
    ("host loops", Sections.HostLoop()),
    ("coordination and structure", Scheduler.Run(Sections.CoordinationAsync, seeded)),
    ("deterministic tests", Sections.DeterministicTests()),
    ("threads", Sections.Threads()),
    ("System.Threading.Channels beside Tasklets", Scheduler.Run(Sections.BclChannelsAsync)),
];

foreach ((string section, Outcome outcome) in outcomes)
{
    (outcome.Ok ? Console.Out : Console.Error).WriteLine($"{(outcome.Ok ? "ok  " : "FAIL")} {section}: {outcome.Detail}");
}

return outcomes.All(o => o.Outcome.Ok) ? 0 : 1;

/// <summary>What a section checked: whether it held, and what it saw.</summary>
internal sealed record Outcome(bool Ok, string Detail);

/// <summary>The tour's sections after the first, one method each, around their regions.</summary>
internal static class Sections
{
    public static async Task<Outcome> SelectTimeoutsAndKillAsync()
    {
        var a = new Channel<int>(capacity: 1) { Name = "a" };
        var b = new Channel<int>(capacity: 1) { Name = "b" };
        var replies = new Channel<int> { Name = "replies" };
        var handled = new List<int>();
        bool workerCleanedUp = false;
        _ = a.TrySend(7);
        _ = Tasklet.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromMilliseconds(50));
            await replies.SendAsync(42);
        }, "replier");

        // tour:begin select
        var fromA = a.ReceiveCase();                  // reusable case objects: a select allocates nothing
        var fromB = b.ReceiveCase();
        switch (await Select.WaitAsync(TimeSpan.FromSeconds(1), fromA, fromB))
        {
            case 0: Handle(fromA.Value); break;       // among ready cases one is picked uniformly at random
            case 1: Handle(fromB.IsClosed ? -1 : fromB.Value); break;
            case -1: Console.WriteLine("nothing within a second"); break;
        }

        int polled = Select.Try(fromA, fromB);        // the default case: -1 if nothing is ready

        using (Tasklet.Timeout(TimeSpan.FromMilliseconds(200)))
        {
            int reply = await replies.ReceiveAsync(); // throws TaskletTimeoutException at the deadline; nothing is lost
            Handle(reply);
        }

        Tasklet worker = Tasklet.Go(WorkAsync);       // runs once this tasklet awaits
        await Tasklet.Yield();
        await worker.KillAndJoinAsync();              // TaskletExitException where it blocks; returns after its finally
        // tour:end

        bool ok = handled.SequenceEqual([7, 42]) && polled == -1 && worker.State == TaskletState.Dead && workerCleanedUp;
        return new Outcome(ok, $"handled [{string.Join(", ", handled)}], polled {polled}, worker {worker.State}, its finally block ran: {workerCleanedUp}");

        void Handle(int value) => handled.Add(value);

        async Task WorkAsync()
        {
            try
            {
                await Tasklet.Sleep(TimeSpan.FromHours(1));
            }
            finally
            {
                workerCleanedUp = true;
            }
        }
    }

    public static Outcome HostLoop()
    {
        bool gameRunning = true;
        int frames = 0;
        int moves = 0;

        // tour:begin host-loop
        var scheduler = new Scheduler();
        scheduler.Go(EnemyAiAsync);
        while (gameRunning)
        {
            scheduler.RunFor(TimeSpan.FromMilliseconds(4)); // the watchdog: returns at the next switch after 4 ms
            Render();
        }
        // tour:end

        bool alive = scheduler.Tasklets.Count == 1;
        scheduler.Dispose();
        return new Outcome(frames == 3 && moves >= frames && alive, $"{frames} frames, the AI tasklet moved {moves} times and was still alive");

        void Render() => gameRunning = ++frames < 3;

        async Task EnemyAiAsync()
        {
            while (true)
            {
                moves++;
                await Tasklet.Yield();
            }
        }
    }

    public static async Task<Outcome> CoordinationAsync()
    {
        string[] urls = ["https://example.org/a", "https://example.org/b", "https://example.org/c"];
        var fetched = new List<string>();
        var jobs = new Channel<int> { Name = "jobs" };
        int writes = 0;

        // tour:begin coordination
        await using (var group = new TaskletGroup("fetch"))      // children cannot outlive the block
        {
            foreach (string url in urls)
            {
                _ = group.Go(() => FetchAsync(url));             // the first failure kills the siblings and is rethrown
            }
        }

        var db = new AsyncLock { Name = "db" };
        using (await db.LockAsync()) { await WriteAsync(); }      // FIFO handoff; Dump: "acquire of lock 'db' held by ..."

        var writers = new WaitGroup { Name = "writers" };         // Go's sync.WaitGroup; also AsyncSemaphore, AsyncCondition,
        writers.Add(2);                                           // AsyncManualResetEvent, AsyncBarrier
        Tasklet a = Tasklet.Go(async () => { await WriteAsync(); writers.Done(); });
        Tasklet b = Tasklet.Go(async () => { await WriteAsync(); writers.Done(); });
        await writers.WaitAsync();
        await Tasklet.WhenAll(a, b);                              // joins that deadlock detection sees; t.AsTask() for Task.WhenAll

        var job = jobs.ReceiveCase();
        var locked = db.LockCase();
        if (await Select.WaitAsync(job, locked) == 1)             // a message or the lock, whichever comes first
        {
            using (locked.Releaser) { await WriteAsync(); }       // a lock case that fired holds the lock: release it
        }
        // tour:end

        bool ok = fetched.Order().SequenceEqual(urls) && writes == 4 && !db.IsLocked && writers.Count == 0;
        return new Outcome(ok, $"fetched {fetched.Count} urls in a group, {writes} writes (one under the lock, two by joined tasklets, one under the select's lock case), lock free at the end: {!db.IsLocked}");

        async Task FetchAsync(string url)
        {
            await Tasklet.Sleep(TimeSpan.FromMilliseconds(10));
            fetched.Add(url);
        }

        async Task WriteAsync()
        {
            await Tasklet.Yield();
            writes++;
        }
    }

    public static Outcome DeterministicTests()
    {
        // tour:begin deterministic
        // Virtual clock: an hour of Tasklet.Sleep takes microseconds. Same seed, same interleaving.
        Scheduler.Run(MyConcurrentCodeAsync, new SchedulerOptions { Seed = 42 });

        // Explore 1,000 interleavings; the exception names the failing seed, and Explore.Replay(seed, body) repeats it.
        Explore.Run(1000, MyConcurrentCodeAsync);
        // tour:end

        // The same exploration finds the lost deposit of the version without the lock, and its seed replays it.
        try
        {
            Explore.Run(1000, RacyCodeAsync);
            return new Outcome(false, "Explore found no interleaving that loses a deposit without the lock");
        }
        catch (ExplorationException found)
        {
            try
            {
                Explore.Replay(found.Seed, RacyCodeAsync);
                return new Outcome(false, $"seed {found.Seed} failed in Explore.Run but not in Explore.Replay");
            }
            catch (InvalidOperationException replayed)
            {
                return new Outcome(true, $"1,000 interleavings of the locked deposits passed; without the lock, seed {found.Seed} {replayed.Message}, and its replay too");
            }
        }
    }

    public static Outcome Threads()
    {
        string file = Path.Combine(Path.GetTempPath(), $"tasklets-tour-{Environment.ProcessId}.txt");
        File.WriteAllText(file, "tasklets");
        var counters = new List<int>();
        using var scheduler = new Scheduler();                    // another scheduler, run on a thread of its own
        IDisposable hold = scheduler.KeepAlive();
        Task running = scheduler.RunAsync();
        try
        {
            (int digest, string text) = Scheduler.Run(async () =>
            {
                int batch = 5;

                // tour:begin threads
                int digest = await Tasklet.RunInThread(token => Hash(file, token)); // CPU or blocking work on a thread of its own; killable
                string text = await File.ReadAllTextAsync(file, Tasklet.Current!.CancellationToken); // a foreign await that a kill cancels
                await scheduler.InvokeAsync(() => counters.Add(batch));             // from any thread: run as one of its steps
                // tour:end

                return (digest, text);
            });
            hold.Dispose();
            running.GetAwaiter().GetResult();
            bool ok = digest == Hash(file, CancellationToken.None) && text == "tasklets" && counters.SequenceEqual([5]);
            return new Outcome(ok, $"digest {digest} from a thread, '{text}' from a foreign await, counters [{string.Join(", ", counters)}] added on the other scheduler");
        }
        finally
        {
            hold.Dispose();
            File.Delete(file);
        }
    }

    public static async Task<Outcome> BclChannelsAsync()
    {
        // tour:begin bcl-channel
        Bcl.Channel<int> queue = Bcl.Channel.CreateUnbounded<int>();        // System.Threading.Channels, via the alias
        var squares = new Channel<int>(capacity: 10) { Name = "squares" };  // Tasklets.Channel<T>
        _ = Task.Run(async () =>                                            // plain async code on the thread pool
        {
            for (int i = 1; i <= 3; i++)
            {
                await queue.Writer.WriteAsync(i);
            }

            queue.Writer.Complete();
        });
        await foreach (int item in queue.Reader.ReadAllAsync())             // a foreign await: resumes on the scheduler
        {
            await squares.SendAsync(item * item);
        }
        // tour:end

        squares.Close();
        int sum = 0;
        while (squares.TryReceive(out int square))
        {
            sum += square;
        }

        return new Outcome(sum == 14, $"squares of a System.Threading.Channels channel's items sum to {sum}");
    }

    // Two deposits of an hour each into one balance, read-yield-write under a lock: never loses one.
    private static async Task MyConcurrentCodeAsync()
    {
        var gate = new AsyncLock { Name = "balance" };
        int balance = 0;
        await Tasklet.WhenAll(Tasklet.Go(() => DepositAsync(10)), Tasklet.Go(() => DepositAsync(20)));
        if (balance != 30)
        {
            throw new InvalidOperationException($"lost a deposit: the balance is {balance}");
        }

        async Task DepositAsync(int amount)
        {
            await Tasklet.Sleep(TimeSpan.FromHours(1));
            using (await gate.LockAsync())
            {
                int read = balance;
                await Tasklet.Yield();
                balance = read + amount;
            }
        }
    }

    // The same without the lock: two deposits that both read before either writes lose one.
    private static async Task RacyCodeAsync()
    {
        int balance = 0;
        await Tasklet.WhenAll(Tasklet.Go(() => DepositAsync(10)), Tasklet.Go(() => DepositAsync(20)));
        if (balance != 30)
        {
            throw new InvalidOperationException($"lost a deposit: the balance is {balance}");
        }

        async Task DepositAsync(int amount)
        {
            await Tasklet.Sleep(TimeSpan.FromHours(1));
            int read = balance;
            await Tasklet.Yield();
            balance = read + amount;
        }
    }

    private static int Hash(string file, CancellationToken token)
    {
        int hash = 17;
        foreach (byte b in File.ReadAllBytes(file))
        {
            token.ThrowIfCancellationRequested();
            hash = unchecked((hash * 31) + b);
        }

        return hash;
    }
}
