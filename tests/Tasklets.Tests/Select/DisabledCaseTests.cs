using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Selecting;

/// <summary>
/// Go's nil channel in a select: <see cref="SelectCase.IsEnabled"/> switches a case off without rebuilding the list,
/// and the <see cref="List{T}"/> overloads select over a list built once (issue 16: porting powser1.go needed both).
/// </summary>
public class DisabledCaseTests
{
    [Fact]
    public void WaitAsync_DisabledReadyCase_NeverFiresAndTheEnabledOneKeepsItsIndex()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>(1);
            var b = new Channel<int>(1);
            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            fromA.IsEnabled = false;
            for (int i = 0; i < 50; i++) // a random pick among ready cases would choose a ready disabled case half the time
            {
                a.TrySend(1);
                b.TrySend(2);
                Assert.Equal(1, await Select.WaitAsync(fromA, fromB));
                Assert.Equal(2, fromB.Value);
                Assert.True(a.TryReceive(out int left)); // the disabled case took nothing
                Assert.Equal(1, left);
            }
        });
    }

    [Fact]
    public void WaitAsync_DisabledCase_DoesNotWaitOnItsChannel()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>();
            ReceiveCase<int> fromA = a.ReceiveCase();
            SendCase<int> toB = b.SendCase(5);
            toB.IsEnabled = false;
            Tasklet<int> selector = Tasklet.Go(() => Select.WaitAsync(fromA, toB).AsTask());
            await Tasklet.Yield();
            Assert.Equal(-1, a.Balance); // parked on the enabled case
            Assert.Equal(0, b.Balance);  // and not on the disabled one
            Assert.False(b.TryReceive(out _));
            await a.SendAsync(7);
            Assert.Equal(0, await selector);
            Assert.Equal(7, fromA.Value);
        });
    }

    [Fact]
    public void WaitAsync_CaseEnabledAgain_FiresInTheNextSelect()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>(1);
            var b = new Channel<int>();
            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            a.TrySend(3);
            fromA.IsEnabled = false;
            Assert.Equal(-1, Select.Try(fromA, fromB));
            fromA.IsEnabled = true;
            Assert.True(fromA.IsEnabled);
            Assert.Equal(0, await Select.WaitAsync(fromA, fromB));
            Assert.Equal(3, fromA.Value);
        });
    }

    [Fact]
    public void Try_EveryCaseDisabled_ReturnsMinusOneEvenWhenTheyAreReady()
    {
        var a = new Channel<int>(1);
        a.TrySend(1);
        var b = new Channel<int>(1);
        ReceiveCase<int> fromA = a.ReceiveCase();
        SendCase<int> toB = b.SendCase(2);
        fromA.IsEnabled = false;
        toB.IsEnabled = false;
        Assert.Equal(-1, Select.Try(fromA, toB));
        Assert.Equal(1, a.Count);
        Assert.Equal(0, b.Count);
    }

    [Fact]
    public void WaitAsync_EveryCaseDisabledWithATimeout_WaitsForTheTimeout()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        var a = new Channel<int>(1);
        a.TrySend(1);
        ReceiveCase<int> fromA = a.ReceiveCase();
        fromA.IsEnabled = false;
        int fired = 0;
        TimeSpan waited = default;
        s.Go(async () =>
        {
            DateTimeOffset start = s.Time.GetUtcNow();
            fired = await Select.WaitAsync(TimeSpan.FromSeconds(2), fromA);
            waited = s.Time.GetUtcNow() - start;
        });
        Assert.False(s.RunFor(TimeSpan.FromSeconds(30)));
        Assert.Equal(-1, fired);
        Assert.Equal(TimeSpan.FromSeconds(2), waited); // virtual time: exact
        Assert.Equal(1, a.Count);
    }

    [Fact]
    public void WaitAsync_EveryCaseDisabledWithAToken_WaitsUntilCancelled()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        ReceiveCase<int> fromA = new Channel<int>().ReceiveCase();
        fromA.IsEnabled = false;
        Exception? selected = null;
        s.Go(async () => selected = await Record.ExceptionAsync(async () => await Select.WaitAsync(cts.Token, fromA)));
        s.RunUntilIdle();
        Assert.Null(selected);
        cts.Cancel();
        s.RunUntilIdle();
        Assert.IsAssignableFrom<OperationCanceledException>(selected);
    }

    [Fact]
    public void WaitAsync_EveryCaseDisabledAndNothingCouldEndIt_Throws()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            ReceiveCase<int> fromA = a.ReceiveCase();
            fromA.IsEnabled = false;
            var e = await Assert.ThrowsAsync<InvalidOperationException>(async () => await Select.WaitAsync(fromA));
            Assert.Contains("disabled", e.Message);
            Assert.Equal(0, a.Balance);
            Assert.False(fromA.IsClosed);
            fromA.IsEnabled = true; // the refused select left the case usable
            a.Close();
            Assert.Equal(0, await Select.WaitAsync(fromA));
            Assert.True(fromA.IsClosed);
        });
    }

    [Fact]
    public void WaitAsync_DisabledSendCaseOnAClosedChannel_DoesNotThrow()
    {
        Scheduler.Run(async () =>
        {
            var closed = new Channel<int>(1);
            closed.Close();
            var open = new Channel<int>(1);
            SendCase<int> toClosed = closed.SendCase(1);
            SendCase<int> toOpen = open.SendCase(2);
            toClosed.IsEnabled = false;
            Assert.Equal(1, await Select.WaitAsync(toClosed, toOpen));
            Assert.Equal(1, open.Count);
        });
    }

    [Fact]
    public void WaitAsync_List_SelectsOverAKeptListAndReturnsItsIndex()
    {
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>(1);
            var b = new Channel<int>(1);
            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            var cases = new List<SelectCase> { fromA, fromB };
            b.TrySend(9);
            Assert.Equal(1, await Select.WaitAsync(cases));
            Assert.Equal(9, fromB.Value);
            Assert.Equal(-1, Select.Try(cases));
            Assert.Equal(-1, await Select.WaitAsync(cases, TimeSpan.Zero));
            a.TrySend(4);
            cases.Reverse(); // read at each call only: the index is the list's of that call
            Assert.Equal(1, Select.Try(cases));
            Assert.Equal(4, fromA.Value);
            a.TrySend(6); // any other read-only list: copied for the call
            Assert.Equal(1, await Select.WaitAsync(cases.AsReadOnly()));
            Assert.Equal(6, fromA.Value);
            Assert.Equal(-1, Select.Try(cases.AsReadOnly()));
        });
    }

    [Fact]
    public void WaitAsync_ListWithTimeoutAndToken_EndsAsTheSpanOverloads()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        var cases = new List<SelectCase> { new Channel<int>().ReceiveCase() };
        int timedOut = 0;
        Exception? cancelled = null;
        s.Go(async () => timedOut = await Select.WaitAsync(cases, TimeSpan.FromSeconds(1), cts.Token));
        Assert.False(s.RunFor(TimeSpan.FromSeconds(30)));
        Assert.Equal(-1, timedOut);
        s.Go(async () => cancelled = await Record.ExceptionAsync(async () => await Select.WaitAsync(cases, cts.Token)));
        s.RunUntilIdle();
        cts.Cancel();
        s.RunUntilIdle();
        Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
    }

    [Fact]
    public void List_Null_Throws()
    {
        Assert.Throws<ArgumentNullException>(() => Select.Try((IReadOnlyList<SelectCase>)null!));
        Assert.Throws<ArgumentNullException>(() => Select.WaitAsync((IReadOnlyList<SelectCase>)null!));
        Assert.Throws<ArgumentNullException>(() => Select.WaitAsync((IReadOnlyList<SelectCase>)null!, TimeSpan.Zero));
    }

    [Fact]
    public void WaitAsync_MergeUntilBothClosed_SwitchesEachClosedChannelOff()
    {
        // Go's idiom: set a drained channel to nil so that the select stops choosing it, until both are nil.
        var merged = new List<int>();
        Scheduler.Run(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>();
            _ = Tasklet.Go(async () =>
            {
                for (int i = 0; i < 5; i++)
                {
                    await a.SendAsync(i);
                }

                a.Close();
            });
            _ = Tasklet.Go(async () =>
            {
                for (int i = 100; i < 103; i++)
                {
                    await b.SendAsync(i);
                }

                b.Close();
            });
            ReceiveCase<int> fromA = a.ReceiveCase();
            ReceiveCase<int> fromB = b.ReceiveCase();
            var cases = new List<SelectCase> { fromA, fromB };
            int closedSeen = 0;
            // Bounded: a disabled closed case that still fired would spin here without ever yielding to the senders.
            for (int round = 0; round < 100 && (fromA.IsEnabled || fromB.IsEnabled); round++)
            {
                ReceiveCase<int> fired = await Select.WaitAsync(cases) == 0 ? fromA : fromB;
                if (fired.IsClosed)
                {
                    closedSeen++;
                    fired.IsEnabled = false;
                }
                else
                {
                    merged.Add(fired.Value);
                }
            }

            Assert.False(fromA.IsEnabled || fromB.IsEnabled);
            Assert.Equal(2, closedSeen); // each closed channel fired once, then never again
        });
        Assert.Equal([0, 1, 2, 3, 4, 100, 101, 102], merged.Order());
    }

    [Fact]
    public void WaitAsync_MixedEnabledAndDisabledCasesOnOneChannelAcrossThreads_NoItemIsLostOrTakenByADisabledCase()
    {
        // Conservation under cross-thread partners: producers on plain threads select over two send cases on one
        // rendezvous channel (one, the other or both enabled, with the same item) and a disabled receive on it;
        // consumers in tasklets of two schedulers on two threads select over two receive cases (likewise toggled) and a
        // disabled send of -1, all with a short timeout so that registrations are withdrawn often. Every item a
        // producer's select reports sent is received exactly once; nothing disabled ever fires.
        const int Producers = 2;
        const int PerProducer = 1500;
        var ch = new Channel<int>();
        var received = new System.Collections.Concurrent.ConcurrentBag<int>();
        var sent = new System.Collections.Concurrent.ConcurrentBag<int>();
        int disabledFired = 0;

        Scheduler[] schedulers = [new Scheduler(), new Scheduler()];
        for (int c = 0; c < schedulers.Length; c++)
        {
            bool useList = c == 0;
            schedulers[c].Go(async () =>
            {
                ReceiveCase<int> rA = ch.ReceiveCase();
                ReceiveCase<int> rB = ch.ReceiveCase();
                SendCase<int> bogus = ch.SendCase(-1);
                bogus.IsEnabled = false;
                SelectCase[] array = [rA, rB, bogus];
                IReadOnlyList<SelectCase> cases = useList ? new List<SelectCase>(array) : array;
                var random = new Random(c);
                while (true)
                {
                    int mode = random.Next(3);
                    rA.IsEnabled = mode != 1;
                    rB.IsEnabled = mode != 0;
                    int fired = await Select.WaitAsync(cases, TimeSpan.FromMilliseconds(1));
                    if (fired < 0)
                    {
                        continue;
                    }

                    if (!cases[fired].IsEnabled)
                    {
                        Interlocked.Increment(ref disabledFired);
                    }

                    var r = (ReceiveCase<int>)cases[fired];
                    if (r.IsClosed)
                    {
                        return;
                    }

                    received.Add(r.Value);
                }
            });
        }

        RunningScheduler[] running = [.. schedulers.Select(RunningScheduler.Start)];
        Thread[] producers = [.. Enumerable.Range(0, Producers).Select(p => new Thread(() =>
        {
            SendCase<int> sA = ch.SendCase(0);
            SendCase<int> sB = ch.SendCase(0);
            ReceiveCase<int> steal = ch.ReceiveCase();
            steal.IsEnabled = false;
            var cases = new System.Collections.ObjectModel.ReadOnlyCollection<SelectCase>([sA, sB, steal]);
            var random = new Random(100 + p);
            for (int i = 0; i < PerProducer; i++)
            {
                int item = (p * PerProducer) + i;
                sA.Item = item;
                sB.Item = item;
                int mode = random.Next(3);
                sA.IsEnabled = mode != 1;
                sB.IsEnabled = mode != 0;
                int fired = Select.WaitAsync(cases, TimeSpan.FromMilliseconds(1)).AsTask().GetAwaiter().GetResult();
                if (fired < 0)
                {
                    continue; // a failed send: nobody took it in time
                }

                if (!cases[fired].IsEnabled)
                {
                    Interlocked.Increment(ref disabledFired);
                }

                sent.Add(item);
            }
        })
        { IsBackground = true })];
        foreach (Thread t in producers)
        {
            t.Start();
        }

        foreach (Thread t in producers)
        {
            Assert.True(t.Join(RunningScheduler.Guard), "hang guard: a producer never finished");
        }

        ch.Close();
        foreach (RunningScheduler r in running)
        {
            Assert.Null(r.Join());
        }

        Assert.Equal(0, disabledFired);
        Assert.DoesNotContain(-1, received);
        Assert.Equal(sent.Order(), received.Order());
        Assert.NotEmpty(sent); // the stress exchanged items at all
        foreach (Scheduler s in schedulers)
        {
            s.Dispose();
        }
    }
}
