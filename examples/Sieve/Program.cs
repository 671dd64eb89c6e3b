// The concurrent prime sieve (Go's test/chan/sieve1.go): a chain of filter tasklets connected by unbuffered
// channels. Each new prime spawns a filter for its multiples. The program checks itself against a plain sieve
// and exits non-zero on a mismatch.
using Tasklets;

const int Count = 100;

int[] primes = Scheduler.Run(async () =>
{
    var numbers = new Channel<int> { Name = "numbers" };
    Tasklet.Go(async () =>
    {
        for (int i = 2; ; i++)
        {
            await numbers.SendAsync(i);
        }
    }, "generator");

    var found = new int[Count];
    Channel<int> source = numbers;
    for (int n = 0; n < Count; n++)
    {
        int prime = await source.ReceiveAsync();
        found[n] = prime;
        var filtered = new Channel<int> { Name = $"not multiple of {prime}" };
        Channel<int> input = source;
        Tasklet.Go(async () =>
        {
            while (true)
            {
                int candidate = await input.ReceiveAsync();
                if (candidate % prime != 0)
                {
                    await filtered.SendAsync(candidate);
                }
            }
        }, $"filter {prime}");
        source = filtered;
    }

    // Returning ends main; Scheduler.Run then kills the generator and the filters.
    return found;
});

int[] expected = Enumerable.Range(2, 1000).Where(n => Enumerable.Range(2, n - 2).All(d => n % d != 0)).Take(Count).ToArray();
if (!primes.SequenceEqual(expected))
{
    Console.Error.WriteLine("FAIL: the sieve disagrees with the plain computation.");
    return 1;
}

Console.WriteLine($"The first {Count} primes, from {Count} filter tasklets: {string.Join(' ', primes)}");
return 0;
