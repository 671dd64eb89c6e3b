using Xunit;

namespace Tasklets.Tests.Selecting;

public class SelectTests
{
    [Fact]
    public void WaitAsync_TwoReadyCases_FairOver2000Rounds()
    {
        int[] wins = new int[2];
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>(1);
            var b = new Channel<int>(1);
            var ra = a.ReceiveCase();
            var rb = b.ReceiveCase();
            for (int i = 0; i < 2000; i++)
            {
                a.TrySend(1);
                b.TrySend(2);
                int fired = await Select.WaitAsync(ra, rb);
                wins[fired]++;
                Assert.Equal(fired == 0 ? 1 : 2, fired == 0 ? ra.Value : rb.Value);
                (fired == 0 ? b : a).TryReceive(out _); // drain the other
            }
        });
        Assert.InRange(wins[0], 800, 1200);
        Assert.InRange(wins[1], 800, 1200);
    }

    [Fact]
    public void WaitAsync_BlockedWonByOneChannel_OthersBalanceZero()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>();
            var c = new Channel<int>();
            var rb = b.ReceiveCase();
            Tasklet<int> selector = Tasklet.Go(() => Select.WaitAsync(a.ReceiveCase(), rb, c.SendCase(9)).AsTask());
            await Tasklet.Yield();
            Assert.Equal(-1, a.Balance);
            Assert.Equal(-1, b.Balance);
            Assert.Equal(1, c.Balance);
            await b.SendAsync(42);
            Assert.Equal(0, a.Balance);
            Assert.Equal(0, b.Balance);
            Assert.Equal(0, c.Balance);
            Assert.Equal(1, await selector);
            Assert.Equal(42, rb.Value);
            Assert.False(c.TryReceive(out _)); // the losing send case delivered nothing
        });
    }

    [Fact]
    public void WaitAsync_ClosedChannel_ReceiveCaseFiresWithIsClosed()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>();
            var rb = b.ReceiveCase();
            b.Close();
            Assert.Equal(1, await Select.WaitAsync(a.ReceiveCase(), rb));
            Assert.True(rb.IsClosed);
            await Assert.ThrowsAsync<ChannelClosedException>(async () => await Select.WaitAsync(b.SendCase(1)));
        });
    }

    [Fact]
    public void WaitAsync_BlockedThenClosed_Fires()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var ra = a.ReceiveCase();
            Tasklet<int> t = Tasklet.Go(() => Select.WaitAsync(ra).AsTask());
            await Tasklet.Yield();
            a.Close();
            Assert.Equal(0, await t);
            Assert.True(ra.IsClosed);
        });
    }

    [Fact]
    public void Try_NothingReady_MinusOneAndNoEffect()
    {
        var a = new Channel<int>();
        var b = new Channel<int>(1);
        b.TrySend(1);
        var sendB = b.SendCase(2);
        Assert.Equal(-1, Select.Try(a.ReceiveCase(), sendB));
        Assert.Equal(1, b.Count);
        var rb = b.ReceiveCase();
        Assert.Equal(1, Select.Try(a.ReceiveCase(), rb));
        Assert.Equal(1, rb.Value);
    }

    [Fact]
    public void WaitAsync_Timeout_MinusOneOnVirtualClock()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            DateTimeOffset start = Scheduler.Current!.Time.GetUtcNow();
            Assert.Equal(-1, await Select.WaitAsync(TimeSpan.FromSeconds(5), a.ReceiveCase()));
            Assert.Equal(TimeSpan.FromSeconds(5), Scheduler.Current!.Time.GetUtcNow() - start);
            Assert.Equal(0, a.Balance);
        }, new SchedulerOptions { Seed = 1 });
    }

    [Fact]
    public void WaitAsync_SameCaseTwice_ArgumentException()
    {
        var a = new Channel<int>(1);
        a.TrySend(1);
        var ra = a.ReceiveCase();
        Assert.Throws<ArgumentException>(() => { _ = Select.WaitAsync(ra, ra); });
    }

    [Fact]
    public void WaitAsync_MoreThan65535Cases_ArgumentExceptionNamesTheLimit()
    {
        var a = new Channel<int>();
        var cases = new SelectCase[ushort.MaxValue + 1];
        for (int i = 0; i < cases.Length; i++)
        {
            cases[i] = a.ReceiveCase();
        }

        ArgumentException e = Assert.Throws<ArgumentException>(() => { _ = Select.WaitAsync(cases); });
        Assert.Contains("at most 65535 cases", e.Message);
        Assert.Equal(0, a.Balance);
    }

    [Fact]
    public void DoubleSelect_ManySendersThreeChannels_EveryValueOnce()
    {
        // After Go's test/chan/doubleselect.go: senders select-send over three channels; every value arrives once.
        var received = new List<int>();
        Scheduler.Run(async () =>
        {
            Channel<int>[] chans = [new(), new(), new()];
            var done = new Channel<int>(8);
            const int Senders = 4, PerSender = 500;
            for (int s = 0; s < Senders; s++)
            {
                int id = s;
                Tasklet.Go(async () =>
                {
                    SendCase<int>[] cases = [chans[0].SendCase(0), chans[1].SendCase(0), chans[2].SendCase(0)];
                    for (int i = 0; i < PerSender; i++)
                    {
                        foreach (SendCase<int> c in cases)
                        {
                            c.Item = (id * PerSender) + i;
                        }

                        await Select.WaitAsync(cases[0], cases[1], cases[2]);
                    }

                    await done.SendAsync(id);
                });
            }

            var receivers = chans.Select(c => Tasklet.Go(async () =>
            {
                var mine = new List<int>();
                try
                {
                    while (true)
                    {
                        mine.Add(await c.ReceiveAsync());
                    }
                }
                catch (ChannelClosedException)
                {
                }

                return mine;
            })).ToArray();
            for (int s = 0; s < Senders; s++)
            {
                await done.ReceiveAsync();
            }

            foreach (Channel<int> c in chans)
            {
                c.Close();
            }

            foreach (Tasklet<List<int>> r in receivers)
            {
                received.AddRange(await r);
            }
        });
        received.Sort();
        Assert.Equal(Enumerable.Range(0, 2000), received);
    }

    [Fact]
    public void SteadyState_ReusedCases_AllocateNothing()
    {
        var a = new Channel<int>(4);
        var b = new Channel<int>(4);
        var ra = a.ReceiveCase();
        var rb = b.ReceiveCase();
        void Loop(int n)
        {
            for (int i = 0; i < n; i++)
            {
                a.TrySend(i);
                b.TrySend(i);
                Select.Try(ra, rb);
                Select.Try(ra, rb);
                Select.Try(ra, rb);
            }
        }

        Loop(1000); // warm-up
        long before = GC.GetAllocatedBytesForCurrentThread();
        Loop(10_000);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
