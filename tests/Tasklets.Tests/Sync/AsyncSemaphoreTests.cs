using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Sync;

public class AsyncSemaphoreTests
{
    [Fact]
    public void WaitAsync_FreePermit_CompletesSynchronouslyAndTakesIt()
    {
        using var s = new Scheduler();
        var sem = new AsyncSemaphore(2, 2);
        bool synchronous = false;
        s.Go(async () =>
        {
            ValueTask wait = sem.WaitAsync();
            synchronous = wait.IsCompletedSuccessfully;
            await wait;
        });
        s.Run();
        Assert.True(synchronous);
        Assert.Equal(1, sem.CurrentCount);
        Assert.Equal(2, sem.MaxCount);
    }

    [Fact]
    public void WaitAsync_NoPermit_WaitersServedFifo()
    {
        using var s = new Scheduler();
        var order = new List<int>();
        s.Go(async () =>
        {
            var sem = new AsyncSemaphore(0);
            for (int i = 1; i <= 3; i++)
            {
                int id = i;
                Tasklet.Go(async () => { await sem.WaitAsync(); order.Add(id); });
            }

            await Tasklet.Yield(); // all three park, in spawn order
            sem.Release();
            await Tasklet.Yield();
            Assert.Equal([1], order);
            sem.Release(2);
            await Tasklet.Yield();
            Assert.Equal([1, 2, 3], order);
            Assert.Equal(0, sem.CurrentCount);
        });
        s.Run();
        Assert.Equal([1, 2, 3], order);
    }

    [Fact]
    public void Release_WithParkedWaiter_HandsThePermitOver_NoBarging()
    {
        using var s = new Scheduler();
        bool stolen = true;
        bool waiterGotIt = false;
        s.Go(async () =>
        {
            var sem = new AsyncSemaphore(0);
            Tasklet.Go(async () => { await sem.WaitAsync(); waiterGotIt = true; });
            await Tasklet.Yield(); // the waiter parks
            int before = sem.Release();
            Assert.Equal(0, before);
            stolen = sem.TryWait(); // the permit is the parked waiter's: a newcomer must not take it
            Assert.Equal(0, sem.CurrentCount);
        });
        s.Run();
        Assert.False(stolen);
        Assert.True(waiterGotIt);
    }

    [Fact]
    public void Release_PastMaxCount_ThrowsSemaphoreFullAndReleasesNothing()
    {
        var full = new AsyncSemaphore(1, 1);
        var ex = Assert.Throws<SemaphoreFullException>(() => full.Release());
        Assert.Contains("maximum of 1", ex.Message);
        Assert.Equal(1, full.CurrentCount);

        using var s = new Scheduler();
        bool woken = false;
        var sem = new AsyncSemaphore(0, 2);
        s.Go(async () => { await sem.WaitAsync(); woken = true; });
        s.RunUntilIdle();
        Assert.Throws<SemaphoreFullException>(() => sem.Release(3));
        s.RunUntilIdle();
        Assert.False(woken, "a release that throws hands no permit to a waiter");
        Assert.Equal(0, sem.CurrentCount);
        sem.Release(2);
        s.RunUntilIdle();
        Assert.True(woken);
        Assert.Equal(1, sem.CurrentCount);
    }

