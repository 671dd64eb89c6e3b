using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Tasklets;
using Tasklets.Hosting;

// The ecosystem's convention for AddXxx extensions (AddHostedService, AddOptions, AddHttpClient): in this namespace,
// which every host template imports, they are found in Program.cs without a using of this package's own.
namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers a hosted tasklet scheduler and the tasklets that start with the host (docs/hosting.md).</summary>
public static class TaskletServiceCollectionExtensions
{
    /// <summary>
    /// Registers a <see cref="Scheduler"/> singleton (inject it anywhere) and a hosted service that runs it on a
    /// dedicated thread for the host's lifetime. The scheduler stays up while no tasklet is alive; on shutdown it
    /// kills every tasklet and waits for their <c>finally</c> blocks, within the host's shutdown timeout. Failures
    /// nobody observed are logged as errors, stalls as warnings with the scheduler's dump, deadlocks as errors with
    /// the blocked tasklets' names (category <see cref="TaskletSchedulerOptions.LoggerCategory"/>).
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="configure">Configures the options (the <see cref="SchedulerOptions"/> the scheduler is created with); may be null.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <remarks>
    /// Calling it again adds <paramref name="configure"/> to the options and registers nothing twice. The scheduler is
    /// created when first resolved. Tasklets spawned on it from anywhere (a request handler's
    /// <c>scheduler.Go(...)</c>) run on the dedicated thread; a spawn before the host starts waits until it does.
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> is null.</exception>
    /// <example>
    /// <code>
    /// builder.Services.AddTaskletScheduler(o => o.Scheduler = o.Scheduler with { StallTimeout = TimeSpan.FromSeconds(2) });
    /// </code>
    /// </example>
    public static IServiceCollection AddTaskletScheduler(this IServiceCollection services, Action<TaskletSchedulerOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        services.AddOptions<TaskletSchedulerOptions>();
        if (configure is not null)
        {
            services.Configure(configure);
        }

        services.TryAddSingleton<HostedScheduler>();
        services.TryAddSingleton(static provider => provider.GetRequiredService<HostedScheduler>().Scheduler);
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IHostedService, HostedScheduler>(
            static provider => provider.GetRequiredService<HostedScheduler>()));
        return services;
    }

    /// <summary>
    /// Registers a tasklet that the hosted scheduler spawns when the host starts, given the application's root service
    /// provider (and registers <see cref="AddTaskletScheduler"/> if it is not registered yet): a long-lived service,
    /// typically a loop over a request channel.
    /// </summary>
    /// <param name="services">The application's services.</param>
    /// <param name="body">
    /// The tasklet's code, given the root service provider and the tasklet's <see cref="Tasklet.CancellationToken"/>
    /// (cancelled when the tasklet is killed: at the latest when the host stops; pass it to foreign awaits). It runs on
    /// the scheduler's thread like any tasklet; its library waits are ended by the kill itself
    /// (<see cref="TaskletExitException"/>), and its <c>finally</c> blocks run before StopAsync returns.
    /// </param>
    /// <param name="name">The tasklet's name in dumps and logs.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <remarks>
    /// <para>The tasklet runs once: if its body returns, it is done; if it fails and nobody joins it, the failure is
    /// logged as an error (the host keeps running). Each call registers one more tasklet.</para>
    /// <para>A singleton that this body resolves first is constructed inside the tasklet, and a channel it makes then
    /// counts as made inside the tasklets: until code outside uses it, a tasklet blocked on it may be judged
    /// deadlocked (<see cref="TaskletSchedulerOptions.DetectDeadlocks"/>). Prefer
    /// <see cref="AddTasklet{TService}"/>, which resolves its service on the host's thread.</para>
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="body"/> is null.</exception>
    public static IServiceCollection AddTasklet(this IServiceCollection services, Func<IServiceProvider, CancellationToken, Task> body, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(body);
        services.AddTaskletScheduler();
        services.AddSingleton(new TaskletRegistration(provider => token => body(provider, token), name));
        return services;
    }

    /// <summary>
    /// Registers a tasklet that the hosted scheduler spawns when the host starts, given the
    /// <typeparamref name="TService"/> that the host resolves for it first, on its own thread, outside any tasklet (and
    /// registers <see cref="AddTaskletScheduler"/> if it is not registered yet).
    /// </summary>
    /// <typeparam name="TService">A registered service the tasklet serves, such as a singleton that holds its request channel.</typeparam>
    /// <param name="services">The application's services.</param>
    /// <param name="body">
    /// The tasklet's code, given the service and the tasklet's <see cref="Tasklet.CancellationToken"/> (cancelled when
    /// the tasklet is killed: at the latest when the host stops). Its <c>finally</c> blocks run before StopAsync returns.
    /// </param>
    /// <param name="name">The tasklet's name in dumps and logs.</param>
    /// <returns><paramref name="services"/>, for chaining.</returns>
    /// <remarks>
    /// Resolved on the host's thread, the service and the channels its constructor makes count as made outside the
    /// tasklets: request handlers will use them, so a tasklet idle on them is never judged deadlocked. The service is
    /// resolved when the host starts (a missing registration fails the start). Each call registers one more tasklet.
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="services"/> or <paramref name="body"/> is null.</exception>
    /// <example>
    /// <code>
    /// builder.Services.AddSingleton&lt;Inventory&gt;();  // its constructor makes a Channel&lt;Order&gt;
    /// builder.Services.AddTasklet&lt;Inventory&gt;(async (inventory, stopping) =>
    /// {
    ///     await foreach (Order order in inventory.Orders) { inventory.Apply(order); }
    /// }, name: "inventory");
    /// </code>
    /// </example>
    public static IServiceCollection AddTasklet<TService>(this IServiceCollection services, Func<TService, CancellationToken, Task> body, string? name = null)
        where TService : notnull
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(body);
        services.AddTaskletScheduler();
        services.AddSingleton(new TaskletRegistration(
            provider =>
            {
                TService service = provider.GetRequiredService<TService>();
                return token => body(service, token);
            },
            name));
        return services;
    }
}
