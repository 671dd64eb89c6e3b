using Tasklets;

namespace PowerSeries;

/// <summary>
/// The operations on power series of Go's test/chan/powser1.go (after McIlroy's Newsqueak): each constructor makes
/// the output <see cref="Series"/>, starts the tasklet that generates it from its inputs, and returns at once. The
/// generators run on the current scheduler; most loop forever, blocked on their output's requests, and end when the
/// run ends (<see cref="Scheduler.Run(Func{Task}, SchedulerOptions?)"/> kills them).
/// </summary>
/// <remarks>
/// One scheduler, one thread: the counters are plain fields. Conventions as in powser1: upper case (U, V, Z) for
/// series, lower case for rationals; U = u + x·UU splits a series into its constant term and the rest.
/// </remarks>
internal sealed class SeriesAlgebra
{
    private int _serial;     // names of series and tasklets
    private int _requests;   // request serials sent (powser1's seqno)
    private int _started;    // generator tasklets that began their first step
    private int _ended;      // of those, how many have ended (finished, failed or killed)

    /// <summary>The generator tasklets spawned so far.</summary>
    public int Spawned { get; private set; }

    /// <summary>How many generators are still running: started and not ended.</summary>
    public int Running => _started - _ended;

    /// <summary>The requests sent so far, over every series.</summary>
    public int Requests => _requests;

    // ---- The demand protocol -------------------------------------------------------------------------------

    /// <summary>Asks <paramref name="u"/> for its next term and returns it (powser1's <c>get</c>).</summary>
    public async ValueTask<Rat> GetAsync(Series u)
    {
        await u.Requests.SendAsync(++_requests);
        return await u.Data.ReceiveAsync();
    }

    /// <summary>
    /// One term from each of two series, asked for and received in whatever order they become ready (powser1's
    /// <c>getn</c>): a select over four cases, of which only the two that can make progress are enabled. A request
    /// that was taken switches its send case off and its series' data case on; a term received switches that data
    /// case off. Go writes this by setting the channel variables to nil; here the list stays the same and the cases
    /// are disabled, so the select neither waits on them nor fires them.
    /// </summary>
    public async ValueTask<(Rat U, Rat V)> Get2Async(Series u, Series v)
    {
        SendCase<int> askU = u.Requests.SendCase(0);
        SendCase<int> askV = v.Requests.SendCase(0);
        ReceiveCase<Rat> termOfU = u.Data.ReceiveCase();
        ReceiveCase<Rat> termOfV = v.Data.ReceiveCase();
        termOfU.IsEnabled = false;
        termOfV.IsEnabled = false;
        SelectCase[] cases = [askU, askV, termOfU, termOfV];

        Rat a = default;
        Rat b = default;
        for (int step = 0; step < 4; step++)
        {
            askU.Item = askV.Item = ++_requests;
            switch (await Select.WaitAsync(cases))
            {
                case 0:
                    askU.IsEnabled = false;
                    termOfU.IsEnabled = true;
                    break;
                case 1:
                    askV.IsEnabled = false;
                    termOfV.IsEnabled = true;
                    break;
                case 2:
                    a = termOfU.Value;
                    termOfU.IsEnabled = false;
                    break;
                default:
                    b = termOfV.Value;
                    termOfV.IsEnabled = false;
                    break;
            }
        }

        return (a, b);
    }

    /// <summary>Answers every request on <paramref name="to"/> with the next term of <paramref name="from"/>; never returns.</summary>
    public async Task CopyAsync(Series from, Series to)
    {
        while (true)
        {
            _ = await to.Requests.ReceiveAsync();
            await to.Data.SendAsync(await GetAsync(from));
        }
    }

    // ---- Split: one series read at two rates ---------------------------------------------------------------

    /// <summary>Two series, each equal to <paramref name="u"/>, that may be read at different rates.</summary>
    public Series[] Split(Series u)
    {
        Series[] pair = NewPair("Split");
        Spawn("split", () => SplitAsync(u, pair).AsTask());
        return pair;
    }

    /// <summary>
    /// Makes <paramref name="output"/>[0] and [1] copies of <paramref name="input"/> (powser1's <c>split</c>):
    /// starts the first generation and releases it, which returns once it has taken the release.
    /// </summary>
    public async ValueTask SplitAsync(Series input, Series[] output)
    {
        var release = new Channel<int> { Name = "split release" };
        Spawn("split gen", () => SplitGenerationAsync(input, output, release));
        await release.SendAsync(0);
    }

