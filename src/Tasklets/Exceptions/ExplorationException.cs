namespace Tasklets;

/// <summary>An <see cref="Explore"/> iteration failed. <see cref="Seed"/> replays the same interleaving.</summary>
public class ExplorationException : Exception
{
    /// <summary>Creates the exception with the default message.</summary>
    public ExplorationException()
        : base("An exploration iteration failed.")
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    /// <param name="message">What happened.</param>
    public ExplorationException(string? message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the failure.</summary>
    /// <param name="message">What happened.</param>
    /// <param name="innerException">The failure.</param>
    public ExplorationException(string? message, Exception? innerException)
        : base(message, innerException)
    {
    }

    internal ExplorationException(int seed, int iteration, Exception failure)
        : base(
            $"Iteration {iteration} failed with seed {seed}: {failure.GetType().Name}: {failure.Message} " +
            $"Replay it with Explore.Replay({seed}, body), or run under new SchedulerOptions {{ Seed = {seed}, RandomizeOrder = true }}.",
            failure)
    {
        Seed = seed;
        Iteration = iteration;
    }

    /// <summary>The seed of the failing iteration.</summary>
    public int Seed { get; }

    /// <summary>The 1-based number of the failing iteration.</summary>
    public int Iteration { get; }
}
