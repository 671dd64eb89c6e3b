using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Ports;

/// <summary>
/// stacklesslib's lock family (locks.py: Lock, RLock, Condition), as described in
/// /work/shared/reference/stackless-goless.md section 2.2, ported to AsyncLock and AsyncCondition. Where stacklesslib
/// is unfair or silent (barging, releasing an unlocked Lock), the test pins the rule this library chose instead and
/// says so.
/// </summary>
[Collection(NonParallel.Name)]
public class StacklessLibLockPortTests
{
    [Fact]
    public void Lock_AcquireNonBlockingWhileHeld_ReturnsFalse_ThenTrueAfterRelease()
    {
        // lock.acquire(False) on a held Lock returns False; after release() it returns True.
        var l = new AsyncLock();
        Assert.True(l.TryLock(out AsyncLock.Releaser first));
        Assert.False(l.TryLock(out _));
        first.Dispose();
        Assert.True(l.TryLock(out AsyncLock.Releaser second));
        second.Dispose();
    }

    [Fact]
    public void Lock_ReleasedWhileAnotherWaits_ReleaserCannotBargeBackIn()
    {
        // stacklesslib [SL27]: A released while B waited, and A's immediate acquire(False) returned True before B ran.
        // Deviation (DESIGN.md "no barging", Go's starvation mode): the release hands the lock to B, so A's immediate
        // TryLock fails and B holds the lock before it even runs.
        using var s = new Scheduler();
        bool aGotItBack = true;
        Tasklet? b = null;
        s.Go(async () =>
        {
            var l = new AsyncLock();
            AsyncLock.Releaser a = await l.LockAsync();
            b = Tasklet.Go(async () => { using (await l.LockAsync()) { await Tasklet.Yield(); } }, "B");
            await Tasklet.Yield();
            a.Dispose();
            aGotItBack = l.TryLock(out _);
            Assert.Same(b, l.Owner);
        }, "A");
        s.Run();
        Assert.False(aGotItBack);
    }

    [Fact]
    public void Lock_ReleaseOfUnlockedLock_Raises()
    {
        // stacklesslib's Lock = Semaphore(1) lets the value become 2; threading.Lock raises RuntimeError, and the C#
        // version should too (section 2.2, item 3): InvalidOperationException, and the lock stays usable.
        var l = new AsyncLock { Name = "plain" };
        Assert.True(l.TryLock(out AsyncLock.Releaser r));
        r.Dispose();
        var error = Assert.Throws<InvalidOperationException>(r.Dispose);
        Assert.Contains("not locked", error.Message);
        Assert.True(l.TryLock(out AsyncLock.Releaser again));
        Assert.False(l.TryLock(out _)); // the value did not become 2: only one party gets in
        again.Dispose();
    }

    [Fact]
    public void RLock_OwnerReacquires_RecursionCounted_ReleasedAfterAsManyReleases()
    {
        using var s = new Scheduler();
        var l = new AsyncLock(reentrant: true);
        var depths = new List<bool>();
        s.Go(async () =>
        {
            AsyncLock.Releaser r1 = await l.LockAsync();
            AsyncLock.Releaser r2 = await l.LockAsync();
            AsyncLock.Releaser r3 = await l.LockAsync();
            r3.Dispose();
            depths.Add(l.IsLocked);
            r2.Dispose();
            depths.Add(l.IsLocked);
            r1.Dispose();
            depths.Add(l.IsLocked);
        });
        s.Run();
        Assert.Equal([true, true, false], depths);
    }