    /// <summary>
    /// One generation of a split (powser1's <c>dosplit</c>): it lives for one term of the input. It waits for the
    /// first demand on either output, asks the input for the term, and starts the next generation, which serves the
    /// next demand meanwhile. The newest generation always serves output[0] (the faster reader; a generation that
    /// first sees a demand on output[1] swaps the two, for every generation, since they share the array); the oldest
    /// serves output[1]. Every generation but the newest holds a term already sent to output[0]; when the oldest has
    /// sent its term to output[1] too, its release tells the next one to start serving output[1].
    /// </summary>
    private async Task SplitGenerationAsync(Series input, Series[] output, Channel<int> wait)
    {
        bool released = false; // the older generations are done with output[1]: this one may serve both
        ReceiveCase<int> demandOn0 = output[0].Requests.ReceiveCase();
        ReceiveCase<int> releaseCase = wait.ReceiveCase();
        if (await Select.WaitAsync(demandOn0, releaseCase) == 1)
        {
            released = true;
            ReceiveCase<int> first = output[0].Requests.ReceiveCase();
            ReceiveCase<int> second = output[1].Requests.ReceiveCase();
            if (await Select.WaitAsync(first, second) == 1)
            {
                (output[0], output[1]) = (output[1], output[0]);
            }
        }

        // The array is read at each use, as powser1 reads out[0] and out[1]: another generation may have swapped them.
        await input.Requests.SendAsync(++_requests);
        var next = new Channel<int> { Name = "split release" };
        Spawn("split gen", () => SplitGenerationAsync(input, output, next));
        Rat term = await input.Data.ReceiveAsync();
        await output[0].Data.SendAsync(term);
        if (!released)
        {
            _ = await wait.ReceiveAsync();
        }

        _ = await output[1].Requests.ReceiveAsync();
        await output[1].Data.SendAsync(term);
        await next.SendAsync(0);
    }

    // ---- Constructors --------------------------------------------------------------------------------------

    /// <summary>c, c, c, ...: c/(1 - x).</summary>
    public Series Rep(Rat c)
    {
        Series z = NewSeries("Rep");
        Spawn(z.Name, async () =>
        {
            while (true)
            {
                await z.PutAsync(c);
            }
        });
        return z;
    }

    /// <summary>U + V; a finite input that ends first leaves the rest of the other.</summary>
    public Series Add(Series u, Series v)
    {
        Series z = NewSeries("Add");
        Spawn(z.Name, async () =>
        {
            while (true)
            {
                _ = await z.Requests.ReceiveAsync();
                (Rat a, Rat b) = await Get2Async(u, v);
                switch ((a.IsEnd, b.IsEnd))
                {
                    case (false, false):
                        await z.Data.SendAsync(a + b);
                        break;
                    case (true, false):
                        await z.Data.SendAsync(b);
                        await CopyAsync(v, z);
                        break;
                    case (false, true):
                        await z.Data.SendAsync(a);
                        await CopyAsync(u, z);
                        break;
                    default:
                        await z.Data.SendAsync(Rat.End);
                        break;
                }
            }
        });
        return z;
    }

    /// <summary>c·U.</summary>
    public Series Cmul(Rat c, Series u)
    {
        Series z = NewSeries("Cmul");
        Spawn(z.Name, async () =>
        {
            while (true)
            {
                _ = await z.Requests.ReceiveAsync();
                Rat term = await GetAsync(u);
                if (term.IsEnd)
                {
                    await z.Data.SendAsync(Rat.End);
                    return;
                }

                await z.Data.SendAsync(c * term);
            }
        });
        return z;
    }

    /// <summary>U - V.</summary>
    public Series Sub(Series u, Series v) => Add(u, Cmul(-Rat.One, v));

    /// <summary>c + x·U.</summary>
    public Series Shift(Rat c, Series u)
    {
        Series z = NewSeries("Shift");
        Spawn(z.Name, async () =>
        {
            await z.PutAsync(c);
            await CopyAsync(u, z);
        });
        return z;
    }

