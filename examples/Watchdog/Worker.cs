using Tasklets;

namespace Watchdog;

/// <summary>How a planned hang looks from the outside: in both, the worker stops beating and stays killable.</summary>
internal enum HangKind
{
    /// <summary>Blocked on a receive from a channel nobody will ever send on (a lost reply).</summary>
    BlockedOnReply,

    /// <summary>Alive and busy, sleeping and retrying in a loop that never reaches the next beat.</summary>
    RetryingForever,
}

/// <summary>
/// One incarnation of a worker: its seeded plan (beat intervals, whether and how it hangs) and what it did. One
/// scheduler, one thread: the fields need no synchronisation.
/// </summary>
internal sealed class Incarnation
{
    /// <summary>Worker 0 is slow but healthy: it beats just inside the watchdog's timeout and never hangs.</summary>
    public const int SlowWorker = 0;

    private readonly Random _random;

    public Incarnation(int seed, int worker, int incarnation, TimeSpan startedAt)
    {
        Worker = worker;
        Number = incarnation;
        StartedAt = startedAt;
        _random = new Random(unchecked((seed * 1_000_003) + (worker * 10_007) + incarnation) & int.MaxValue); // not HashCode: it is seeded per process
        if (worker != SlowWorker && _random.Next(3) != 0)
        {
            HangAfterBeat = _random.Next(3, 60);
            Kind = _random.Next(2) == 0 ? HangKind.BlockedOnReply : HangKind.RetryingForever;
        }
    }

    public int Worker { get; }

    public int Number { get; }

    public TimeSpan StartedAt { get; }

    /// <summary>The beat after which this incarnation hangs; 0 if it never does.</summary>
    public int HangAfterBeat { get; }

    public HangKind Kind { get; }

    public int Beats { get; set; }

    /// <summary>When it hung (stopped for good short of its next beat); null while it has not.</summary>
    public TimeSpan? HungAt { get; set; }

    public int FinallyBlocksRun { get; set; }

    public TimeSpan MinInterval { get; private set; } = TimeSpan.MaxValue;

    public TimeSpan MaxInterval { get; private set; }

    public string Name => $"worker {Worker}.{Number}";

    /// <summary>The work between two beats: 190-199 ms for the slow worker, 20-150 ms for the others.</summary>
    public TimeSpan NextInterval()
    {
        var interval = TimeSpan.FromMilliseconds(Worker == SlowWorker ? _random.Next(190, 200) : _random.Next(20, 151));
        MinInterval = interval < MinInterval ? interval : MinInterval;
        MaxInterval = interval > MaxInterval ? interval : MaxInterval;
        return interval;
    }
}

internal static class Worker
{
    /// <summary>
    /// A worker: work, then beat (an unbuffered send: the watchdog is waiting for it), until it is killed or its plan
    /// makes it hang. The finally block is the cleanup a kill must reach.
    /// </summary>
    public static async Task RunAsync(Incarnation self, Channel<int> beats, Func<TimeSpan> now)
    {
        try
        {
            for (int beat = 1; ; beat++)
            {
                await Tasklet.Sleep(self.NextInterval());
                if (self.HangAfterBeat > 0 && beat == self.HangAfterBeat + 1)
                {
                    self.HungAt = now();
                    await HangAsync(self.Kind);
                }

                await beats.SendAsync(beat);
                self.Beats++;
            }
        }
        finally
        {
            self.FinallyBlocksRun++;
        }
    }

    private static async Task HangAsync(HangKind kind)
    {
        if (kind == HangKind.BlockedOnReply)
        {
            var reply = new Channel<int> { Name = "a reply that never comes" };
            _ = await reply.ReceiveAsync();
        }

        while (true)
        {
            await Tasklet.Sleep(TimeSpan.FromMilliseconds(25));
        }
    }
}
