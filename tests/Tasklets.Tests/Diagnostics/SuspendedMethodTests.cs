using Tasklets.Internal;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

// Issue 15: dotnet-dump shows state machines with no tasklet; Dump names the async methods each blocked tasklet is
// suspended in. The suite runs in Release (state machines are structs) and Debug (classes): both must read the same.
public class SuspendedMethodTests
{
    private static async Task Worker(Channel<int> jobs) => await jobs.ReceiveAsync();

    private static async Task Outer(Channel<int> jobs)
    {
        await Worker(jobs);
    }

    private static async ValueTask<int> Napper()
    {
        await Tasklet.Sleep(TimeSpan.FromHours(1));
        return 1;
    }

    private static async Task Generic<T>(Channel<T> channel) => await channel.ReceiveAsync();

    [Fact]
    public void Dump_TaskletBlockedInANamedAsyncMethod_NamesTheMethod()
    {
        using var s = new Scheduler();
        var jobs = new Channel<int> { Name = "jobs" };
        Tasklet worker = s.Go(() => Worker(jobs), "worker");
        s.RunOnce();

        string dump = s.Dump();
        Assert.Contains($"{worker.Id} 'worker' Blocked: receive on channel 'jobs'", dump);
        Assert.Matches(@"'worker' Blocked: receive on channel 'jobs'[^\n]*; in SuspendedMethodTests\.Worker\r?$", dump.Split('\n')[0]);
    }

    [Fact]
    public void Dump_TaskletBlockedInALambda_NamesTheMethodThatDeclaresIt()
    {
        using var s = new Scheduler();
        var jobs = new Channel<int> { Name = "jobs" };
        s.Go(async () => await jobs.ReceiveAsync(), "lambda");
        s.RunOnce();

        Assert.Contains("; in SuspendedMethodTests.Dump_TaskletBlockedInALambda_NamesTheMethodThatDeclaresIt (lambda)", s.Dump());
    }

    [Fact]
    public void Dump_NestedAwaits_NamesTheChainInnermostFirst()
    {
        using var s = new Scheduler();
        var jobs = new Channel<int> { Name = "jobs" };
        int captured = 3; // a capturing lambda: its state machine is nested in a display class, not in <>c
        s.Go(async () =>
        {
            await Outer(jobs);
            captured++;
        }, "nested");
        s.RunOnce();

        Assert.Contains(
            "; in SuspendedMethodTests.Worker <- SuspendedMethodTests.Outer <- SuspendedMethodTests.Dump_NestedAwaits_NamesTheChainInnermostFirst (lambda)",
            s.Dump());
        Assert.Equal(3, captured);
    }

    [Fact]
    public void Dump_LocalFunctionGenericMethodAndSleepInAValueTaskMethod_AreNamed()
    {
        using var s = new Scheduler();
        var strings = new Channel<string>();
        var jobs = new Channel<int>();
        s.Go(() => Generic(strings), "generic");
        s.Go(async () => await Napper(), "napper");
        s.Go(Local, "local");
        s.RunOnce();

        string dump = s.Dump();
        Assert.Contains("'generic' Blocked: receive on channel", dump);
        Assert.Contains("; in SuspendedMethodTests.Generic\n", dump.ReplaceLineEndings("\n"));
        Assert.Contains("'napper' Blocked: sleep", dump);
        Assert.Contains("; in SuspendedMethodTests.Napper <- SuspendedMethodTests.Dump_LocalFunctionGenericMethodAndSleepInAValueTaskMethod_AreNamed (lambda)", dump);
        Assert.Contains("; in SuspendedMethodTests.Dump_LocalFunctionGenericMethodAndSleepInAValueTaskMethod_AreNamed.Local (local function)", dump);
        s.Dispose();

        async Task Local() => await jobs.ReceiveAsync();
    }

    [Fact]
    public void Dump_ForeignAwaitAndRunnableTasklets_NameNoMethod_WhileALibraryWaitDoes()
    {
        using var s = new Scheduler();
        var io = new TaskCompletionSource();
        var jobs = new Channel<int>();
        s.Go(async () => await io.Task, "foreign");
        s.Go(() => Worker(jobs), "library");
        s.Go(async () => await Tasklet.Yield(), "yielder");
        s.RunOnce(); // one pass: the yielder is queued again, runnable

        string[] lines = s.Dump().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries);
        string foreign = Assert.Single(lines, l => l.Contains("'foreign'", StringComparison.Ordinal));
        Assert.Contains("Blocked: a foreign awaitable", foreign);
        Assert.DoesNotContain("; in", foreign); // its continuation is held by the foreign awaitable: nothing to name
        Assert.EndsWith("'yielder' Runnable", Assert.Single(lines, l => l.Contains("'yielder'", StringComparison.Ordinal)));
        Assert.EndsWith("; in SuspendedMethodTests.Worker", Assert.Single(lines, l => l.Contains("'library'", StringComparison.Ordinal)));
        io.SetResult();
        s.RunOnce();
    }

    [Fact]
    public void NameOf_CompilerNames_ReadAsTheSourceDoes()
    {
        // The library's own async methods are plumbing, not where the user's code is: they are left out.
        Assert.Null(AsyncMethodNames.Describe(new object()));
        Assert.Null(AsyncMethodNames.Describe(null));
        Type? worker = AsyncMethodNames.StateMachineOf(typeof(SuspendedMethodTests).GetNestedTypes(System.Reflection.BindingFlags.NonPublic)
            .Single(t => t.Name.StartsWith("<Worker>", StringComparison.Ordinal)));
        Assert.NotNull(worker);
        Assert.Equal("SuspendedMethodTests.Worker", AsyncMethodNames.NameOf(worker!));
    }
}
