using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Tasklets.Hosting.Tests;

/// <summary>A request box a test feeds from outside: its channel is made outside any tasklet (a DI singleton).</summary>
public sealed class Doubler
{
    public Channel<(int Value, TaskCompletionSource<int> Reply)> Requests { get; } = new(capacity: 4) { Name = "doubler requests" };
}

/// <summary>Records where it was constructed.</summary>
public sealed class ConstructionProbe
{
    public Tasklet? ConstructedIn { get; } = Tasklet.Current;

    public string? ConstructedOnThread { get; } = Thread.CurrentThread.Name;
}

public sealed class LifecycleTests
{
    [Fact]
    public async Task AddTaskletOfT_HostStarts_ServiceResolvedOutsideAnyTaskletAndHandedToTheBody()
    {
        var logs = new CapturingLoggerProvider();
        var given = new TaskCompletionSource<ConstructionProbe>(TaskCreationOptions.RunContinuationsAsynchronously);
        using IHost host = TestHost.Build(logs, services => services
            .AddSingleton<ConstructionProbe>()
            .AddTasklet<ConstructionProbe>((probe, _) =>
            {
                given.TrySetResult(probe);
                return Task.CompletedTask;
            }, "probe"));

        await host.StartAsync();
        ConstructionProbe probe = await TestHost.Within(given.Task);
        await host.StopAsync();

        Assert.Same(host.Services.GetRequiredService<ConstructionProbe>(), probe);
        Assert.Null(probe.ConstructedIn);
        Assert.NotEqual(HostedScheduler.ThreadName, probe.ConstructedOnThread);
    }

    [Fact]
    public async Task AddTasklet_HostStarted_RunsOnTheHostedSchedulerThreadAndServesRequests()
    {
        var logs = new CapturingLoggerProvider();
        var seen = new TaskCompletionSource<(string? Thread, Scheduler? Scheduler)>(TaskCreationOptions.RunContinuationsAsynchronously);
        using IHost host = TestHost.Build(logs, services =>
        {
            services.AddSingleton<Doubler>();
            services.AddTasklet(async (provider, _) => // the provider form; the Doubler was resolved before the start
            {
                seen.TrySetResult((Thread.CurrentThread.Name, Scheduler.Current));
                var doubler = provider.GetRequiredService<Doubler>();
                await foreach ((int value, TaskCompletionSource<int> reply) in doubler.Requests)
                {
                    reply.TrySetResult(value * 2);
                }
            }, "doubler");
        });
        var doubler = host.Services.GetRequiredService<Doubler>();

        await host.StartAsync();
        var replies = new List<Task<int>>();
        for (int i = 0; i < 20; i++)
        {
            var reply = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
            await TestHost.Within(doubler.Requests.SendAsync((i, reply)).AsTask());
            replies.Add(reply.Task);
        }

        int[] doubled = await TestHost.Within(Task.WhenAll(replies));
        (string? thread, Scheduler? scheduler) = await TestHost.Within(seen.Task);
        await host.StopAsync();

        Assert.Equal(Enumerable.Range(0, 20).Select(i => i * 2), doubled);
        Assert.Equal(HostedScheduler.ThreadName, thread);
        Assert.Same(host.Services.GetRequiredService<Scheduler>(), scheduler);
    }

