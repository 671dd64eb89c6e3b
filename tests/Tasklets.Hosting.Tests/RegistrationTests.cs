using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit;

namespace Tasklets.Hosting.Tests;

public sealed class RegistrationTests
{
    [Fact]
    public void AddTaskletScheduler_CalledTwice_OneSchedulerSingletonOneHostedServiceBothConfigurationsApplied()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services =>
        {
            services.AddTaskletScheduler(o => o.Scheduler = o.Scheduler with { TimeSlice = TimeSpan.FromMilliseconds(3) });
            services.AddTaskletScheduler(o => o.Scheduler = o.Scheduler with { StallTimeout = TimeSpan.FromSeconds(7) });
        });

        var first = host.Services.GetRequiredService<Scheduler>();
        var second = host.Services.GetRequiredService<Scheduler>();
        Assert.Same(first, second);
        Assert.Equal(TimeSpan.FromMilliseconds(3), first.Options.TimeSlice);
        Assert.Equal(TimeSpan.FromSeconds(7), first.Options.StallTimeout);
        HostedScheduler hosted = Assert.Single(host.Services.GetServices<IHostedService>().OfType<HostedScheduler>());
        Assert.Same(first, hosted.Scheduler);
    }

    [Fact]
    public void AddTasklet_WithoutAddTaskletScheduler_RegistersTheScheduler()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services => services.AddTasklet((_, _) => Task.CompletedTask, "alone"));

        Assert.NotNull(host.Services.GetService<Scheduler>());
        Assert.Single(host.Services.GetServices<IHostedService>().OfType<HostedScheduler>());
    }

    [Fact]
    public void AddTasklet_NullArguments_Throw()
    {
        var services = new ServiceCollection();
        Assert.Throws<ArgumentNullException>("body", () => services.AddTasklet(null!));
        Assert.Throws<ArgumentNullException>("services", () => TaskletServiceCollectionExtensions.AddTasklet(null!, (_, _) => Task.CompletedTask));
        Assert.Throws<ArgumentNullException>("services", () => TaskletServiceCollectionExtensions.AddTaskletScheduler(null!));
    }

    [Fact]
    public void Resolve_SchedulerOptionsSetToNull_ThrowsSayingWhatToDo()
    {
        var logs = new CapturingLoggerProvider();
        using IHost host = TestHost.Build(logs, services => services.AddTaskletScheduler(o => o.Scheduler = null!));

        var e = Assert.Throws<InvalidOperationException>(() => host.Services.GetRequiredService<Scheduler>());
        Assert.Contains("TaskletSchedulerOptions.Scheduler is null", e.Message, StringComparison.Ordinal);
    }
}
