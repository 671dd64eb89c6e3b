using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Ports;

/// <summary>
/// Trio's nursery behaviours (trio/_core/_tests/test_run.py), ported to <see cref="TaskletGroup"/>: the scenario of each
/// Trio test, re-expressed with tasklets, with the virtual clock standing in for Trio's autojump_clock. One deliberate
/// difference (docs/coordination.md): a child's failure kills its siblings but not the code of the
/// <c>await using</c> block itself, which C# cannot interrupt between awaits; the block's end then throws.
/// </summary>
public class TrioNurseryPortTests
{
    private static readonly SchedulerOptions s_autojump = new() { Seed = 7 };

    [Fact]
    public void NurseryWaitsForChildren()
    {
        // The nursery block does not end until every child has finished, however long they sleep.
        var order = new OrderRecorder();
        Scheduler.Run(async () =>
        {
            await using (var nursery = new TaskletGroup())
            {
                nursery.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(10)); order.Expect(3); });
                nursery.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); order.Expect(2); });
                order.Expect(1);
            }

            order.Finish(4);
        }, s_autojump);
    }

    [Fact]
    public void ChildCrash_CancelsSiblings_AndPropagatesOutOfTheNursery()
    {
        // test_child_crash_basic, plus the siblings: a crashing child cancels the others, and the crash comes out of
        // the nursery as it is.
        var crash = new KeyNotFoundException("crash");
        var siblings = new List<Tasklet>();
        var caught = Assert.Throws<KeyNotFoundException>(() => Scheduler.Run(async () =>
        {
            await using var nursery = new TaskletGroup();
            for (int i = 0; i < 3; i++)
            {
                siblings.Add(nursery.Go(async () => await Tasklet.Sleep(Timeout.InfiniteTimeSpan)));
            }

            nursery.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); throw crash; });
        }, s_autojump));

        Assert.Same(crash, caught);
        Assert.All(siblings, t => Assert.IsType<TaskletExitException>(t.Exception));
    }

    [Fact]
    public void CancelledChild_RunsItsFinally_BeforeTheNurseryEnds()
    {
        // A cancelled child's cleanup (finally, using) runs to completion, even when it awaits, before the nursery
        // block is left.
        var order = new OrderRecorder();
        Assert.Throws<InvalidOperationException>(() => Scheduler.Run(async () =>
        {
            try
            {
                await using var nursery = new TaskletGroup();
                nursery.Go(async () =>
                {
                    try
                    {
                        order.Expect(1);
                        await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                    }
                    finally
                    {
                        order.Expect(2);
                        await Task.Yield(); // cleanup that awaits something foreign
                        order.Expect(3);
                    }
                });
                nursery.Go(async () => { await Tasklet.Yield(); throw new InvalidOperationException("fail"); });
            }
            finally
            {
                order.Expect(4);
            }
        }, s_autojump));
        order.Finish(5);
    }

    [Fact]
    public void ErrorsOfSeveralChildren_AreAggregated()
    {
        // test_child_crash_propagation with several crashes: Trio raises an ExceptionGroup; the group raises an
        // AggregateException holding each child's error, and no cancellation among them.
        var ex = Assert.Throws<AggregateException>(() => Scheduler.Run(async () =>
        {
            await using var nursery = new TaskletGroup();
            nursery.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                catch (TaskletExitException)
                {
                    throw new ArgumentException("second, while cancelled");
                }
            });
            nursery.Go(async () => await Tasklet.Sleep(Timeout.InfiniteTimeSpan)); // cancelled quietly
            nursery.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); throw new FormatException("first"); });
        }, s_autojump));

        Assert.Equal(2, ex.InnerExceptions.Count);
        Assert.IsType<FormatException>(ex.InnerExceptions[0]);
        Assert.IsType<ArgumentException>(ex.InnerExceptions[1]);
        Assert.DoesNotContain(ex.InnerExceptions, e => e is OperationCanceledException);
    }

    [Fact]
    public void CancellingTheParent_CancelsTheChildren()
    {
        // with move_on_after(1): async with open_nursery() as n: n.start_soon(sleep_forever): the deadline of the
        // enclosing scope cancels the children, and the block is left once they are gone.
        Tasklet? child = null;
        bool timedOut = false;
        Scheduler.Run(async () =>
        {
            try
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    await using var nursery = new TaskletGroup();
                    child = nursery.Go(async () => await Tasklet.Sleep(Timeout.InfiniteTimeSpan));
                }
            }
            catch (TaskletTimeoutException)
            {
                timedOut = true;
            }
        }, s_autojump);

        Assert.True(timedOut);
        Assert.IsType<TaskletExitException>(child!.Exception);
    }

    [Fact]
    public void KillingTheParent_CancelsTheChildrenAndWaitsForThem()
    {
        using var s = new Scheduler(s_autojump);
        bool childCleanedUp = false;
        Tasklet parent = s.Go(async () =>
        {
            await using var nursery = new TaskletGroup();
            nursery.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(Timeout.InfiniteTimeSpan);
                }
                finally
                {
                    childCleanedUp = true;
                }
            });
        });
        s.RunUntilIdle();
        parent.Kill();
        s.Run();
        Assert.True(childCleanedUp);
        Assert.IsType<TaskletExitException>(parent.Exception);
    }

    [Fact]
    public void ClosedNursery_RefusesNewArrivals()
    {
        // "Nursery is closed to new arrivals": start_soon after the nursery block ended.
        Scheduler.Run(async () =>
        {
            TaskletGroup escaped;
            await using (var nursery = new TaskletGroup())
            {
                escaped = nursery;
            }

            Assert.Throws<InvalidOperationException>(() => escaped.Go(() => Task.CompletedTask));
        }, s_autojump);
    }

    [Fact]
    public void ChildStartsSiblingThroughTheNursery_WhileTheParentWaits()
    {
        // Passing the nursery to a child lets it start tasks that the nursery also waits for.
        int finished = 0;
        Scheduler.Run(async () =>
        {
            await using (var nursery = new TaskletGroup())
            {
                nursery.Go(async () =>
                {
                    await Tasklet.Sleep(TimeSpan.FromSeconds(1));
                    nursery.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); finished++; });
                    finished++;
                });
            }

            Assert.Equal(2, finished);
        }, s_autojump);
    }
}
