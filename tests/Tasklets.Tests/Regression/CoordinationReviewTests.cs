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
