using System.Reflection;
using System.Runtime.CompilerServices;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Deadlock;

/// <summary>
/// Review of deadlock detection per group of schedulers (issue 15). Each test is a finding of the review: it failed on
/// 16fe7dc and passes with its fix. The cause is in the comment of each test. Tests that would hang on the bug are bounded by a hang guard, after
/// which they kill the blocked tasklets so that the scheduler's thread ends and the process is left clean.
/// </summary>
[Collection(NonParallel.Name)]
public class GroupReviewTests
{
    // ------------------------------------------------------------------ missed deadlocks

    /// <summary>
    /// Missed deadlock (hang). A group is re-examined only when one of its schedulers gets stuck (WaitStuck) or
    /// leaves Run() (ExitDeadlockTracking). A member pumped by RunOnce/RunFor that ends its last tasklet becomes
    /// "finished" without either, so the stuck member, whose verdict was taken while the partner still had a tasklet,
    /// sleeps forever. Fix: when a RunOnce/RunFor/Shutdown pass leaves the scheduler with no tasklet alive and an
    /// empty inbox, and it has a group (a parent or members), call DeclareIfGroupDeadlocked under the gate (the cost
    /// is once per pass that ends finished, not per step).
    /// </summary>
    [Fact]
    public void PartnerPumpedByRunOnce_EndsItsLastTasklet_AfterTheWaiterGotStuck_TheWaiterIsDeadlocked()
    {
        using var a = new Scheduler();
        using var pumped = new Scheduler();
        Tasklet waiter = a.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            pumped.Go(() => Task.CompletedTask, "short"); // a spawn from a's tasklet: one group
            await never.ReceiveAsync();
        }, "waiter");

        RunningScheduler aRun = RunningScheduler.Start(a);
        RunningScheduler.WaitUntil(() => a.IsStuckForDeadlock, "a never got stuck"); // rightly no verdict: "short" is alive in pumped's inbox
        pumped.RunUntilIdle(); // "short" ends: nothing in the group can act any more

        DeadlockException deadlock = Assert.IsType<DeadlockException>(aRun.JoinOrUnblock(waiter));
        Assert.Contains("'waiter': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Missed deadlock (hang), same cause as above: Dispose of a partner that is not running kills its tasklets
    /// (Shutdown), which leaves it finished, and nobody re-examines the group. Fix: as above, at the end of Dispose.
    /// </summary>
    [Fact]
    public void PartnerDisposed_AfterTheWaiterGotStuck_TheWaiterIsDeadlocked()
    {
        using var a = new Scheduler();
        var partner = new Scheduler();
        Tasklet waiter = a.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            partner.Go(() => Task.CompletedTask, "never-run");
            await never.ReceiveAsync();
        }, "waiter");

        RunningScheduler aRun = RunningScheduler.Start(a);
        RunningScheduler.WaitUntil(() => a.IsStuckForDeadlock, "a never got stuck");
        partner.Dispose(); // kills "never-run" before it starts: the partner is finished, and disposed for good

        DeadlockException deadlock = Assert.IsType<DeadlockException>(aRun.JoinOrUnblock(waiter));
        Assert.Contains("'waiter': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// Missed deadlock (hang). Scheduler.Run(main) abandons leftovers stuck in foreign awaits (0b64c59) and disposes its
    /// scheduler, which can never run them again; but IsFinished requires no tasklet alive, so that scheduler blocks its
    /// group's verdict forever: a partner that waits on a channel only main used hangs. Fix: a disposed scheduler (and
    /// one whose Run(main) abandoned its leftovers) counts as finished whatever it still holds, and Dispose re-examines
    /// its group (see above).
    /// </summary>
    [Fact]
    public void RunMainThatAbandonedALeftover_DoesNotHideItsPartnersDeadlock()
    {
        using var b = new Scheduler();
        var never = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Tasklet? orphan = null;
        Scheduler.Run(async () =>
        {
            var fromMain = new Channel<int> { Name = "from-main" };
            orphan = b.Go(async () => await fromMain.ReceiveAsync(), "orphan"); // main's scheduler and b: one group
            Tasklet.Go(async () => await never.Task, "leftover"); // a foreign await that never completes
            await Tasklet.Yield(); // the leftover starts: Run(main) will abandon it
        });

        RunningScheduler bRun = RunningScheduler.Start(b);
        DeadlockException deadlock = Assert.IsType<DeadlockException>(bRun.JoinOrUnblock(orphan!));
        Assert.Contains("'orphan': receive on channel 'from-main'", deadlock.Message, StringComparison.Ordinal);
    }

    // ------------------------------------------------------------------ false positives

    /// <summary>
    /// False positive (a tasklet killed that would have been woken). InvokeAsync from a tasklet of a hands code to
    /// another scheduler exactly as b.Go(...) does, with whatever the delegate captures, but only Spawn merges the
    /// groups: a, alone in its group, is declared deadlocked while ui's inbox holds the step that will send. This is
    /// not the documented blind spot (the hand-over is through the library's own API, which docs/semantics.md lists
    /// for Go only). Fix: PostInvocation merges like Spawn when t_running is another scheduler (ui then is not
    /// finished while the invocation is posted, so a stays stuck, not declared, until ui runs it).
    /// </summary>
    [Fact]
    public void AnInvocationPostedToAnotherScheduler_ThatWillSend_IsNotADeadlock()
    {
        using var a = new Scheduler();
        using var ui = new Scheduler(); // a host's scheduler, pumped by its loop later
        int got = 0;
        Tasklet asker = a.Go(async () =>
        {
            var reply = new Channel<int>(capacity: 1) { Name = "reply" };
            _ = ui.InvokeAsync(() => reply.TrySend(7)).AsTask(); // runs on ui, outside any tasklet, when ui is pumped
            got = await reply.ReceiveAsync();
        }, "asker");

        RunningScheduler aRun = RunningScheduler.Start(a);
        RunningScheduler.WaitUntil(() => aRun.IsDone || a.IsStuckForDeadlock, "a neither got stuck nor ended");
        ui.RunUntilIdle(); // the invocation sends the reply

        Assert.Null(aRun.JoinOrUnblock(asker));
        Assert.Equal(7, got);
    }

    // ------------------------------------------------------------------ growth, leaks

    /// <summary>
    /// Memory leak through the groups: a merge makes the new group's root the parent of the old one's root
    /// (rootB._groupParent = rootA, rootA being the spawner's side), so a long-lived hub that short-lived schedulers
    /// spawn onto points at each of them in turn, and each new root copies the whole member list. See the fix above.
    /// </summary>
    [Fact]
    public void ASchedulerThatSpawnedOntoALongLivedOne_IsCollectedOnceDisposed()
    {
        using var hub = new Scheduler();
        WeakReference visitor = SpawnOntoAndDispose(hub);
        hub.RunUntilIdle();
        CollectEverything();

        Assert.False(visitor.IsAlive, "the hub keeps the disposed scheduler that spawned onto it alive");
    }

    /// <summary>
    /// Unbounded cost. The union has neither rank nor path compression, and the spawner's root always becomes the
    /// root: N short-lived schedulers that each spawn onto one hub make a chain of N parents above the hub, so every
    /// later RootOf(hub) (each cross-scheduler spawn or join involving it, each verdict of its group) walks N links,
    /// and the N merges copy 1 + 2 + ... + N member entries. Fix: union by size (the larger group's root stays root)
    /// and path halving in RootOf under the gate; the lock-free fast path stays correct with either.
    /// </summary>
    [Fact]
    public void ManySchedulersSpawningOntoOneHub_KeepItsGroupChainShort()
    {
        const int Visitors = 256;
        using var hub = new Scheduler();
        var visitors = new List<Scheduler>();
        for (int i = 0; i < Visitors; i++)
        {
            var visitor = new Scheduler();
            visitor.Go(() =>
            {
                hub.Go(() => Task.CompletedTask, "visit");
                return Task.CompletedTask;
            }, "visitor");
            visitor.Run();
            visitors.Add(visitor);
        }

        hub.RunUntilIdle();
        FieldInfo parent = typeof(Scheduler).GetField("_groupParent", BindingFlags.Instance | BindingFlags.NonPublic)!;
        int depth = 0;
        for (var s = (Scheduler?)parent.GetValue(hub); s is not null; s = (Scheduler?)parent.GetValue(s))
        {
            depth++;
        }

        foreach (Scheduler visitor in visitors)
        {
            visitor.Dispose();
        }

        Assert.True(depth <= 9, $"the hub's group chain is {depth} links long after {Visitors} merges (log2 is 8)");
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference UseAndDispose(Channel<int> shared)
    {
        var scheduler = new Scheduler();
        scheduler.Go(async () => await shared.SendAsync(1), "user");
        scheduler.Run();
        scheduler.Dispose();
        return new WeakReference(scheduler);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static WeakReference SpawnOntoAndDispose(Scheduler hub)
    {
        var scheduler = new Scheduler();
        scheduler.Go(() =>
        {
            hub.Go(() => Task.CompletedTask, "visit");
            return Task.CompletedTask;
        }, "visitor");
        scheduler.Run();
        scheduler.Dispose();
        return new WeakReference(scheduler);
    }

    private static void CollectEverything()
    {
        for (int i = 0; i < 3; i++)
        {
            GC.Collect();
            GC.WaitForPendingFinalizers();
        }
    }
}
