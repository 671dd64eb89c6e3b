namespace Tasklets.Internal;

/// <summary>
/// The scheduler's random source for select's pick and the randomized run order: SplitMix64 (Steele, Lea and Flood,
/// 2014), one 64-bit state word, a handful of arithmetic instructions per draw. Not thread-safe: owner thread only.
/// </summary>
/// <remarks>
/// <see cref="Random"/> is a virtual call into an implementation object per draw (and, seeded, the slower .NET
/// Framework-compatible algorithm); a select that finds several cases ready draws once, so the draw is on its hot
/// path. Seeded, the sequence is a pure function of the seed, which is what deterministic mode needs.
/// </remarks>
internal struct SplitMix
{
    private ulong _state;

    public SplitMix(ulong seed)
    {
        _state = seed;
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextUInt64()
    {
        ulong z = _state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>A uniformly distributed integer in [0, <paramref name="bound"/>). Precondition: bound &gt; 0.</summary>
    /// <remarks>Lemire's multiply-and-shift with rejection (2019): no division on the common path, and no bias.</remarks>
    public int Next(int bound)
    {
        uint range = (uint)bound;
        ulong product = (ulong)(uint)NextUInt64() * range;
        uint low = (uint)product;
        if (low < range)
        {
            uint threshold = (0u - range) % range;
            while (low < threshold)
            {
                product = (ulong)(uint)NextUInt64() * range;
                low = (uint)product;
            }
        }

        return (int)(product >> 32);
    }
}
