using Xunit;

namespace Tasklets.Tests.Deadlock;

/// <summary>
/// Issue 15, DESIGN "Deadlock": in deterministic mode the program is a closed world. A primitive made outside any
/// tasklet (the usual shape of a test: channels built before Run) is not externally reachable on that account, so a
/// deadlock on it is reported instead of idling forever; use by a party that is not a tasklet still makes it
/// reachable. Each Run goes on a thread of its own with a hang guard: on the build before, the first two hang.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class ClosedWorldTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    [Fact]
    public void Seeded_ChannelsMadeBeforeRun_DeadlockIsReported_NamingBoth()
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = 3 });
        var a = new Channel<int> { Name = "a" };
        var b = new Channel<int> { Name = "b" };
        s.Go(async () => await b.SendAsync(await a.ReceiveAsync()), "left");
        s.Go(async () => await a.SendAsync(await b.ReceiveAsync()), "right");
        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunGuarded(s.Run));
        Assert.Contains("'left': receive on channel 'a'", deadlock.Message, StringComparison.Ordinal);
        Assert.Contains("'right': receive on channel 'b'", deadlock.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Seeded_SemaphoreMadeBeforeRun_NobodyReleases_DeadlockIsReported()
    {
        var never = new AsyncSemaphore(0) { Name = "never" };
        Exception? failure = RunGuarded(() => Scheduler.Run(async () => await never.WaitAsync(), new SchedulerOptions { Seed = 1 }));
        DeadlockException deadlock = Assert.IsType<DeadlockException>(failure);
        Assert.Contains("semaphore 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Seeded_ChannelMadeBeforeRun_UsedByAnOsThread_IsNotADeadlock()
    {
        var feed = new Channel<int> { Name = "feed" };
        Assert.False(feed.TrySend(0)); // a party that is not a tasklet has used it: it is reachable from outside
        using var s = new Scheduler(new SchedulerOptions { Seed = 5 });
        int received = 0;
        s.Go(async () => received = await feed.ReceiveAsync(), "reader");
        var sender = new Thread(() => feed.Send(42)); // blocks until the reader takes it, whenever that is
        sender.Start();
        Assert.Null(RunGuarded(s.Run));
        Assert.True(sender.Join(s_guard), "hang guard: the sender");
        Assert.Equal(42, received);
    }

    // Runs `run` on a thread of its own and returns what it threw (null if nothing); fails if it does not return.
    private static Exception? RunGuarded(Action run)
    {
        Exception? failure = null;
        var runner = new Thread(() => failure = Record.Exception(run)) { IsBackground = true };
        runner.Start();
        Assert.True(runner.Join(s_guard), "hang guard: Run() did not return");
        return failure;
    }
}