    /// <summary>
    /// U·V. With U = u + x·UU and V = v + x·VV: UV = uv + x·(u·VV + v·UU) + x²·UU·VV; the last product is a new Mul,
    /// so the generators grow by one Mul (and its splits and sums) per term read.
    /// </summary>
    public Series Mul(Series u, Series v)
    {
        Series z = NewSeries("Mul");
        Spawn(z.Name, async () =>
        {
            _ = await z.Requests.ReceiveAsync();
            (Rat a, Rat b) = await Get2Async(u, v);
            if (a.IsEnd || b.IsEnd)
            {
                await z.Data.SendAsync(Rat.End);
                return;
            }

            await z.Data.SendAsync(a * b);
            Series[] uu = Split(u);
            Series[] vv = Split(v);
            Series w = Add(Cmul(a, vv[0]), Cmul(b, uu[0]));
            _ = await z.Requests.ReceiveAsync();
            await z.Data.SendAsync(await GetAsync(w));
            await CopyAsync(Add(w, Mul(uu[1], vv[1])), z);
        });
        return z;
    }

    /// <summary>dU/dx.</summary>
    public Series Diff(Series u)
    {
        Series z = NewSeries("Diff");
        Spawn(z.Name, async () =>
        {
            _ = await z.Requests.ReceiveAsync();
            if (!(await GetAsync(u)).IsEnd) // the constant term drops out
            {
                for (int i = 1; ; i++)
                {
                    Rat term = await GetAsync(u);
                    if (term.IsEnd)
                    {
                        break;
                    }

                    await z.Data.SendAsync(Rat.Of(i) * term);
                    _ = await z.Requests.ReceiveAsync();
                }
            }

            await z.Data.SendAsync(Rat.End);
        });
        return z;
    }

    /// <summary>c + ∫U dx: the integral with constant of integration c.</summary>
    public Series Integ(Rat c, Series u)
    {
        Series z = NewSeries("Integ");
        Spawn(z.Name, async () =>
        {
            await z.PutAsync(c);
            for (int i = 1; ; i++)
            {
                _ = await z.Requests.ReceiveAsync();
                Rat term = await GetAsync(u);
                if (term.IsEnd)
                {
                    await z.Data.SendAsync(Rat.End);
                    return;
                }

                await z.Data.SendAsync(Rat.Of(1, i) * term);
            }
        });
        return z;
    }

    /// <summary>
    /// 1/U. With U = u + x·UU and Z = z + x·ZZ, UZ = 1 gives z = 1/u and ZZ = -z·UU·(z + x·ZZ): ZZ is defined by
    /// itself, so it is split and one copy fed back into its own product.
    /// </summary>
    public Series Recip(Series u)
    {
        Series z = NewSeries("Recip");
        Spawn(z.Name, async () =>
        {
            Series[] zz = NewPair("Recip tail");
            _ = await z.Requests.ReceiveAsync();
            Rat first = (await GetAsync(u)).Inverse();
            await z.Data.SendAsync(first);
            await SplitAsync(Mul(Cmul(-first, u), Shift(first, zz[0])), zz);
            await CopyAsync(zz[1], z);
        });
        return z;
    }

    /// <summary>
    /// exp(U) for U with constant term 0 (powser1 ignores the constant term, as here): Z = exp(U) solves
    /// dZ/dx = Z·dU/dx with Z(0) = 1, so Z = 1 + ∫Z·U' dx, another series defined by itself and split to feed back.
    /// </summary>
    public async ValueTask<Series> ExpAsync(Series u)
    {
        Series[] zz = NewPair("Exp");
        await SplitAsync(Integ(Rat.One, Mul(zz[0], Diff(u))), zz);
        return zz[1];
    }

    /// <summary>U(c·xⁿ): term i of U times cⁱ, followed by n - 1 zeros.</summary>
    public Series MonSubst(Series u, Rat c, int n)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(n, 1);
        Series z = NewSeries("MonSubst");
        Spawn(z.Name, async () =>
        {
            Rat power = Rat.One;
            while (true)
            {
                _ = await z.Requests.ReceiveAsync();
                Rat term = await GetAsync(u);
                if (term.IsEnd)
                {
                    await z.Data.SendAsync(Rat.End);
                    return;
                }

                await z.Data.SendAsync(term * power);
                power *= c;
                for (int i = 1; i < n; i++)
                {
                    await z.PutAsync(Rat.Zero);
                }
            }
        });
        return z;
    }

    // ---- Plumbing ------------------------------------------------------------------------------------------

    private Series NewSeries(string kind) => new($"{kind}#{++_serial}");

    private Series[] NewPair(string kind) => [NewSeries(kind), NewSeries(kind)];

    /// <summary>Starts a generator on the current scheduler, counted so that the run can check none is left.</summary>
    private void Spawn(string name, Func<Task> body)
    {
        Spawned++;
        _ = Tasklet.Go(async () =>
        {
            _started++;
            try
            {
                await body();
            }
            finally
            {
                _ended++;
            }
        }, name);
    }
}
