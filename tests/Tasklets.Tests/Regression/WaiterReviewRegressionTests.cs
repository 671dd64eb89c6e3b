using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Regression;

/// <summary>
/// Regressions from the first adversarial review of the waiter layer (issue "Nothing is lost, proven"). Each test
/// states the documented behaviour and failed on the tree that review read; the commit that fixed it names the test.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class WaiterReviewRegressionTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    // R1: a tasklet whose own waiter is busy with a stored (not awaited) operation, awaiting a foreign awaitable,
    // is not counted as "awaiting something foreign" (AfterStep tests _waiter.IsIdle), so deadlock detection
    // declares a deadlock while Task.Delay is pending, and kills the tasklet.
    [Fact]
    public void R1_StoredReceiveThenForeignAwait_IsNotADeadlock()
    {
        int got = 0;
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Scheduler.Run(async () =>
                {
                    var ch = new Channel<int>(1); // made inside the tasklet: not externally reachable
                    ValueTask<int> pending = ch.ReceiveAsync(); // stored: the tasklet's own waiter stays busy
                    await Task.Delay(100); // foreign
                    Assert.True(ch.TrySend(7));
                    got = await pending;
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(s_guard), "hang guard");
        Assert.Null(failure);
        Assert.Equal(7, got);
    }

    // R2: Tasklet.Throw is documented to raise at the tasklet's blocking point "at once if it is blocked". A tasklet
    // blocked on an external waiter (its own waiter holds a stored operation) does not get it: WakeWithInterrupt
    // hands the (non-sticky) throw to the stored operation first and stops, so the blocked receive goes on.
    [Fact]
    public void R2_ThrowReachesTheBlockingPoint_NotAStoredOperation()
    {
        using var s = SchedulerExtensions.Deterministic();
        var stored = new Channel<int>();
        var blocking = new Channel<int>();
        Exception? caught = null;
        s.Go(async () =>
        {
            ValueTask<int> pending = stored.ReceiveAsync(); // never awaited
            try
            {
                await blocking.ReceiveAsync(); // parks on an external waiter
            }
            catch (Exception e)
            {
                caught = e;
            }
        });

        s.RunUntilIdle();
        Tasklet t = s.Tasklets.Single();
        t.Throw(new ApplicationException("boom"));
        s.RunUntilIdle();
        Assert.IsType<ApplicationException>(caught);
    }

    // R3: "A case object may take part in one select at a time ... InvalidOperationException: a case is in use by
    // another select that has not finished." The in-use check only tests _queued, which a partner clears when it
    // claims the select: between that claim and the select's resumption the case passes the check, a second select
    // overwrites its Value, and the first select's item is lost.
    [Fact]
    public void R3_CaseOfAClaimedButUnfinishedSelect_IsInUse()
    {
        Exception? thrown = null;
        int fired = -2;
        int value = -1;
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>(1);
            var rc = ch.ReceiveCase();
            ValueTask<int> first = Select.WaitAsync(rc); // parks: rc queued
            Assert.True(ch.TrySend(1)); // hands 1 to the parked select: rc.Value = 1, rc dequeued, wait claimed
            Assert.True(ch.TrySend(2)); // buffered
            try
            {
                Select.Try(rc); // the first select has not finished: must throw
            }
            catch (InvalidOperationException e)
            {
                thrown = e;
            }

            fired = await first;
            value = rc.Value;
        }, new SchedulerOptions { Seed = 1 });

        Assert.Equal(0, fired);
        Assert.Equal(1, value); // on this tree: 2 (item 1 overwritten, lost)
        Assert.NotNull(thrown);
    }

    // R3b: the same window, with a blocking second select in another tasklet: the first select's EndWait withdraws
    // the second select's registration (same case object, now queued by the second), which then can never fire.
    [Fact]
    public void R3b_SecondSelectOnACaseStillOwnedByAClaimedSelect_IsRejectedNotOrphaned()
    {
        using var s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int>();
        var rc = ch.ReceiveCase();
        ValueTask<int> first = default;
        bool secondThrew = false;
        int secondFired = -2;
        s.Go(async () =>
        {
            first = Select.WaitAsync(rc);
            await Tasklet.Yield(); // external waiter: the own one holds the stored select
            await Tasklet.Yield();
            await first;
        }, "A");
        s.Go(async () =>
        {
            Assert.True(ch.TrySend(1)); // claims A's select (A not resumed yet)
            try
            {
                secondFired = await Select.WaitAsync(rc); // rc passes the in-use check: parks with it
            }
            catch (InvalidOperationException)
            {
                secondThrew = true;
            }
        }, "B");
        s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromSeconds(1));
            ch.TrySend(2); // B's select should get this (if it was allowed to park)
        }, "C");

        s.RunUntilIdle();
        s.RunFor(TimeSpan.FromMilliseconds(200));
        // Either B was refused (the documented check), or B's select got 2. On this tree B is parked with no
        // registration (A withdrew it) and C's TrySend found nobody.
        Assert.True(secondThrew || secondFired == 0, $"B neither refused nor fired: {s.Dump()}");
    }

    // R4: Select.Try's lock-free "nothing ready" answer skips MarkUsedBy, so a channel polled only with Select.Try by
    // an OS thread is never marked externally reachable; a tasklet parked on it is then declared deadlocked although
    // the poller will complete it (ch.TrySend polling marks the channel on its first call, and does not have this).
    [Fact]
    public void R4_ChannelPolledBySelectTryFromOsThread_IsNotADeadlock()
    {
        var handed = new TaskCompletionSource<Channel<int>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var polledOnce = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int got = -1;
        Exception? failure = null;
        int stop = 0;
        var poller = new Thread(() =>
        {
            Channel<int> ch = handed.Task.Result;
            var send = ch.SendCase(42);
            bool first = true;
            while (Volatile.Read(ref stop) == 0)
            {
                if (Select.Try(send) == 0)
                {
                    return;
                }

                if (first)
                {
                    first = false;
                    polledOnce.SetResult();
                }

                Thread.Yield(); // polls again until the receiver parks; no timing involved
            }
        })
        { IsBackground = true };
        poller.Start();

        var runner = new Thread(() =>
        {
            try
            {
                Scheduler.Run(async () =>
                {
                    var ch = new Channel<int>(); // made inside a tasklet
                    handed.SetResult(ch);
                    await polledOnce.Task; // foreign: no deadlock detection meanwhile
                    got = await ch.ReceiveAsync(); // the poller's next Select.Try sends 42
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        runner.Start();
        bool joined = runner.Join(s_guard);
        Volatile.Write(ref stop, 1);
        Assert.True(joined, "hang guard");
        Assert.True(poller.Join(s_guard), "hang guard");
        Assert.Null(failure);
        Assert.Equal(42, got);
    }

    // R5: a real deadlock of a tasklet parked on an external waiter (its own waiter holds a stored operation) is
    // never declared: AnyExternalWait returns true for any tasklet with HasExternalWaits, so Run() sleeps forever
    // instead of throwing DeadlockException. (Unblocked from the test thread after the guard, so nothing leaks.)
    [Fact]
    public void R5_DeadlockOfTaskletParkedOnExternalWaiter_IsDeclared()
    {
        Channel<int>? b = null;
        var made = new ManualResetEventSlim();
        Exception? failure = null;
        var runner = new Thread(() =>
        {
            try
            {
                Scheduler.Run(async () =>
                {
                    var a = new Channel<int>();
                    b = new Channel<int>(); // made inside the tasklet: nobody outside can reach it
                    made.Set();
                    ValueTask<int> stored = a.ReceiveAsync(); // nobody will ever send on a
                    await b.ReceiveAsync(); // nobody will ever send on b: a deadlock
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        runner.Start();
        bool declared = runner.Join(TimeSpan.FromSeconds(3));
        if (!declared)
        {
            Assert.True(made.Wait(s_guard), "hang guard");
            b!.TrySend(1); // end the test's tasklet: Run() returns
            Assert.True(runner.Join(s_guard), "hang guard");
        }

        Assert.True(declared, "Run() did not declare the deadlock within 3 s");
        Assert.IsType<DeadlockException>(failure);
    }

    // R6: Select.Try's lock-free path returns -1 before Validate: the same case twice (documented ArgumentException)
    // and a case in use by a parked select (documented InvalidOperationException) are accepted when nothing is
    // ready, and rejected when something is.
    [Fact]
    public void R6_SelectTry_ValidatesCasesEvenWhenNothingIsReady()
    {
        var ch = new Channel<int>();
        var rc = ch.ReceiveCase();
        Assert.Throws<ArgumentException>(() => Select.Try(rc, rc));
    }

    // R7: awaiting an await-foreach MoveNextAsync ValueTask a second time throws NullReferenceException
    // (ChannelEnumerator.GetStatus dereferences _pending, cleared by GetResult) instead of the stale-await
    // InvalidOperationException every other library ValueTask throws.
    [Fact]
    public void R7_EnumeratorValueTaskAwaitedTwice_ThrowsStaleAwait()
    {
        Exception? second = null;
        Scheduler.Run(async () =>
        {
            var ch = new Channel<int>(1);
            IAsyncEnumerator<int> e = ch.GetAsyncEnumerator();
            ValueTask<bool> next = e.MoveNextAsync(); // parks
            ch.TrySend(1);
            Assert.True(await next);
            second = await Record.ExceptionAsync(async () => await next);
        });
        Assert.IsType<InvalidOperationException>(second);
    }
}