    [Fact]
    public async Task StopAsync_TaskletBlockedOnAChannel_KillsItAndItsFinallyRanBeforeStopAsyncReturned()
    {
        var logs = new CapturingLoggerProvider();
        var blocked = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool finallyRan = false;
        Exception? raised = null;
        using IHost host = TestHost.Build(logs, services =>
        {
            services.AddSingleton<Doubler>();
            // AddTasklet<T>: the Doubler, and so its channel, is made on the host's thread, outside any tasklet: a
            // tasklet blocked on it waits for outside code, it is not deadlocked (no Deadlock entry below).
            services.AddTasklet<Doubler>(async (doubler, _) =>
            {
                try
                {
                    blocked.TrySetResult();
                    await doubler.Requests.ReceiveAsync(CancellationToken.None); // nobody sends; the kill itself ends the wait
                }
                catch (Exception e)
                {
                    raised = e;
                    throw;
                }
                finally
                {
                    finallyRan = true;
                }
            }, "waiter");
        });
        var scheduler = host.Services.GetRequiredService<Scheduler>();

        await host.StartAsync();
        await TestHost.Within(blocked.Task);
        await host.StopAsync(CancellationToken.None);

        // Written on the scheduler's thread before its Run returned; StopAsync returned after that (the loop's task).
        Assert.True(finallyRan);
        Assert.IsType<TaskletExitException>(raised);
        Assert.Empty(scheduler.Tasklets);
        Assert.Single(logs.Of("SchedulerStopped"));
        Assert.Empty(logs.Of("StopTimedOut"));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning);
    }

    [Fact]
    public async Task StopAsync_TokenAlreadyCancelled_ReturnsAndLogsTheDumpOfWhatIsStillAlive()
    {
        var logs = new CapturingLoggerProvider();
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        using IHost host = TestHost.Build(logs, services => services.AddTasklet((_, _) =>
        {
            // A step that blocks the scheduler's thread: no kill can reach it until the test releases it.
            entered.Set();
            release.Wait(CancellationToken.None); // not the kill token: the point is that nothing can end this step
            return Task.CompletedTask;
        }, "stuck"));
        var hosted = host.Services.GetServices<IHostedService>().OfType<HostedScheduler>().Single();

        await host.StartAsync();
        try
        {
            Assert.True(entered.Wait(CapturingLoggerProvider.Guard));
            await TestHost.Within(hosted.StopAsync(new CancellationToken(canceled: true)));

            LogEntry warning = logs.WaitFor("StopTimedOut");
            Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Warning, warning.Level);
            Assert.Contains("'stuck'", warning.Message, StringComparison.Ordinal);
            Assert.Empty(logs.Of("SchedulerStopped")); // it returned while the scheduler was still inside the step
        }
        finally
        {
            release.Set();
        }

        // Released, the step ends, the stop's kills apply and the loop leaves: nothing is left running.
        logs.WaitFor("SchedulerStopped");
        await host.StopAsync();
    }

    [Fact]
    public async Task HostStopAsync_TokenAlreadyCancelled_ReturnsWithoutWaitingForTheBlockedStep()
    {
        var logs = new CapturingLoggerProvider();
        using var entered = new ManualResetEventSlim();
        using var release = new ManualResetEventSlim();
        using IHost host = TestHost.Build(logs, services => services.AddTasklet((_, _) =>
        {
            entered.Set();
            release.Wait(CancellationToken.None); // not the kill token: the point is that nothing can end this step
            return Task.CompletedTask;
        }, "stuck"));

        await host.StartAsync();
        try
        {
            Assert.True(entered.Wait(CapturingLoggerProvider.Guard));
            Exception? thrown = await Record.ExceptionAsync(() => TestHost.Within(host.StopAsync(new CancellationToken(canceled: true))));
            Assert.True(thrown is null or OperationCanceledException, $"unexpected: {thrown}");
            Assert.Contains("'stuck'", logs.WaitFor("StopTimedOut").Message, StringComparison.Ordinal);
        }
        finally
        {
            release.Set();
        }

        logs.WaitFor("SchedulerStopped");
    }

    [Fact]
    public async Task Idle_NoTaskletAlive_SchedulerStaysUpAndRunsTaskletsSpawnedLater()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services => services.AddTaskletScheduler());
        var scheduler = host.Services.GetRequiredService<Scheduler>();

        await host.StartAsync();
        for (int round = 0; round < 3; round++)
        {
            // Empty but inside Run: only the idle keeper is alive (a cross-thread snapshot, read until it shows it).
            TestHost.SpinUntil(
                () => Scheduler.Running.Contains(scheduler) && scheduler.Tasklets.Any(t => t.Name == HostedScheduler.IdleKeeperName),
                "the hosted scheduler idles inside Run with its keeper");

            Tasklet<string?> spawned = scheduler.Go(() => Task.FromResult(Thread.CurrentThread.Name), $"later {round}");
            Assert.Equal(HostedScheduler.ThreadName, await TestHost.Within(spawned.AsTask()));
        }

        await host.StopAsync();
        Assert.Empty(scheduler.Tasklets);
        Assert.DoesNotContain(logs.Entries, e => e.Level >= Microsoft.Extensions.Logging.LogLevel.Warning);
    }

    [Fact]
    public async Task Start_SchedulerAlreadyRunByAnotherThread_LogsCriticalAndStopsTheApplication()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services => services.AddTaskletScheduler());
        var scheduler = host.Services.GetRequiredService<Scheduler>();
        var lifetime = host.Services.GetRequiredService<IHostApplicationLifetime>();
        using var stopOther = new CancellationTokenSource();
        IDisposable hold = scheduler.KeepAlive();
        Task other = scheduler.RunAsync(stopOther.Token);
        try
        {
            TestHost.SpinUntil(() => Scheduler.Running.Contains(scheduler), "the other thread runs the scheduler");

            await host.StartAsync();

            LogEntry crash = logs.WaitFor("SchedulerCrashed");
            Assert.Equal(Microsoft.Extensions.Logging.LogLevel.Critical, crash.Level);
            Assert.IsType<InvalidOperationException>(crash.Exception);
            Assert.True(lifetime.ApplicationStopping.WaitHandle.WaitOne(CapturingLoggerProvider.Guard));
        }
        finally
        {
            hold.Dispose();
            stopOther.Cancel();
            await Record.ExceptionAsync(() => TestHost.Within(other));
        }

        await host.StopAsync();
    }
}
