namespace Beazley;

/// <summary>
/// The CPU-bound party of the experiment: chunks of pure computation (a few microseconds each, no allocation, no
/// memory traffic), counted so that the table can show how much CPU work got done beside the I/O.
/// </summary>
internal sealed class CpuWork
{
    /// <summary>Iterations per chunk: about 5 µs on the 2-core reference machine.</summary>
    public const int ChunkIterations = 500;

    private long _chunks;
    private double _sink;

    /// <summary>Chunks done so far (any thread).</summary>
    public long Chunks => Volatile.Read(ref _chunks);

    /// <summary>One chunk of computation.</summary>
    public void Chunk()
    {
        double x = _sink + 1.0;
        for (int i = 0; i < ChunkIterations; i++)
        {
            x = (x * 1.000_000_1) + 0.5;
            x -= Math.Floor(x / 1e9) * 1e9;
        }

        _sink = x; // keeps the loop from being optimised away
        Interlocked.Increment(ref _chunks);
    }
}
