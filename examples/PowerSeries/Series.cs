using Tasklets;

namespace PowerSeries;

/// <summary>
/// A power series as a demand channel (McIlroy's and powser1's <c>dch</c>): a consumer sends a request on
/// <see cref="Requests"/>, then receives the next coefficient on <see cref="Data"/>. Both channels are unbuffered, so
/// a generator computes a term only when one is asked for, and an infinite series costs nothing beyond what is read.
/// </summary>
/// <remarks>
/// A series has one reader at a time in the protocol's sense: a generator answers each request it took before it takes
/// the next, so two readers that take turns (Mul(Ones, Ones) reads Ones twice per term) are each answered in order.
/// To read one series at two different rates, split it (<see cref="SeriesAlgebra.Split"/>).
/// </remarks>
internal sealed class Series
{
    public Series(string name)
    {
        Name = name;
        Requests = new Channel<int> { Name = $"{name} requests" };
        Data = new Channel<Rat> { Name = $"{name} data" };
    }

    /// <summary>The series' name in <see cref="Scheduler.Dump"/> ("Mul#12").</summary>
    public string Name { get; }

    /// <summary>Where a consumer asks for the next term; the item is a request serial, for tracing only.</summary>
    public Channel<int> Requests { get; }

    /// <summary>Where the generator answers a request with the next coefficient, or <see cref="Rat.End"/>.</summary>
    public Channel<Rat> Data { get; }

    /// <summary>Waits for a request, then answers it with <paramref name="term"/> (powser1's <c>put</c>).</summary>
    public async ValueTask PutAsync(Rat term)
    {
        _ = await Requests.ReceiveAsync();
        await Data.SendAsync(term);
    }

    public override string ToString() => Name;
}
