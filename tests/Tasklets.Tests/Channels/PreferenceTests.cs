using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Channels;

/// <summary>Stackless's preference table (stackless-goless.md §1.7): D acts, P is blocked, X is queued after D.</summary>
public class PreferenceTests
{
    private static string Trace(ChannelPreference preference, bool actorSends)
    {
        var trace = new List<string>();
        Scheduler.Run(async () =>
        {
            var c = new Channel<int> { Preference = preference };
            Tasklet p = Tasklet.Go(async () =>
            {
                if (actorSends)
                {
                    await c.ReceiveAsync();
                }
                else
                {
                    await c.SendAsync(1);
                }

                trace.Add("P");
            });
            await Tasklet.Yield(); // P blocks
            Tasklet x = Tasklet.Go(() => { trace.Add("X"); return Task.CompletedTask; });
            if (actorSends)
            {
                await c.SendAsync(1);
            }
            else
            {
                await c.ReceiveAsync();
            }

            trace.Add("D");
            await p;
            await x;
        });
        return string.Join("", trace);
    }

    [Theory]
    [InlineData(ChannelPreference.Neither, true, "DXP")]
    [InlineData(ChannelPreference.Neither, false, "DXP")]
    [InlineData(ChannelPreference.Receiver, true, "PXD")]   // sender wakes receiver: receiver runs at once
    [InlineData(ChannelPreference.Receiver, false, "DXP")]  // receiver continues
    [InlineData(ChannelPreference.Sender, true, "DXP")]     // sender continues
    [InlineData(ChannelPreference.Sender, false, "PXD")]    // receiver wakes sender: sender runs at once
    public void Preference_OrdersWhoRunsAfterHandoff(ChannelPreference preference, bool actorSends, string expected)
    {
        Assert.Equal(expected, Trace(preference, actorSends));
    }

    [Fact]
    public void Preference_InvalidValue_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new Channel<int> { Preference = (ChannelPreference)5 });
    }
}
