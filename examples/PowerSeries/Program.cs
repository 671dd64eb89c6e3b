// Power series as channels of rationals: Go's test/chan/powser1.go, after Doug McIlroy's "Squinting at Power Series".
// A series is a demand channel (Series.cs): a generator tasklet computes a term only when a consumer asks for one, so
// the series are infinite and lazy. Sums, products, derivatives, integrals, reciprocals and exponentials are networks
// of such tasklets; a product grows a new product (and its splits and sums) for every term read, and exp and the
// reciprocal feed their own output back into their input through a split. Reading two inputs in whatever order they
// answer is a select over four cases, two of them disabled (Go's nil channels): SeriesAlgebra.Get2Async.
//
// The checks are powser1's: the first terms of Ones, Ones + Twos, d/dx Ones, ∫Ones, -Twos, Ones - Twos,
// Ones·Ones, exp(x/(1-x)) and atan x = ∫1/(1 + x²), each compared exactly with the known coefficients. powser1 asks for
// zero terms of the two sums and the difference (a count of 0 in its check calls); here they are checked for N terms
// too, and one identity is added: 1/Ones = 1 - x, which exercises Recip, Shift and a split fed back into a product.
// Where powser1 answers past the end of a finite series through arithmetic on the end mark (Integ, MonSubst), this port
// answers End once; the checks read only infinite series, as powser1's do.
//
// Deterministic (a Seed: the select choices are seeded, and the run is the same every time). Main returning ends the
// run: Scheduler.Run kills every generator still blocked, and the program checks that each one ended. Exits non-zero
// on a wrong coefficient, a generator left running, or an exception (a deadlock would be a DeadlockException).
//
//   dotnet run --project examples/PowerSeries [-- --print] [-- seed]
using System.Globalization;
using PowerSeries;
using Tasklets;

const int N = 10;
bool print = args.Contains("--print");
int seed = args.Where(a => a != "--print").Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(16);

var algebra = new SeriesAlgebra();
var failures = new List<string>();
int aliveAtEnd = 0;
try
{
    Scheduler.Run(async () =>
    {
        Series ones = algebra.Rep(Rat.One);
        Series twos = algebra.Rep(Rat.Of(2));
        Rat minusOne = -Rat.One;
        if (print)
        {
            await PrintAsync("Ones", ones, N);
            await PrintAsync("Twos", twos, N);
            await PrintAsync("Add", algebra.Add(ones, twos), N);
            await PrintAsync("Diff", algebra.Diff(ones), N);
            await PrintAsync("Integ", algebra.Integ(Rat.Zero, ones), N);
            await PrintAsync("Cmul", algebra.Cmul(minusOne, ones), N);
            await PrintAsync("Sub", algebra.Sub(ones, twos), N);
            await PrintAsync("Mul", algebra.Mul(ones, ones), N);
            await PrintAsync("Exp", await algebra.ExpAsync(ones), 15);
            await PrintAsync("MonSubst", algebra.MonSubst(ones, minusOne, 2), N);
            await PrintAsync("ATan", algebra.Integ(Rat.Zero, algebra.MonSubst(ones, minusOne, 2)), N);
            await PrintAsync("Recip", algebra.Recip(ones), N);
        }

        await CheckAsync("Ones", ones, Repeat(Rat.One, 5));
        await CheckAsync("Add Ones Ones", algebra.Add(ones, ones), Repeat(Rat.Of(2), N));
        await CheckAsync("Add Ones Twos", algebra.Add(ones, twos), Repeat(Rat.Of(3), N));
        await CheckAsync("Diff", algebra.Diff(ones), Terms(i => Rat.Of(i + 1)));                 // 1 2 3 4 5
        await CheckAsync("Integ", algebra.Integ(Rat.Zero, ones), Terms(i => i == 0 ? Rat.Zero : Rat.Of(1, i))); // 0 1 1/2 1/3
        await CheckAsync("Cmul", algebra.Cmul(minusOne, twos), Repeat(Rat.Of(-2), N));
        await CheckAsync("Sub Ones Twos", algebra.Sub(ones, twos), Repeat(minusOne, N));
        await CheckAsync("Mul", algebra.Mul(ones, ones), Terms(i => Rat.Of(i + 1)));             // 1/(1-x)² = 1 2 3 4 5
        await CheckAsync("Exp", await algebra.ExpAsync(ones),                                    // exp(x/(1-x))
        [
            Rat.One, Rat.One, Rat.Of(3, 2), Rat.Of(13, 6), Rat.Of(73, 24), Rat.Of(167, 40), Rat.Of(4051, 720),
            Rat.Of(37633, 5040), Rat.Of(43817, 4480), Rat.Of(4596553, 362880),
        ]);
        await CheckAsync("ATan", algebra.Integ(Rat.Zero, algebra.MonSubst(ones, minusOne, 2)),   // 0 1 0 -1/3 0 1/5
            Terms(i => i % 2 == 0 ? Rat.Zero : Rat.Of(i % 4 == 1 ? 1 : -1, i)));
        await CheckAsync("Recip Ones", algebra.Recip(ones), Terms(i => i switch { 0 => Rat.One, 1 => minusOne, _ => Rat.Zero })); // 1 - x

        aliveAtEnd = Scheduler.Current!.Tasklets.Count - 1; // the generators still blocked, main aside
        // Returning ends main: Scheduler.Run kills every generator (they all wait on a request or a term) and runs
        // them until they have ended.
    }, new SchedulerOptions { Seed = seed });
}
catch (Exception e)
{
    failures.Add($"the run failed: {e}");
}

if (algebra.Running != 0)
{
    failures.Add($"{algebra.Running} generator tasklet(s) still running after the run ended");
}

if (failures.Count > 0)
{
    foreach (string failure in failures)
    {
        Console.Error.WriteLine($"FAIL: {failure}");
    }

    return 1;
}

Console.WriteLine(
    $"powser1's checks passed (seed {seed}): {algebra.Spawned} generator tasklets, {algebra.Requests} requests; " +
    $"{aliveAtEnd} generators were still blocked at the end and were killed.");
return 0;

// Reads expected.Length terms of u and compares each with the expected coefficient; the first mismatch is a failure.
async Task CheckAsync(string what, Series u, Rat[] expected)
{
    for (int i = 0; i < expected.Length; i++)
    {
        Rat term = await algebra.GetAsync(u);
        if (term != expected[i])
        {
            failures.Add($"{what}: term {i} is {term}, should be {expected[i]}");
            return;
        }
    }
}

async Task PrintAsync(string what, Series u, int count)
{
    var terms = new List<Rat>();
    for (int i = 0; i < count; i++)
    {
        Rat term = await algebra.GetAsync(u);
        if (term.IsEnd)
        {
            break;
        }

        terms.Add(term);
    }

    Console.WriteLine($"{what}: {string.Join(' ', terms)}");
}

static Rat[] Repeat(Rat c, int count) => Enumerable.Repeat(c, count).ToArray();

static Rat[] Terms(Func<int, Rat> term) => Enumerable.Range(0, N).Select(term).ToArray();
