using System.Globalization;

namespace PowerSeries;

/// <summary>
/// An exact rational number, always normalised: the denominator is positive and shares no factor with the numerator,
/// so two equal numbers have equal fields and the record's equality is the numbers' equality. A power series ends
/// with <see cref="End"/>, the one value whose denominator is zero (McIlroy's end mark).
/// </summary>
/// <remarks>
/// The arithmetic is <c>checked</c>: a term too large for a <see cref="long"/> throws <see cref="OverflowException"/>
/// instead of wrapping into a wrong coefficient. The checks' terms stay far below that (the tenth term of exp(x/(1-x))
/// is 4596553/362880).
/// </remarks>
internal readonly record struct Rat
{
    private Rat(long numerator, long denominator)
    {
        Numerator = numerator;
        Denominator = denominator;
    }

    /// <summary>0.</summary>
    public static Rat Zero { get; } = new(0, 1);

    /// <summary>1.</summary>
    public static Rat One { get; } = new(1, 1);

    /// <summary>The end mark of a finite series: not a number, so arithmetic on it throws.</summary>
    public static Rat End { get; } = new(1, 0);

    /// <summary>The numerator; carries the sign.</summary>
    public long Numerator { get; }

    /// <summary>The denominator: positive, or zero for <see cref="End"/>.</summary>
    public long Denominator { get; }

    /// <summary>True for <see cref="End"/>.</summary>
    public bool IsEnd => Denominator == 0;

    /// <summary><paramref name="numerator"/>/<paramref name="denominator"/>, normalised.</summary>
    /// <exception cref="DivideByZeroException"><paramref name="denominator"/> is zero.</exception>
    public static Rat Of(long numerator, long denominator = 1)
    {
        if (denominator == 0)
        {
            throw new DivideByZeroException($"{numerator}/0 is not a number (the end mark is Rat.End).");
        }

        long g = Gcd(numerator, denominator);
        return denominator > 0
            ? new Rat(numerator / g, denominator / g)
            : new Rat(checked(-numerator / g), checked(-denominator / g));
    }

    public static Rat operator +(Rat u, Rat v)
    {
        u.ThrowIfEnd();
        v.ThrowIfEnd();
        long g = Gcd(u.Denominator, v.Denominator);
        return Of(checked((u.Numerator * (v.Denominator / g)) + (v.Numerator * (u.Denominator / g))), checked(u.Denominator * (v.Denominator / g)));
    }

    public static Rat operator -(Rat u) => u.IsEnd ? u.ThrowIfEnd() : new Rat(checked(-u.Numerator), u.Denominator);

    public static Rat operator -(Rat u, Rat v) => u + -v;

    public static Rat operator *(Rat u, Rat v)
    {
        u.ThrowIfEnd();
        v.ThrowIfEnd();

        // Cancel across before multiplying, so the products stay as small as the result allows.
        long g1 = Gcd(u.Numerator, v.Denominator);
        long g2 = Gcd(u.Denominator, v.Numerator);
        return new Rat(checked((u.Numerator / g1) * (v.Numerator / g2)), checked((u.Denominator / g2) * (v.Denominator / g1)));
    }

    /// <summary>1/this.</summary>
    /// <exception cref="DivideByZeroException">This is zero.</exception>
    public Rat Inverse()
    {
        ThrowIfEnd();
        return Of(Denominator, Numerator);
    }

    /// <summary>"3", "-1/3", or "end".</summary>
    public override string ToString() => IsEnd
        ? "end"
        : Denominator == 1
            ? Numerator.ToString(CultureInfo.InvariantCulture)
            : string.Create(CultureInfo.InvariantCulture, $"{Numerator}/{Denominator}");

    // Euclid on magnitudes; Gcd(0, 0) is 1 so that 0/d normalises to 0/1 without a division by zero.
    private static long Gcd(long u, long v)
    {
        u = Math.Abs(u);
        v = Math.Abs(v);
        while (u != 0)
        {
            (u, v) = (v % u, u);
        }

        return v == 0 ? 1 : v;
    }

    private Rat ThrowIfEnd() => IsEnd
        ? throw new InvalidOperationException("Arithmetic on the end mark of a series: a generator read past its input's end.")
        : this;
}
