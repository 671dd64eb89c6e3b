using Xunit;

namespace Tasklets.Tests.Infrastructure;

/// <summary>
/// Pins an exact interleaving (kotlinx's expect/finish): each step calls <see cref="Expect"/> with the number it
/// must be at; a step out of order fails the test at that line.
/// </summary>
public sealed class OrderRecorder
{
    private int _step;

    public void Expect(int step)
    {
        int actual = Interlocked.Increment(ref _step);
        Assert.True(actual == step, $"expected step {step} but this is step {actual}");
    }

    public void Finish(int step)
    {
        Expect(step);
    }

    public int Steps => _step;
}