    [Fact]
    public void RLock_ReleaseByNonOwner_Raises()
    {
        // RLock.release() by a non-owner: RuntimeError("cannot release un-aquired lock").
        using var s = new Scheduler();
        var l = new AsyncLock(reentrant: true) { Name = "r" };
        AsyncLock.Releaser owned = default;
        Exception? error = null;
        s.Go(async () =>
        {
            owned = await l.LockAsync();
            await Tasklet.Yield();
            await Tasklet.Yield();
            owned.Dispose();
        }, "owner");
        s.Go(async () =>
        {
            await Tasklet.Yield();
            error = Record.Exception(owned.Dispose);
        }, "other");
        s.Run();
        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("only the owner may release", error!.Message);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Semaphore_KillDuringAcquire_NoWakeUpIsLost()
    {
        // Semaphore.acquire: "any other exception during the wait (a kill) re-pumps the lock so no wake-up is lost".
        // Here by construction: a killed waiter's wait cannot be claimed, so the release goes to the next waiter.
        using var s = new Scheduler();
        bool survivorGotIt = false;
        s.Go(async () =>
        {
            var l = new AsyncLock();
            AsyncLock.Releaser held = await l.LockAsync();
            Tasklet victim = Tasklet.Go(async () => { using (await l.LockAsync()) { } });
            Tasklet.Go(async () => { using (await l.LockAsync()) { survivorGotIt = true; } });
            await Tasklet.Yield();
            victim.Kill();
            held.Dispose();
        });
        s.Run();
        Assert.True(survivorGotIt);
    }

    [Fact]
    public void Condition_WaitWithoutOwnership_Raises()
    {
        // Condition.wait requires ownership, else RuntimeError("cannot wait on un-aquired lock").
        using var s = new Scheduler();
        Exception? error = null;
        s.Go(async () =>
        {
            var c = new AsyncCondition(new AsyncLock(reentrant: true));
            error = await Record.ExceptionAsync(async () => await c.WaitAsync());
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(error);
        Assert.Contains("does not hold", error!.Message);
    }

    [Fact]
    public void Condition_WaitReleasesAnRLockFully_AndRestoresItsRecursion()
    {
        // wait() "fully releases the lock" (_release_save) and re-acquires it (_acquire_restore).
        using var s = new Scheduler();
        var l = new AsyncLock(reentrant: true);
        var c = new AsyncCondition(l);
        bool notifierGotIn = false;
        bool stillHeldAfterInner = false;
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                using (await l.LockAsync())
                {
                    await c.WaitAsync();
                }

                stillHeldAfterInner = ReferenceEquals(l.Owner, Tasklet.Current);
            }
        });
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                notifierGotIn = true;
                c.Notify();
            }
        });
        s.Run();
        Assert.True(notifierGotIn);
        Assert.True(stillHeldAfterInner);
        Assert.False(l.IsLocked);
    }

    [Fact]
    public void Condition_NotifyN_WakesMinOfNAndTheWaiters()
    {
        // notify(n) releases min(n, nWaiting): with 2 waiting, notify(5) wakes both; a later waiter is not pre-notified.
        using var s = new Scheduler();
        int woken = 0;
        bool lateWaiterWoken = false;
        s.Go(async () =>
        {
            var l = new AsyncLock();
            var c = new AsyncCondition(l);
            for (int i = 0; i < 2; i++)
            {
                Tasklet.Go(async () => { using (await l.LockAsync()) { await c.WaitAsync(); woken++; } });
            }

            await Tasklet.Yield();
            c.Notify(5);
            Tasklet late = Tasklet.Go(async () => { using (await l.LockAsync()) { await c.WaitAsync(); lateWaiterWoken = true; } });
            for (int i = 0; i < 10; i++)
            {
                await Tasklet.Yield();
            }

            Assert.True(late.IsAlive, "the late waiter got nothing banked");
            late.Kill();
        });
        s.Run();
        Assert.Equal(2, woken);
        Assert.False(lateWaiterWoken);
    }

    [Fact]
    public void Condition_WaitWithTimeout_ReacquiresWithNoTimeoutBeforeReporting()
    {
        // wait(timeout): on timeout it "always re-acquires the lock with no timeout" and returns False. Here the
        // timeout is a Tasklet.Timeout scope: the wait throws TaskletTimeoutException after the lock is held again,
        // even though another tasklet held the lock past the deadline.
        using var s = SchedulerExtensions.Deterministic();
        var l = new AsyncLock();
        var c = new AsyncCondition(l);
        Exception? timedOut = null;
        TimeSpan heldAgainAt = default;
        DateTimeOffset start = s.Time.GetUtcNow();
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                using (Tasklet.Timeout(TimeSpan.FromSeconds(1)))
                {
                    timedOut = await Record.ExceptionAsync(async () => await c.WaitAsync());
                }

                heldAgainAt = s.Time.GetUtcNow() - start;
                Assert.Same(Tasklet.Current, l.Owner);
            }
        });
        s.Go(async () =>
        {
            using (await l.LockAsync())
            {
                await Tasklet.Sleep(TimeSpan.FromSeconds(3)); // holds the lock across the waiter's deadline
            }
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(timedOut);
        Assert.Equal(TimeSpan.FromSeconds(3), heldAgainAt);
    }

    [Fact]
    public void Condition_WaitFor_ReturnsOnceThePredicateHolds()
    {
        // wait_for(pred): waits until pred() is true, re-checking after each notification.
        using var s = new Scheduler();
        int value = 0;
        int seenAt = -1;
        s.Go(async () =>
        {
            var l = new AsyncLock();
            var c = new AsyncCondition(l);
            Tasklet.Go(async () =>
            {
                using (await l.LockAsync())
                {
                    await c.WaitUntilAsync(() => value >= 3);
                    seenAt = value;
                }
            });
            for (int i = 0; i < 5; i++)
            {
                await Tasklet.Yield();
                using (await l.LockAsync())
                {
                    value++;
                    c.NotifyAll();
                }
            }
        });
        s.Run();
        Assert.True(seenAt >= 3, $"seen at {seenAt}");
    }
}
