using Xunit;

namespace Tasklets.Tests;

/// <summary>
/// Tests that observe process-wide state (deadlock detection across all running schedulers, global metrics) run in
/// this collection, which xunit runs alone.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class NonParallel
{
    public const string Name = "Non-parallel";
}
