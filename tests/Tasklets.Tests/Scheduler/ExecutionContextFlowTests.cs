using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// Issue 15, DESIGN "Context flows like Task.Run": Go captures the caller's ExecutionContext (AsyncLocal values,
/// Activity.Current, logging scopes) and the tasklet starts in it; what a tasklet or a posted callback sets never
/// leaks into another tasklet or into the thread that called Run. Each test fails on the build before.
/// </summary>
public class ExecutionContextFlowTests
{
    private static readonly AsyncLocal<string?> s_requestId = new();

    [Fact]
    public void Go_FromOutside_TheTaskletStartsInTheCallersContext()
    {
        using var s = new Scheduler();
        string? seen = null;
        s_requestId.Value = "request 7";
        try
        {
            s.Go(() =>
            {
                seen = s_requestId.Value;
                return Task.CompletedTask;
            });
        }
        finally
        {
            s_requestId.Value = null; // Run below starts in a context without it
        }

        s.Run();
        Assert.Equal("request 7", seen);
    }

    [Fact]
    public void Go_FromATasklet_TheChildStartsInTheSpawnersContext_AndItsChangesStayItsOwn()
    {
        var seen = new List<string?>();
        Scheduler.Run(async () =>
        {
            s_requestId.Value = "parent";
            Tasklet child = Tasklet.Go(async () =>
            {
                seen.Add(s_requestId.Value);
                s_requestId.Value = "child";
                await Tasklet.Yield();
                seen.Add(s_requestId.Value);
            });
            await child;
            seen.Add(s_requestId.Value);
        });
        Assert.Equal(["parent", "child", "parent"], seen);
    }

    [Fact]
    public void NonAsyncBody_SettingAnAsyncLocal_DoesNotLeakIntoALaterTasklet_OrTheRunThread()
    {
        using var s = new Scheduler();
        string? seenByLater = "unset";
        s.Go(() =>
        {
            s_requestId.Value = "leaked?";
            return Task.CompletedTask;
        });
        s.Go(() =>
        {
            seenByLater = s_requestId.Value;
            return Task.CompletedTask;
        });
        s.Run();
        Assert.Null(seenByLater);
        Assert.Null(s_requestId.Value);
    }

    [Fact]
    public async Task InvokeAsyncCallback_SettingAnAsyncLocal_DoesNotLeakIntoTheRunThread()
    {
        using var s = new Scheduler();
        string? afterRun = "unset";
        var runner = new Thread(() =>
        {
            s.Run();
            afterRun = s_requestId.Value; // the thread that called Run, after it returned
        });
        IDisposable hold = s.KeepAlive(); // Run waits for posted work while the hold exists
        runner.Start();
        await s.InvokeAsync(() => s_requestId.Value = "leaked?");
        hold.Dispose(); // nothing alive and no hold: Run returns
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)), "hang guard");
        Assert.Null(afterRun);
    }
}
