using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Structured;

// Deadlock detection waits until every scheduler inside Run() in the process is stuck, so these tests run alone.
[Collection(NonParallel.Name)]
public class StructuredDiagnosticsTests
{
    [Fact]
    public void Run_GroupWaitOverBlockedChildren_DeadlockNamesTheParentsJoinAndEveryChild()
    {
        using var s = new Scheduler();
        Tasklet? a = null, b = null;
        bool childFinally = false;
        Tasklet parent = s.Go(async () =>
        {
            var never = new Channel<int> { Name = "never" };
            await using var group = new TaskletGroup("workers");
            a = group.Go(async () =>
            {
                try
                {
                    await never.ReceiveAsync();
                }
                finally
                {
                    childFinally = true;
                }
            }, "a");
            var other = new Channel<string> { Name = "other" };
            b = group.Go(async () => await other.ReceiveAsync(), "b");
        }, "parent");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"tasklet {parent.Id} 'parent': join of tasklet {a!.Id} 'a'", ex.Message);
        Assert.Contains($"tasklet {a.Id} 'a': receive on channel 'never'", ex.Message);
        Assert.Contains($"tasklet {b!.Id} 'b': receive on channel 'other'", ex.Message);
        Assert.Contains(parent, ex.Blocked);
        Assert.Contains(a, ex.Blocked);
        Assert.True(childFinally, "KillOnDeadlock runs the children's finally blocks, and the group waits for them");
        Assert.False(parent.IsAlive);
    }

    [Fact]
    public void Run_WhenAllOverBlockedTasklets_DeadlockNamesThem()
    {
        using var s = new Scheduler();
        Tasklet? x = null, y = null;
        Tasklet main = s.Go(async () =>
        {
            var c = new Channel<int> { Name = "c" };
            x = Tasklet.Go(async () => await c.ReceiveAsync(), "x");
            y = Tasklet.Go(async () => await c.ReceiveAsync(), "y");
            await Tasklet.WhenAll(x, y);
        }, "main");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"tasklet {main.Id} 'main': join of tasklet {x!.Id} 'x'", ex.Message);
        Assert.Contains($"tasklet {x.Id} 'x': receive on channel 'c'", ex.Message);
        Assert.Contains($"tasklet {y!.Id} 'y': receive on channel 'c'", ex.Message);
        Assert.Equal(3, ex.Blocked.Count);
    }

    [Fact]
    public void Run_WhenAnyOverBlockedTasklets_DeadlockDescribesEveryJoinCase()
    {
        using var s = new Scheduler();
        Tasklet? x = null, y = null;
        s.Go(async () =>
        {
            var c = new Channel<int> { Name = "c" };
            x = Tasklet.Go(async () => await c.ReceiveAsync(), "x");
            y = Tasklet.Go(async () => await c.ReceiveAsync(), "y");
            await Tasklet.WhenAny(x, y);
        }, "main");

        var ex = Assert.Throws<DeadlockException>(s.Run);
        Assert.Contains($"'main': select over 2 case(s): join of tasklet {x!.Id} 'x'; join of tasklet {y!.Id} 'y'", ex.Message);
    }

    [Fact]
    public void Dump_ShowsGroupWhenAllAndJoinCaseWaits()
    {
        using var s = new Scheduler(new SchedulerOptions { Seed = 1 });
        var never = new Channel<int> { Name = "never" };
        Tasklet? child = null;
        Tasklet parent = s.Go(async () =>
        {
            await using var group = new TaskletGroup("g");
            child = group.Go(async () => await never.ReceiveAsync(), "child");
        }, "parent");
        Tasklet all = s.Go(async () => await Tasklet.WhenAll(parent), "all");
        Tasklet any = s.Go(async () => await Select.WaitAsync(parent.JoinCase(), never.ReceiveCase()), "selector");
        s.RunUntilIdle();

        string dump = s.Dump();
        Assert.Contains($"{parent.Id} 'parent' Blocked: join of tasklet {child!.Id} 'child'", dump);
        Assert.Contains($"{all.Id} 'all' Blocked: join of tasklet {parent.Id} 'parent'", dump);
        Assert.Contains($"{any.Id} 'selector' Blocked: select over 2 case(s): join of tasklet {parent.Id} 'parent'; receive on channel 'never'", dump);
        child.Kill();
        never.TrySend(1);
        s.Run();
    }
}