    [Fact]
    public void Arguments_Validated()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(-1));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(3, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new AsyncSemaphore(1).Release(0));
    }

    [Fact]
    public void TryWait_TakesFreePermitsOnly()
    {
        var sem = new AsyncSemaphore(1);
        Assert.True(sem.TryWait());
        Assert.False(sem.TryWait());
        sem.Release();
        Assert.Equal(1, sem.CurrentCount);
    }

    [Fact]
    public void Kill_OfWaiterBeforeRelease_PermitGoesToTheNextWaiter()
    {
        using var s = new Scheduler();
        Tasklet? first = null;
        bool secondGotIt = false;
        bool firstGotIt = false;
        AsyncSemaphore? sem = null;
        s.Go(async () =>
        {
            sem = new AsyncSemaphore(0); // made inside: a lost permit would be reported as a deadlock, not hang
            first = Tasklet.Go(async () => { await sem.WaitAsync(); firstGotIt = true; }, "first");
            Tasklet.Go(async () => { await sem.WaitAsync(); secondGotIt = true; }, "second");
            await Tasklet.Yield(); // both park
            first.Kill();          // claims first's wait now; its node stays queued until it resumes
            sem.Release();         // must skip the killed waiter: the permit is not lost
            Assert.Equal(0, sem.CurrentCount);
        });
        s.Run();
        Assert.False(firstGotIt);
        Assert.IsType<TaskletExitException>(first!.Exception);
        Assert.True(secondGotIt);
        Assert.Equal(0, sem!.CurrentCount); // second holds the one permit
    }

    [Fact]
    public void Kill_AfterHandoff_VictimKeepsPermitAndItsFinallyReleasesIt()
    {
        using var s = new Scheduler();
        Tasklet? holder = null;
        bool acquired = false;
        Exception? atNextBlock = null;
        AsyncSemaphore? sem = null;
        s.Go(async () =>
        {
            sem = new AsyncSemaphore(0, 1);
            holder = Tasklet.Go(async () =>
            {
                await sem.WaitAsync();
                acquired = true; // the kill came after the handoff: the permit is ours
                try
                {
                    atNextBlock = await Record.ExceptionAsync(async () => await Tasklet.Yield());
                }
                finally
                {
                    sem.Release();
                }
            });
            await Tasklet.Yield(); // holder parks
            sem.Release();         // claimed for holder
            holder.Kill();         // too late for that wait
            Assert.Equal(0, sem.CurrentCount);
        });
        s.Run();
        Assert.True(acquired);
        Assert.IsType<TaskletExitException>(atNextBlock);
        Assert.Equal(1, sem!.CurrentCount);
    }

    [Fact]
    public void Timeout_WaitTakesNothing_LaterReleaseStaysFree()
    {
        using var s = SchedulerExtensions.Deterministic();
        AsyncSemaphore? sem = null;
        Exception? caught = null;
        s.Go(async () =>
        {
            sem = new AsyncSemaphore(0);
            using (Tasklet.Timeout(TimeSpan.FromSeconds(5)))
            {
                caught = await Record.ExceptionAsync(async () => await sem.WaitAsync());
            }

            sem.Release();
        });
        s.Run();
        Assert.IsType<TaskletTimeoutException>(caught);
        Assert.Equal(1, sem!.CurrentCount);
    }

    [Fact]
    public void Cancel_WaitTakesNothing_NextWaiterGetsThePermit()
    {
        using var s = new Scheduler();
        AsyncSemaphore? sem = null;
        Exception? cancelled = null;
        bool secondGotIt = false;
        s.Go(async () =>
        {
            sem = new AsyncSemaphore(0);
            using var cts = new CancellationTokenSource();
            Tasklet.Go(async () => cancelled = await Record.ExceptionAsync(async () => await sem.WaitAsync(cts.Token)));
            Tasklet.Go(async () => { await sem.WaitAsync(); secondGotIt = true; });
            await Tasklet.Yield();
            cts.Cancel();  // ends the first wait now (claimed by the callback)
            sem.Release(); // goes to the second waiter
            await Tasklet.Yield();
        });
        s.Run();
        Assert.IsAssignableFrom<OperationCanceledException>(cancelled);
        Assert.True(secondGotIt);
        Assert.Equal(0, sem!.CurrentCount);
    }

    [Fact]
    public void WaitAsync_CancelledToken_FailsWithoutTaking()
    {
        var sem = new AsyncSemaphore(1);
        ValueTask wait = sem.WaitAsync(new CancellationToken(canceled: true));
        Assert.True(wait.IsCanceled);
        Assert.Equal(1, sem.CurrentCount);
    }

    [Fact]
    public void Wait_Blocking_InsideTasklet_ThrowsAndSaysUseWaitAsync()
    {
        using var s = new Scheduler();
        InvalidOperationException? ex = null;
        var sem = new AsyncSemaphore(1);
        s.Go(() =>
        {
            ex = Assert.Throws<InvalidOperationException>(() => sem.Wait());
            return Task.CompletedTask;
        });
        s.Run();
        Assert.Contains("WaitAsync", ex!.Message);
        Assert.Equal(1, sem.CurrentCount);
    }

    [Fact]
    public void Wait_Blocking_OsThread_WokenByReleaseFromAnotherThread()
    {
        // The release races the park (either order must work); 200 rounds cover both.
        var sem = new AsyncSemaphore(0);
        for (int i = 0; i < 200; i++)
        {
            var waiter = new Thread(() => sem.Wait()) { IsBackground = true };
            waiter.Start();
            sem.Release();
            Assert.True(waiter.Join(TimeSpan.FromSeconds(30)), "hang guard: the blocked thread was not woken");
        }

        Assert.Equal(0, sem.CurrentCount);
    }

    [Fact]
    public void Wait_Blocking_CancelledFromAnotherThread_TakesNothing()
    {
        var sem = new AsyncSemaphore(0);
        using var cts = new CancellationTokenSource();
        Exception? caught = null;
        var waiter = new Thread(() => caught = Record.Exception(() => sem.Wait(cts.Token))) { IsBackground = true };
        waiter.Start();
        cts.Cancel();
        Assert.True(waiter.Join(TimeSpan.FromSeconds(30)), "hang guard");
        Assert.IsAssignableFrom<OperationCanceledException>(caught);
        sem.Release();
        Assert.Equal(1, sem.CurrentCount);
    }

    [Fact]
    public void DebuggerDisplay_ResolvesForEverySyncPrimitive()
    {
        object[] primitives =
        [
            new AsyncSemaphore(1, 2) { Name = "s" },
            new AsyncManualResetEvent { Name = "e" },
            new WaitGroup { Name = "w" },
            new AsyncBarrier(2) { Name = "b" },
        ];
        string[] expected = ["semaphore 's' (1 of 2 free)", "event 'e' (not set)", "wait group 'w' (count 0)", "barrier 'b' (0 of 2 arrived)"];
        for (int i = 0; i < primitives.Length; i++)
        {
            Type type = primitives[i].GetType();
            var attribute = (System.Diagnostics.DebuggerDisplayAttribute?)Attribute.GetCustomAttribute(type, typeof(System.Diagnostics.DebuggerDisplayAttribute));
            Assert.Equal("{DebuggerDisplay,nq}", attribute?.Value);
            var property = type.GetProperty("DebuggerDisplay", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic);
            Assert.Equal(expected[i], (string?)property?.GetValue(primitives[i]));
        }
    }

    [Fact]
    public void Dump_NamesTheSemaphoreAndItsFreePermits()
    {
        using var s = new Scheduler();
        var pool = new AsyncSemaphore(0, 4) { Name = "pool" };
        Tasklet t = s.Go(async () => await pool.WaitAsync(), "client");
        s.RunUntilIdle();
        Assert.Contains($"{t.Id} 'client' Blocked: wait on semaphore 'pool' (0 of 4 free)", s.Dump());
        var unbounded = new AsyncSemaphore(0) { Name = "u" };
        Tasklet u = s.Go(async () => await unbounded.WaitAsync(), "other");
        s.RunUntilIdle();
        Assert.Contains($"{u.Id} 'other' Blocked: wait on semaphore 'u' (0 free)", s.Dump());
        pool.Release();
        unbounded.Release();
        s.RunUntilIdle();
        Assert.False(t.IsAlive);
        Assert.False(u.IsAlive);
    }
}

