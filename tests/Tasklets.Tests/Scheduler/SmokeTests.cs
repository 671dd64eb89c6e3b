using System.Text;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

public class SmokeTests
{
    [Fact]
    public void Yield_ThreeTasklets_RoundRobin()
    {
        using var s = new Scheduler();
        var trace = new StringBuilder();
        foreach (char name in "ABC")
        {
            s.Go(async () =>
            {
                for (int i = 0; i < 3; i++)
                {
                    trace.Append(name);
                    await Tasklet.Yield();
                }
            });
        }

        s.Run();
        Assert.Equal("ABCABCABC", trace.ToString());
    }

    [Fact]
    public void Channel_Unbuffered_HandsOverInOrder()
    {
        using var s = new Scheduler();
        var got = new List<int>();
        s.Go(async () =>
        {
            var c = new Channel<int>();
            Tasklet.Go(async () =>
            {
                for (int i = 0; i < 100; i++)
                {
                    await c.SendAsync(i);
                }

                c.Close();
            });
            await foreach (int x in c)
            {
                got.Add(x);
            }
        });
        s.Run();
        Assert.Equal(Enumerable.Range(0, 100), got);
    }
}
