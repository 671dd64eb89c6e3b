using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Regression;

/// <summary>
/// Findings of the adversarial review of the coordination family (AsyncLock, LockCase, AsyncCondition, AsyncSemaphore,
/// AsyncManualResetEvent, WaitGroup, AsyncBarrier) and of structured concurrency (TaskletGroup, WhenAll, JoinCase).
/// The first pins a finding that was declined (the behaviour is .NET's rule); the others state the documented
/// behaviour and failed on the tree the review read. Findings left open are listed in docs/coordination.md.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class CoordinationReviewTests
{
    // AsyncLock.Releaser docs: "disposing one that was disposed already ... throws InvalidOperationException", so "a
    // stale or foreign releaser cannot release someone else's acquisition". On a reentrant lock, a nested releaser
    // carries (token, depth), and every nested acquisition at the same depth of the same outer acquisition gets the
    // same pair: a releaser disposed twice releases the later nested acquisition instead of throwing.
    [Fact]
    public void ReentrantLock_NestedReleaserDisposedTwice_Throws_AndTheLaterAcquisitionStaysHeld()
    {
        using var s = SchedulerExtensions.Deterministic();
        Exception? second = null;
        s.Go(async () =>
        {
            var l = new AsyncLock(reentrant: true) { Name = "r" };
            using (await l.LockAsync())
            {
                AsyncLock.Releaser inner = await l.LockAsync();
                inner.Dispose();
                AsyncLock.Releaser later = await l.LockAsync(); // a new nested acquisition
                second = Record.Exception(() => inner.Dispose()); // stale: must not release `later`
                if (second is null)
                {
                    // `later` was released by the stale releaser; disposing it now fails instead.
                    Assert.Throws<InvalidOperationException>(() => later.Dispose());
                }
                else
                {
                    later.Dispose();
                }
            }
        });
        s.RunUntilIdle();
        Assert.IsType<InvalidOperationException>(second);
    }

    // Review finding: a killed parent that holds a lock, and its group's child in a condition wait on that lock, wait
    // for each other: the group waits for its killed child (a wait the parent's kill must not end), and the child's
    // condition reacquires the lock before it lets its kill out. Trio's nursery and Condition meet the same cycle.
    // The library's bug was silence: the group's wait was a foreign await, so Run() idled forever, and with
    // KillOnDeadlock a detected cycle would be killed again and again. Now the group's wait is a library wait, and a
    // deadlock found again with no step run since its kills is thrown as found.
    [Fact]
    public void Group_KilledParentHoldsLock_ChildInConditionWait_RunReportsTheDeadlock()
    {
        using var s = SchedulerExtensions.Deterministic();
        Tasklet? child = null;
        Tasklet parent = s.Go(async () =>
        {
            var l = new AsyncLock { Name = "state" }; // made inside a tasklet: only tasklets can reach it
            var changed = new AsyncCondition(l) { Name = "changed" };
            await using var group = new TaskletGroup("g");
            child = group.Go(async () =>
            {
                using (await l.LockAsync())
                {
                    await changed.WaitAsync(); // releases the lock while it waits
                }
            }, "waiter");
            await Tasklet.Yield();
            await Tasklet.Yield();
            using (await l.LockAsync())
            {
                await group.WaitAsync(); // waits for the child while holding the lock
            }
        }, "parent");
        s.Go(async () =>
        {
            for (int i = 0; i < 8; i++)
            {
                await Tasklet.Yield(); // the child waits on the condition, the parent on the group, holding the lock
            }

            Assert.True(child is { IsAlive: true } && parent.IsAlive);
            parent.Kill();
        }, "killer");

        // All inside Run(): only a scheduler inside Run() takes part in deadlock detection (RunOnce passes do not).
        Exception? failure = null;
        var runner = new Thread(() => failure = Record.Exception(s.Run));
        runner.Start();
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)), "hang guard: Run() never returned:" + Environment.NewLine + s.Dump());
        DeadlockException deadlock = Assert.IsType<DeadlockException>(failure);
        Assert.Contains($"tasklet {parent.Id} 'parent': join of tasklet {child!.Id} 'waiter'", deadlock.Message, StringComparison.Ordinal);
        Assert.Contains($"tasklet {child.Id} 'waiter': acquire of lock 'state' held by tasklet {parent.Id} 'parent'", deadlock.Message, StringComparison.Ordinal);
    }

    // Review finding, declined: a tasklet that failed with someone else's OperationCanceledException gives a Canceled
    // task, not a Faulted one. That is .NET's rule for any task an OperationCanceledException leaves (Task.Run,
    // async methods, ValueTask.AsTask), and Tasklet.AsTask documents it; this pins it. The failure still counts as a
    // failure for the scheduler (Tasklet.Exception), and was observed by the task.
    [Fact]
    public async Task AsTask_TaskletFailedWithForeignCancellation_IsCanceled_AsTaskRunWouldBe()
    {
        using var s = SchedulerExtensions.Deterministic();
        using var foreign = new CancellationTokenSource();
        foreign.Cancel();
        Tasklet failed = s.Go(() => Task.FromException(new OperationCanceledException(foreign.Token)), "failed");
        Task task = failed.AsTask(); // joins (observes) it before it ends
        s.RunUntilIdle();
        Assert.False(failed.IsAlive);
        Assert.IsType<OperationCanceledException>(failed.Exception); // a failure, not a kill
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => task);
        Assert.True(task.IsCanceled, $"expected Canceled as Task.Run gives, got {task.Status}");
        Task runTask = Task.Run(() => throw new OperationCanceledException(foreign.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => runTask);
        Assert.True(runTask.IsCanceled);
    }

    // DESIGN.md, "Coordination": FIFO service; the family's release-side wakes go through WakeList, "in the order
    // they were claimed (FIFO: the first waiter served is the first to run)". JoinSource.WakeAll claims the joiners in
    // queue order but pushes each onto the head of a singly linked list and wakes that list: the joiners of a tasklet
    // run last-come first (a TaskletGroup's parent, WhenAll, WhenAny and JoinCase selects all join through it).
    [Fact]
    public void Join_JoinersOfADyingTasklet_ResumeInArrivalOrder()
    {
        using var s = SchedulerExtensions.Deterministic();
        var gate = new Channel<int>();
        var order = new List<int>();
        Tasklet target = s.Go(async () => await gate.ReceiveAsync(), "target");
        for (int i = 1; i <= 3; i++)
        {
            int id = i;
            s.Go(async () =>
            {
                await target.JoinAsync();
                order.Add(id);
            }, "joiner " + id);
        }

        s.RunUntilIdle(); // the three joiners are queued on the target in order 1, 2, 3
        s.Go(() =>
        {
            Assert.True(gate.TrySend(0));
            return Task.CompletedTask;
        });
        s.RunUntilIdle();
        Assert.Equal([1, 2, 3], order);
    }

    // DESIGN.md, "Deadlock": "A primitive used by a party that is not a tasklet ... is externally reachable: a wait on
    // it is treated like a foreign await (the scheduler idles, it does not throw). No false positives." A condition
    // can only be waited on or (meaningfully) notified with its lock, and here an OS thread has used that lock: it is
    // the producer that will notify. AsyncCondition.IsExternal is its own flag only (set by its own first use), so the
    // consumer's wait on it looks closed and Run() declares a deadlock while the producer is about to notify.
    [Fact]
    public void Condition_LockUsedByOsThreadProducer_ConsumerWaitIsNotDeclaredDeadlocked()
    {
        Exception? failure = null;
        bool consumed = false;
        var runner = new Thread(() =>
        {
            try
            {
                Scheduler.Run(async () =>
                {
                    var l = new AsyncLock { Name = "queue lock" };
                    var notEmpty = new AsyncCondition(l) { Name = "not empty" };
                    bool ready = false;
                    int lockUsed = 0;
                    var producer = new Thread(() =>
                    {
                        using (l.Lock())
                        {
                            // the producer's first use of the lock: it is externally reachable from here on
                        }

                        Volatile.Write(ref lockUsed, 1);
                        Thread.Sleep(300); // producing
                        using (l.Lock())
                        {
                            ready = true;
                            notEmpty.Notify();
                        }
                    })
                    { IsBackground = true };
                    producer.Start();
                    while (Volatile.Read(ref lockUsed) == 0)
                    {
                        await Tasklet.Sleep(TimeSpan.FromMilliseconds(1));
                    }

                    using (await l.LockAsync())
                    {
                        await notEmpty.WaitUntilAsync(() => ready);
                        consumed = true;
                    }
                });
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        runner.Start();
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)), "hang guard");
        Assert.Null(failure);
        Assert.True(consumed);
    }
}
