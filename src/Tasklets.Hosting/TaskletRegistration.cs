namespace Tasklets.Hosting;

/// <summary>
/// A tasklet registered with <see cref="Microsoft.Extensions.DependencyInjection.TaskletServiceCollectionExtensions"/>'
/// <c>AddTasklet</c>: the hosted scheduler spawns one tasklet per registration when the host starts. Immutable.
/// </summary>
/// <param name="prepare">
/// Called by StartAsync on the host's thread, outside any tasklet (so that what it resolves, and the channels those
/// services make, count as made outside the tasklets: see docs/hosting.md); returns the tasklet's body, which is
/// given the tasklet's kill token.
/// </param>
/// <param name="name">The tasklet's name, or null for the scheduler's default ("tasklet-{id}").</param>
internal sealed class TaskletRegistration(Func<IServiceProvider, Func<CancellationToken, Task>> prepare, string? name)
{
    /// <summary>Resolves what the body needs and returns the body (see the constructor).</summary>
    public Func<IServiceProvider, Func<CancellationToken, Task>> Prepare { get; } = prepare;

    /// <summary>The tasklet's name, or null for the scheduler's default.</summary>
    public string? Name { get; } = name;
}
