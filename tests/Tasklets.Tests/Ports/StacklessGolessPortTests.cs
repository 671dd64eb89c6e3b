using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Ports;

/// <summary>
/// Scenarios from Stackless's test_channel.py / test_miscell.py and goless's tests
/// (../shared/reference/stackless-goless.md §4), in our semantics. Where ours differ, the comment says how.
/// </summary>
public class StacklessGolessPortTests
{
    // Stackless test_channel 1 and 2: a blocked sender makes balance 1, a blocked receiver -1.
    [Fact]
    public void Stackless_BlockedSenderAndReceiver_Balance()
    {
        using var s = new Scheduler();
        var c = new Channel<int>();
        Tasklet sender = s.Go(async () => await c.SendAsync(1));
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Blocked, sender.State);
        Assert.Equal(1, c.Balance);
        Assert.True(c.TryReceive(out _));
        s.RunUntilIdle();
        Tasklet receiver = s.Go(async () => await c.ReceiveAsync());
        s.RunUntilIdle();
        Assert.Equal(-1, c.Balance);
        Assert.True(c.TrySend(2));
        s.RunUntilIdle();
        Assert.False(receiver.IsAlive);
    }

    // Stackless test_channel 4: a blocked sender's value is received, then the now runnable sender is killed.
    [Fact]
    public void Stackless_ReceiveFromBlockedSenderThenKillIt()
    {
        using var s = new Scheduler();
        var c = new Channel<string>();
        Tasklet sender = s.Go(async () => { await c.SendAsync("value"); await Tasklet.Yield(); });
        s.RunUntilIdle();
        Assert.True(c.TryReceive(out string? v));
        Assert.Equal("value", v);
        sender.Kill();
        s.RunUntilIdle();
        Assert.False(sender.IsAlive);
        Assert.IsType<TaskletExitException>(sender.Exception);
    }

    // Stackless test_channel 5 / goless test 11-12: a lone receive or send is a deadlock, reported as such.
    // Ours: Run() throws DeadlockException naming the tasklet (Stackless raises RuntimeError in it).
    [Fact]
    public void Stackless_LoneReceive_Deadlock()
    {
        Assert.Throws<DeadlockException>(() => Scheduler.Run(async () => await new Channel<int>().ReceiveAsync()));
        Assert.Throws<DeadlockException>(() => Scheduler.Run(async () => await new Channel<int>().SendAsync(1)));
    }

    // Stackless test_channel 6: cross-thread echo: a master tasklet on another thread's scheduler sends until QUIT.
    [Fact]
    public void Stackless_CrossThreadEcho()
    {
        var c = new Channel<string>();
        var got = new List<string>();
        using var master = new Scheduler();
        using var slave = new Scheduler();
        master.Go(async () =>
        {
            foreach (string m in new[] { "ECHO 1", "ECHO 2", "ECHO 3", "QUIT" })
            {
                await c.SendAsync(m);
            }
        });
        slave.Go(async () =>
        {
            string m;
            while ((m = await c.ReceiveAsync()) != "QUIT")
            {
                got.Add(m);
            }
        });
        var thread = new Thread(() => master.Run()) { IsBackground = true };
        thread.Start();
        slave.Run();
        Assert.True(thread.Join(TimeSpan.FromSeconds(30)));
        Assert.Equal(["ECHO 1", "ECHO 2", "ECHO 3"], got);
    }

    // Stackless test_channel 7: send_exception: the receiver raises the exception with its arguments.
    [Fact]
    public void Stackless_SendException_ReceiverRaisesIt()
    {
        Scheduler.Run(async () =>
        {
            var c = new Channel<int>();
            Tasklet.Go(async () => { await Tasklet.Yield(); c.SendException(new ArgumentException("1, 2, 3")); });
            var ex = await Assert.ThrowsAsync<ArgumentException>(async () => await c.ReceiveAsync());
            Assert.Equal("1, 2, 3", ex.Message);
        });
    }

    // Stackless test_channel 13-15 and goless 17-21: after close, send and receive raise; iteration stops.
    [Fact]
    public void Stackless_Closed_SendReceiveIterate()
    {
        Scheduler.Run(async () =>
        {
            var c = new Channel<int>(2);
            c.Close();
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.SendAsync(1));
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.ReceiveAsync());
            await foreach (int _ in c)
            {
                Assert.Fail("a closed, drained channel yields nothing");
            }
        });
    }

    // goless test_channels: closing with a buffer [1, 2]: the buffer drains, then receive raises.
    // Ours also wakes blocked senders with ChannelClosedException, like goless's "Channel closed while sending".
    [Fact]
    public void Goless_CloseBufferedThenDrain()
    {
        Scheduler.Run(async () =>
        {
            var c = new Channel<int>(2);
            await c.SendAsync(1);
            await c.SendAsync(2);
            Tasklet blockedSender = Tasklet.Go(async () => await c.SendAsync(3));
            await Tasklet.Yield();
            c.Close();
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await blockedSender);
            Assert.Equal(1, await c.ReceiveAsync());
            Assert.Equal(2, await c.ReceiveAsync());
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await c.ReceiveAsync());
        });
    }

    // goless test_select: a select over a ready and a not-ready case runs the ready one; with a default and
    // nothing ready it returns the default without switching. Ours picks uniformly among ready cases (Go), not
    // the first ready one (goless).
    [Fact]
    public void Goless_SelectReadyCaseAndDefault()
    {
        Scheduler.Run(async () =>
        {
            var ready = new Channel<int>(1);
            var empty = new Channel<int>();
            ready.TrySend(5);
            var rr = ready.ReceiveCase();
            Assert.Equal(1, await Select.WaitAsync(empty.ReceiveCase(), rr));
            Assert.Equal(5, rr.Value);
            bool otherRan = false;
            Tasklet.Go(() => { otherRan = true; return Task.CompletedTask; });
            Assert.Equal(-1, Select.Try(empty.ReceiveCase(), rr));
            Assert.False(otherRan); // the default case never yields
        });
    }

    // goless test_select: a blocking select with no ready case waits for a sender (goless busy-polls; ours parks).
    [Fact]
    public void Goless_BlockingSelectWaitsForSender()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<string>();
            var b = new Channel<string>();
            Tasklet.Go(async () => { await Tasklet.Yield(); await b.SendAsync("from b"); });
            var rb = b.ReceiveCase();
            Assert.Equal(1, await Select.WaitAsync(a.ReceiveCase(), rb));
            Assert.Equal("from b", rb.Value);
        });
    }

    // Stackless test_miscell kill tests: killing a tasklet blocked on a channel restores the balance (-1 -> 0)
    // and runs its finally; killing a never-run tasklet means its body never runs; killing a dead one is a no-op.
    [Fact]
    public void Stackless_KillCases()
    {
        Scheduler.Run(async () =>
        {
            var c = new Channel<int>();
            bool cleaned = false, neverRan = true;
            Tasklet blocked = Tasklet.Go(async () => { try { await c.ReceiveAsync(); } finally { cleaned = true; } });
            Tasklet fresh = Tasklet.Go(() => { neverRan = false; return Task.CompletedTask; });
            fresh.Kill();
            await Tasklet.Yield();
            Assert.Equal(-1, c.Balance);
            await blocked.KillAndJoinAsync();
            Assert.Equal(0, c.Balance);
            Assert.True(cleaned);
            Assert.True(neverRan);
            blocked.Kill(); // dead: no-op
        });
    }
}