// Deadlock detection waits until every scheduler inside Run() in the process is stuck, so these run alone.
[Collection(NonParallel.Name)]
public class AsyncSemaphoreDeadlockTests
{
    [Fact]
    public void Run_TwoTaskletsEachHoldingWhatTheOtherWaitsFor_ReportsBothWithTheSemaphores()
    {
        using var s = new Scheduler();
        Tasklet? a = null, b = null;
        s.Go(async () =>
        {
            var left = new AsyncSemaphore(1, 1) { Name = "left" };
            var right = new AsyncSemaphore(1, 1) { Name = "right" };
            var bothHold = new WaitGroup();
            bothHold.Add(2);
            a = Tasklet.Go(async () => { await left.WaitAsync(); bothHold.Done(); await bothHold.WaitAsync(); await right.WaitAsync(); }, "a");
            b = Tasklet.Go(async () => { await right.WaitAsync(); bothHold.Done(); await bothHold.WaitAsync(); await left.WaitAsync(); }, "b");
        });

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Equal(2, ex.Blocked.Count);
        Assert.Contains($"tasklet {a!.Id} 'a': wait on semaphore 'right' (0 of 1 free)", ex.Message);
        Assert.Contains($"tasklet {b!.Id} 'b': wait on semaphore 'left' (0 of 1 free)", ex.Message);
    }
}
