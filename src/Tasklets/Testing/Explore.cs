using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// Runs concurrent code under many seeded interleavings to find ordering bugs, and replays a failing one exactly.
/// </summary>
/// <remarks>
/// Each iteration runs the body as the main tasklet of a deterministic scheduler with
/// <see cref="SchedulerOptions.RandomizeOrder"/>: a virtual clock, a seeded-random pick of the next ready tasklet,
/// and seeded select choices. The same seed always gives the same interleaving, as long as the body does not await
/// foreign operations (real I/O, Task.Run), whose timing no seed controls. See docs/testing.md.
/// </remarks>
/// <example><code>
/// Explore.Run(1000, async () =&gt;
/// {
///     var account = new Account(10);
///     var a = Tasklet.Go(() =&gt; account.WithdrawAsync(10));
///     var b = Tasklet.Go(() =&gt; account.WithdrawAsync(10));
///     await a; await b;
///     if (account.Balance &lt; 0) throw new InvalidOperationException("overdrawn");
/// });
/// </code></example>
public static class Explore
{
    /// <summary>
    /// Runs <paramref name="body"/> once per seed, <paramref name="iterations"/> seeds from <paramref name="firstSeed"/>,
    /// and stops at the first failure.
    /// </summary>
    /// <param name="iterations">How many seeds to try.</param>
    /// <param name="body">The code under test, run as the main tasklet; it fails by throwing.</param>
    /// <param name="firstSeed">The first seed.</param>
    /// <exception cref="ExplorationException">An iteration failed; its <see cref="ExplorationException.Seed"/> replays it.</exception>
    public static void Run(int iterations, Func<Task> body, int firstSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        Run(iterations, _ => body(), firstSeed);
    }

    /// <summary>Like <see cref="Run(int, Func{Task}, int)"/>, giving the body its seed (for seeded test data).</summary>
    /// <param name="iterations">How many seeds to try.</param>
    /// <param name="body">The code under test, given the iteration's seed.</param>
    /// <param name="firstSeed">The first seed.</param>
    /// <exception cref="ExplorationException">An iteration failed; its <see cref="ExplorationException.Seed"/> replays it.</exception>
    public static void Run(int iterations, Func<int, Task> body, int firstSeed = 0)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (iterations <= 0)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(iterations), iterations, "Run at least one iteration.");
        }

        for (int i = 0; i < iterations; i++)
        {
            int seed = unchecked(firstSeed + i);
            try
            {
                Replay(seed, body);
            }
            catch (Exception e)
            {
                throw new ExplorationException(seed, i + 1, e);
            }
        }
    }

    /// <summary>Runs <paramref name="body"/> once with <paramref name="seed"/>: the same interleaving as the iteration that reported it.</summary>
    /// <param name="seed">The seed an <see cref="ExplorationException"/> reported.</param>
    /// <param name="body">The code under test.</param>
    /// <exception cref="Exception">Whatever the body throws (or <see cref="DeadlockException"/>), unwrapped.</exception>
    public static void Replay(int seed, Func<Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Replay(seed, _ => body());
    }

    /// <summary>Runs <paramref name="body"/> once with <paramref name="seed"/>, giving it the seed.</summary>
    /// <param name="seed">The seed an <see cref="ExplorationException"/> reported.</param>
    /// <param name="body">The code under test.</param>
    public static void Replay(int seed, Func<int, Task> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        Scheduler.Run(() => body(seed), Options(seed));
    }

    /// <summary>The scheduler options an exploration iteration with <paramref name="seed"/> uses.</summary>
    /// <param name="seed">The seed.</param>
    /// <returns>Deterministic options with randomized order.</returns>
    public static SchedulerOptions Options(int seed) => new() { Seed = seed, RandomizeOrder = true };
}
