using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

namespace Tasklets.Hosting.Tests;

public sealed class LoggingTests
{
    [Fact]
    public async Task UnobservedFailure_TaskletServiceThrows_LoggedAsErrorWithItsNameAndException()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services =>
            services.AddTasklet((_, _) => throw new InvalidOperationException("the inventory file is missing"), "inventory"));

        await host.StartAsync();
        LogEntry error = logs.WaitFor("UnobservedFailure");
        await host.StopAsync();

        Assert.Equal(TaskletSchedulerOptions.LoggerCategory, error.Category);
        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains("'inventory'", error.Message, StringComparison.Ordinal);
        Assert.Equal("the inventory file is missing", Assert.IsType<InvalidOperationException>(error.Exception).Message);
        Assert.Single(logs.Of("UnobservedFailure")); // Run's AggregateException repeats it: not logged twice
        Assert.Empty(logs.Of("RunFailure"));
    }

    [Fact]
    public async Task UnobservedFailure_UserCallbackSet_CalledAfterTheLogEntry()
    {
        var logs = new CapturingLoggerProvider();
        var called = new TaskCompletionSource<(string Name, int EntriesBefore)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using IHost host = TestHost.Build(logs, services => services
            .AddTaskletScheduler(o => o.Scheduler = o.Scheduler with
            {
                OnUnobservedFailure = (tasklet, _) => called.TrySetResult((tasklet.Name, logs.Of("UnobservedFailure").Count)),
            })
            .AddTasklet((_, _) => throw new FormatException("bad"), "parser"));

        await host.StartAsync();
        (string name, int entriesBefore) = await TestHost.Within(called.Task);
        await host.StopAsync();

        Assert.Equal("parser", name);
        Assert.Equal(1, entriesBefore);
    }

    [Fact]
    public async Task UnobservedFailure_UserCallbackThrows_ItsExceptionIsLoggedToo()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services => services
            .AddTaskletScheduler(o => o.Scheduler = o.Scheduler with { OnUnobservedFailure = (_, _) => throw new ArithmeticException("callback bug") })
            .AddTasklet((_, _) => throw new FormatException("bad"), "parser"));

        await host.StartAsync();
        logs.WaitFor("UnobservedFailure");

        // The library keeps a callback's failure for the Run in progress to throw when it returns (here: at the stop,
        // where it takes precedence over the cancellation); only the callback's failure is new then.
        await host.StopAsync();
        LogEntry runFailure = Assert.Single(logs.Of("RunFailure"));

        Assert.IsType<ArithmeticException>(Assert.IsType<InvalidOperationException>(runFailure.Exception).InnerException);
        Assert.Single(logs.Of("UnobservedFailure"));
        Assert.Single(logs.Of("RunFailure"));
    }

    [Fact]
    public async Task Stalled_StepBlocksTheThread_LoggedAsWarningWithTheDump()
    {
        var logs = new CapturingLoggerProvider();
        using var release = new ManualResetEventSlim();
        using IHost host = TestHost.Build(logs, services => services
            .AddTaskletScheduler(o => o.Scheduler = o.Scheduler with { StallTimeout = TimeSpan.FromMilliseconds(50) })
            .AddTasklet((_, _) =>
            {
                release.Wait(CancellationToken.None); // a blocking call inside a step: the long-step stall
                return Task.CompletedTask;
            }, "blocker"));

        await host.StartAsync();
        LogEntry warning;
        try
        {
            warning = logs.WaitFor("Stalled");
        }
        finally
        {
            release.Set();
        }

        await host.StopAsync();
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("long step: True", warning.Message, StringComparison.Ordinal);
        Assert.Contains("one step has run without a switch", warning.Message, StringComparison.Ordinal);
        Assert.Contains("'blocker'", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Deadlock_TaskletsBlockedOnChannelsTheyMade_LoggedAsErrorWithTheirNamesAndTheHostGoesOn()
    {
        var logs = new CapturingLoggerProvider();
        bool leftFinallyRan = false;
        using IHost host = TestHost.Build(logs, services => services.AddTasklet(async (_, _) =>
        {
            // Channels made inside a tasklet and never handed out: nothing outside can ever use them.
            var toLeft = new Channel<int> { Name = "to left" };
            var toRight = new Channel<int> { Name = "to right" };
            _ = Tasklet.Go(async () => await toRight.ReceiveAsync(CancellationToken.None), "right");
            try
            {
                await toLeft.ReceiveAsync(CancellationToken.None);
            }
            finally
            {
                leftFinallyRan = true;
            }
        }, "left"));
        var scheduler = host.Services.GetRequiredService<Scheduler>();

        await host.StartAsync();
        LogEntry error = logs.WaitFor("Deadlock");

        // Killed (KillOnDeadlock) and dead; the scheduler serves on.
        Tasklet<int> later = scheduler.Go(() => Task.FromResult(42), "later");
        Assert.Equal(42, await TestHost.Within(later.AsTask()));
        await host.StopAsync();

        Assert.Equal(LogLevel.Error, error.Level);
        Assert.Contains("'left'", error.Message, StringComparison.Ordinal);
        Assert.Contains("'right'", error.Message, StringComparison.Ordinal);
        var deadlock = Assert.IsType<DeadlockException>(error.Exception);
        Assert.Equal(["left", "right"], deadlock.Blocked.Select(t => t.Name).Order());
        Assert.True(leftFinallyRan);
        Assert.Empty(logs.Of("DeadlockSurvivors"));
    }

    [Fact]
    public async Task Deadlock_KillOnDeadlockFalse_ReportedOnceThenDetectionOffAndTheTaskletKilledAtStop()
    {
        var logs = new CapturingLoggerProvider();
        bool finallyRan = false;
        using IHost host = TestHost.Build(logs, services => services
            .AddTaskletScheduler(o => o.Scheduler = o.Scheduler with { KillOnDeadlock = false })
            .AddTasklet(async (_, _) =>
            {
                var never = new Channel<int> { Name = "never" };
                try
                {
                    await never.ReceiveAsync(CancellationToken.None);
                }
                finally
                {
                    finallyRan = true;
                }
            }, "lonely"));
        var scheduler = host.Services.GetRequiredService<Scheduler>();

        await host.StartAsync();
        logs.WaitFor("Deadlock");
        LogEntry survivors = logs.WaitFor("DeadlockSurvivors");

        // Were the same deadlock judged again, each Run would throw it at once, between these steps too.
        for (int i = 0; i < 3; i++)
        {
            Tasklet<int> sentinel = scheduler.Go(async () =>
            {
                await Tasklet.Yield();
                return i;
            }, "sentinel");
            Assert.Equal(i, await TestHost.Within(sentinel.AsTask()));
        }

        Assert.Contains(scheduler.Tasklets, t => t.Name == "lonely");
        Assert.False(finallyRan);
        await host.StopAsync();

        Assert.Contains("'lonely'", survivors.Message, StringComparison.Ordinal);
        Assert.Single(logs.Of("Deadlock"));
        Assert.True(finallyRan); // the stop kills it: Run(token) does not honour the hold
        Assert.Empty(scheduler.Tasklets);
    }

    [Fact]
    public async Task DetectDeadlocksFalse_TaskletWaitsOnAChannelItMadeAndHandedOut_NotKilledAndServedLater()
    {
        var logs = new CapturingLoggerProvider();
        var handedOut = new TaskCompletionSource<Channel<int>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var received = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        using IHost host = TestHost.Build(logs, services => services
            .AddTaskletScheduler(o => o.DetectDeadlocks = false)
            .AddTasklet(async (_, _) =>
            {
                // The blind spot: made inside a tasklet, handed to plain code outside the library's primitives.
                var mailbox = new Channel<int> { Name = "mailbox" };
                handedOut.TrySetResult(mailbox);
                received.TrySetResult(await mailbox.ReceiveAsync(CancellationToken.None));
            }, "postman"));
        var scheduler = host.Services.GetRequiredService<Scheduler>();

        await host.StartAsync();
        Channel<int> mailbox = await TestHost.Within(handedOut.Task);

        // Blocked, and the scheduler idle (nothing ready): with detection on, this is where it is judged deadlocked.
        Tasklet postman = Assert.Single(scheduler.Tasklets);
        TestHost.SpinUntil(() => postman.State == TaskletState.Blocked && scheduler.RunnableCount == 0, "the postman blocks");
        await TestHost.Within(mailbox.SendAsync(7).AsTask());
        Assert.Equal(7, await TestHost.Within(received.Task));
        await host.StopAsync();

        Assert.Empty(logs.Of("Deadlock"));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning);
    }
}
