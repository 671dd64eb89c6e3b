using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Structured;

public class TaskletGroupTests
{
    private static readonly SchedulerOptions s_virtual = new() { Seed = 1 };

    [Fact]
    public void Constructor_OutsideTasklet_ThrowsSayingWhere()
    {
        var ex = Assert.Throws<InvalidOperationException>(() => new TaskletGroup("g"));
        Assert.Contains("must be created inside a tasklet", ex.Message);
    }

    [Fact]
    public void DisposeAsync_WaitsForEveryChild_OnTheCurrentScheduler()
    {
        var ended = new List<string>();
        Scheduler.Run(async () =>
        {
            Scheduler here = Tasklet.Current!.Scheduler;
            Tasklet a, b;
            await using (var group = new TaskletGroup("g"))
            {
                a = group.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(2)); ended.Add("a"); }, "a");
                b = group.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(1)); ended.Add("b"); }, "b");
                Assert.Same(here, a.Scheduler);
                Assert.Same(here, b.Scheduler);
                Assert.Equal([a, b], group.Children);
            }

            ended.Add("parent");
            Assert.False(a.IsAlive);
            Assert.False(b.IsAlive);
        }, s_virtual);

        Assert.Equal(["b", "a", "parent"], ended);
    }

    [Fact]
    public void FirstFailure_KillsSiblingsWhichRunFinally_ThenWaitThrowsIt()
    {
        var boom = new InvalidOperationException("boom");
        bool siblingFinally = false;
        Tasklet? sibling = null;
        Exception? thrown = null;
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            try
            {
                await using var group = new TaskletGroup();
                sibling = group.Go(async () =>
                {
                    try
                    {
                        await never.ReceiveAsync();
                    }
                    finally
                    {
                        siblingFinally = true;
                    }
                }, "sibling");
                group.Go(async () => { await Tasklet.Yield(); throw boom; }, "failing");
            }
            catch (Exception e)
            {
                thrown = e;
            }
        }, s_virtual);

        Assert.Same(boom, thrown);
        Assert.True(siblingFinally);
        Assert.IsType<TaskletExitException>(sibling!.Exception);
    }

    [Fact]
    public void SeveralFailures_ThrowAggregateInFailureOrder_KilledSiblingsAreNotFailures()
    {
        Exception? thrown = null;
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            try
            {
                await using var group = new TaskletGroup("pair");
                group.Go(async () =>
                {
                    try
                    {
                        await never.ReceiveAsync();
                    }
                    catch (TaskletExitException)
                    {
                        throw new FormatException("cleanup failed"); // fails while being killed
                    }
                }, "a");
                group.Go(async () => await never.ReceiveAsync(), "killed quietly");
                group.Go(async () => { await Tasklet.Yield(); throw new InvalidOperationException("first"); }, "b");
            }
            catch (Exception e)
            {
                thrown = e;
            }
        }, s_virtual);

        var aggregate = Assert.IsType<AggregateException>(thrown);
        Assert.Contains("tasklet group 'pair'", aggregate.Message);
        Assert.Collection(
            aggregate.InnerExceptions,
            e => Assert.Equal("first", Assert.IsType<InvalidOperationException>(e).Message),
            e => Assert.Equal("cleanup failed", Assert.IsType<FormatException>(e).Message));
    }

    [Fact]
    public void ChildFailureThrownByGroup_IsNotReportedAgainByRun()
    {
        using var s = new Scheduler(s_virtual);
        Exception? caught = null;
        s.Go(async () =>
        {
            try
            {
                await using var group = new TaskletGroup();
                group.Go(() => throw new InvalidOperationException("once"));
            }
            catch (InvalidOperationException e)
            {
                caught = e;
            }
        });

        s.Run(); // would throw an AggregateException if the failure were reported a second time
        Assert.Equal("once", caught!.Message);
    }

    [Fact]
    public void GroupNeverWaited_ChildFailureIsReportedByRun()
    {
        using var s = new Scheduler(s_virtual);
        s.Go(() =>
        {
            var group = new TaskletGroup();
            group.Go(() => throw new InvalidOperationException("nobody waited"));
            return Task.CompletedTask;
        });

        var ex = Assert.Throws<AggregateException>(s.Run);
        Assert.Equal("nobody waited", Assert.Single(ex.InnerExceptions).Message);
    }

    [Fact]
    public void ChildKilledFromOutside_IsNotAFailure_WaitReturns()
    {
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            await using var group = new TaskletGroup();
            Tasklet victim = group.Go(async () => await never.ReceiveAsync(), "victim");
            Tasklet other = group.Go(async () => await Tasklet.Sleep(TimeSpan.FromSeconds(1)), "other");
            await Tasklet.Yield();
            victim.Kill();
            await group.WaitAsync();
            Assert.IsType<TaskletExitException>(victim.Exception);
            Assert.Null(other.Exception); // a kill of one child does not cancel the others
        }, s_virtual);
    }

    [Fact]
    public void Cancel_KillsEveryChild_WaitReturnsWithoutThrowing()
    {
        Scheduler.Run(async () =>
        {
            var never = new Channel<int>();
            var group = new TaskletGroup();
            int finallies = 0;
            for (int i = 0; i < 3; i++)
            {
                group.Go(async () =>
                {
                    try
                    {
                        await never.ReceiveAsync();
                    }
                    finally
                    {
                        finallies++;
                    }
                });
            }

            await Tasklet.Yield();
            group.Cancel();
            await group.WaitAsync();
            Assert.Equal(3, finallies);
            Assert.Empty(group.Children);
        }, s_virtual);
    }

    [Fact]
    public void Go_AfterCancel_ChildIsKilledBeforeItRuns()
    {
        Scheduler.Run(async () =>
        {
            await using var group = new TaskletGroup();
            group.Cancel();
            bool ran = false;
            Tasklet late = group.Go(() => { ran = true; return Task.CompletedTask; });
            await group.WaitAsync();
            Assert.False(ran);
            Assert.IsType<TaskletExitException>(late.Exception);
        }, s_virtual);
    }

    [Fact]
    public void Go_AfterWaitEnded_ThrowsClosed()
    {
        Scheduler.Run(async () =>
        {
            var group = new TaskletGroup("done");
            group.Go(() => Task.CompletedTask);
            await group.WaitAsync();
            var ex = Assert.Throws<InvalidOperationException>(() => group.Go(() => Task.CompletedTask, "late"));
            Assert.Contains("tasklet group 'done' is closed", ex.Message);
            Assert.Contains("'late'", ex.Message);
            await group.DisposeAsync();
            Assert.Throws<InvalidOperationException>(() => group.Go(() => Task.FromResult(1)));
        }, s_virtual);
    }

    [Fact]
    public void Go_FromChildWhileGroupWaits_IsWaitedForToo()
    {
        var ended = new List<string>();
        Scheduler.Run(async () =>
        {
            await using (var group = new TaskletGroup())
            {
                group.Go(async () =>
                {
                    await Tasklet.Sleep(TimeSpan.FromSeconds(1));
                    group.Go(async () => { await Tasklet.Sleep(TimeSpan.FromSeconds(5)); ended.Add("grandchild"); });
                    ended.Add("child");
                });
            }

            ended.Add("parent");
        }, s_virtual);

        Assert.Equal(["child", "grandchild", "parent"], ended);
    }

    [Fact]
    public void WaitAsync_FromChild_ThrowsInsteadOfWaitingForItself()
    {
        Exception? thrown = null;
        Scheduler.Run(async () =>
        {
            await using var group = new TaskletGroup();
            group.Go(async () =>
            {
                try
                {
                    await group.WaitAsync();
                }
                catch (InvalidOperationException e)
                {
                    thrown = e;
                }
            }, "child");
        }, s_virtual);

        Assert.Contains("would wait for its own end", thrown!.Message);
    }

    [Fact]
    public void GoOfT_ResultIsAvailableAfterTheWait()
    {
        int sum = Scheduler.Run(async () =>
        {
            Tasklet<int> a, b;
            await using (var group = new TaskletGroup())
            {
                a = group.Go(async () => { await Tasklet.Yield(); return 20; });
                b = group.Go(() => Task.FromResult(22));
            }

            return a.Result + b.Result;
        }, s_virtual);

        Assert.Equal(42, sum);
    }

    [Fact]
    public void DisposeAsync_AfterWaitAsyncThrew_DoesNotThrowAgain_AndIsIdempotent()
    {
        int caught = 0;
        Scheduler.Run(async () =>
        {
            try
            {
                await using var group = new TaskletGroup();
                group.Go(() => throw new InvalidOperationException("x"));
                await group.WaitAsync(); // throws; then the using's DisposeAsync must not replace it
            }
            catch (InvalidOperationException)
            {
                caught++;
            }
        }, s_virtual);

        Assert.Equal(1, caught);
    }

    [Fact]
    public void KillWaitingParent_KillsChildrenFirstAndWaitsForThem()
    {
        var order = new OrderRecorder();
        using var s = new Scheduler(s_virtual);
        Tasklet? child = null;
        Tasklet parent = s.Go(async () =>
        {
            var never = new Channel<int>();
            try
            {
                await using var group = new TaskletGroup();
                child = group.Go(async () =>
                {
                    try
                    {
                        order.Expect(1);
                        await never.ReceiveAsync();
                    }
                    finally
                    {
                        order.Expect(3);
                        await Task.Yield(); // a foreign await in the finally: the kill cannot interrupt it
                        order.Expect(4);
                    }
                }, "child");
            }
            finally
            {
                order.Expect(5); // the group's wait returned only after the child died
                Assert.False(child!.IsAlive);
            }
        }, "parent");

        s.RunUntilIdle();
        order.Expect(2);
        parent.Kill();
        s.Run();
        order.Finish(6);
        Assert.IsType<TaskletExitException>(parent.Exception);
        Assert.IsType<TaskletExitException>(child!.Exception);
    }

    [Fact]
    public void KillParentBlockedInsideTheBlock_DisposeKillsChildrenAndWaits()
    {
        using var s = new Scheduler(s_virtual);
        Tasklet? child = null;
        bool childFinally = false;
        Tasklet parent = s.Go(async () =>
        {
            var never = new Channel<int>();
            await using var group = new TaskletGroup();
            child = group.Go(async () =>
            {
                try
                {
                    await never.ReceiveAsync();
                }
                finally
                {
                    childFinally = true;
                }
            });
            await never.ReceiveAsync(); // killed here; the kill is pending while DisposeAsync runs
        });

        s.RunUntilIdle();
        parent.Kill();
        s.Run();
        Assert.True(childFinally);
        Assert.False(child!.IsAlive);
        Assert.IsType<TaskletExitException>(parent.Exception);
    }

    [Fact]
    public void WaitAsync_TokenCancelled_KillsChildrenWaitsAndThrowsCancellation()
    {
        Scheduler.Run(async () =>
        {
            using var cts = new CancellationTokenSource();
            var group = new TaskletGroup();
            Tasklet child = group.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)));
            Tasklet.Go(async () => { await Tasklet.Yield(); cts.Cancel(); });
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => group.WaitAsync(cts.Token).AsTask());
            Assert.False(child.IsAlive);
            Assert.IsType<TaskletExitException>(child.Exception);
        }, s_virtual);
    }

    [Fact]
    public void WaitAsync_InTimeoutScope_TimesOutAfterKillingChildren()
    {
        Scheduler.Run(async () =>
        {
            var group = new TaskletGroup();
            Tasklet child = group.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)));
            using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
            {
                await Assert.ThrowsAsync<TaskletTimeoutException>(async () => await group.WaitAsync());
            }

            Assert.False(child.IsAlive);
        }, s_virtual);
    }

    [Fact]
    public void ParentInterrupted_ChildFailureWinsOverTheInterrupt()
    {
        Exception? thrown = null;
        Scheduler.Run(async () =>
        {
            using var cts = new CancellationTokenSource();
            var group = new TaskletGroup();
            group.Go(async () =>
            {
                try
                {
                    await Tasklet.Sleep(TimeSpan.FromHours(1));
                }
                catch (TaskletExitException)
                {
                    throw new FormatException("failed in cleanup");
                }
            });
            Tasklet.Go(async () => { await Tasklet.Yield(); cts.Cancel(); });
            try
            {
                await group.WaitAsync(cts.Token);
            }
            catch (Exception e)
            {
                thrown = e;
            }
        }, s_virtual);

        Assert.Equal("failed in cleanup", Assert.IsType<FormatException>(thrown).Message);
    }

    [Fact]
    public void FailureDetection_AcrossSeeds_SiblingsAlwaysKilledAndFailureThrown()
    {
        for (int seed = 1; seed <= 40; seed++)
        {
            var options = new SchedulerOptions { Seed = seed, RandomizeOrder = true };
            int started = 0, finallies = 0;
            Exception? thrown = null;
            Scheduler.Run(async () =>
            {
                var c = new Channel<int>();
                try
                {
                    await using var group = new TaskletGroup();
                    for (int i = 0; i < 4; i++)
                    {
                        group.Go(async () =>
                        {
                            started++;
                            try
                            {
                                while (true)
                                {
                                    await c.ReceiveAsync();
                                }
                            }
                            finally
                            {
                                finallies++;
                            }
                        });
                    }

                    group.Go(async () => { await c.SendAsync(1); await c.SendAsync(2); throw new InvalidOperationException("seeded"); });
                }
                catch (InvalidOperationException e)
                {
                    thrown = e;
                }
            }, options);

            Assert.True(thrown?.Message == "seeded", $"seed {seed}: {thrown}");
            // A receiver killed before its first step dies without running (no finally to run); every started one ran it.
            Assert.True(finallies == started && started >= 1, $"seed {seed}: {started} started, {finallies} finally blocks ran");
        }
    }
}
