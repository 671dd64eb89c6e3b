using Tasklets.Internal;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>The scheduler's random source: select's pick and the randomized run order depend on it being uniform and seedable.</summary>
public class SplitMixTests
{
    [Fact]
    public void Next_SameSeed_SameSequence_OtherSeed_OtherSequence()
    {
        var a = new SplitMix(42);
        var b = new SplitMix(42);
        var c = new SplitMix(43);
        int[] first = Enumerable.Range(0, 32).Select(_ => a.Next(1000)).ToArray();
        Assert.Equal(first, Enumerable.Range(0, 32).Select(_ => b.Next(1000)));
        Assert.NotEqual(first, Enumerable.Range(0, 32).Select(_ => c.Next(1000)));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(int.MaxValue)]
    public void Next_StaysWithinBound(int bound)
    {
        var random = new SplitMix(7);
        for (int i = 0; i < 10_000; i++)
        {
            int value = random.Next(bound);
            Assert.InRange(value, 0, bound - 1);
        }
    }

    [Fact]
    public void Next_ThreeWays_EachWithinTwoPercentOfAThird()
    {
        // 60,000 draws: a third is 20,000 with a standard deviation of ~115, so ±1,200 is over ten deviations away.
        var random = new SplitMix(2026);
        var counts = new int[3];
        for (int i = 0; i < 60_000; i++)
        {
            counts[random.Next(3)]++;
        }

        Assert.All(counts, count => Assert.InRange(count, 18_800, 21_200));
    }

    [Fact]
    public void Next_LargeNonPowerOfTwoBound_UpperHalfAsLikelyAsLowerHalf()
    {
        // With a bound of 3 * 2^29, a 32-bit draw reduced by plain modulo hits the lowest two thirds of the range three
        // times and the rest twice, so 56 % of draws (about 11,250 of 20,000) would land in the lower half.
        const int bound = 3 << 29;
        var random = new SplitMix(99);
        int low = 0;
        for (int i = 0; i < 20_000; i++)
        {
            if (random.Next(bound) < bound / 2)
            {
                low++;
            }
        }

        Assert.InRange(low, 9_500, 10_500);
    }
}
