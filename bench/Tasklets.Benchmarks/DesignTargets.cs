using System.Globalization;

namespace Tasklets.Benchmarks;

/// <summary>A target of DESIGN.md's "Performance design and targets" for one row of the quick table.</summary>
/// <param name="Workload">The quick table's row key (<see cref="QuickTableKeys"/>).</param>
/// <param name="MaxNsPerOp">At most this many ns per operation, or null when the target is about memory only.</param>
/// <param name="MaxBytes">At most this many bytes per operation (or per blocked tasklet).</param>
/// <param name="AtMostBaseline">
/// The time target is relative: the median at most that of the row's first baseline measured in the same run (the
/// cross-scheduler handoff: "no slower than STC in the same run"); <paramref name="MaxNsPerOp"/> is then null.
/// </param>
internal sealed record DesignTarget(string Workload, double? MaxNsPerOp, double MaxBytes, bool AtMostBaseline = false)
{
    /// <summary>The target as DESIGN.md states it: "≤ 50 ns, 0 B".</summary>
    public string Text => (MaxNsPerOp, AtMostBaseline) switch
    {
        (double ns, _) => string.Create(CultureInfo.InvariantCulture, $"≤ {ns:0} ns, {BytesText}"),
        (null, true) => $"≤ the STC baseline's median in this run, {BytesText}",
        _ => string.Create(CultureInfo.InvariantCulture, $"≤ {MaxBytes:0} B"),
    };

    private string BytesText => MaxBytes == 0 ? "0 B" : string.Create(CultureInfo.InvariantCulture, $"≤ {MaxBytes:0} B");

    /// <summary>
    /// "yes" when the median meets every part of the target, else "no" and the parts it misses. Both are judged as the
    /// table prints them (<see cref="AsPrinted"/>): a printed "20" meets "≤ 20 ns", and a few stray bytes over a million
    /// operations (0.0 B/op printed) meet "0 B", while an amortised buffer growth (chan_async's 8.4 B/op) does not.
    /// </summary>
    /// <param name="medianNs">The row's median, ns/op.</param>
    /// <param name="medianBytes">The row's B/op (of its median round).</param>
    /// <param name="baselineMedianNs">The median of the row's first baseline in this run, for a relative target.</param>
    public string Verdict(double medianNs, double medianBytes, double? baselineMedianNs = null)
    {
        bool nsMissed = (MaxNsPerOp is double ns && AsPrinted(medianNs) > ns)
            || (AtMostBaseline && (baselineMedianNs is not double baseline || AsPrinted(medianNs) > AsPrinted(baseline)));
        bool bytesMissed = AsPrinted(medianBytes) > MaxBytes;
        return (nsMissed, bytesMissed) switch
        {
            (false, false) => "yes",
            (true, false) => "no (ns)",
            (false, true) => "no (B)",
            _ => "no (ns, B)",
        };
    }

    /// <summary>A figure rounded as the quick table prints it: one decimal below 10, none from 10 up.</summary>
    public static double AsPrinted(double value) => Math.Round(value, value < 10 ? 1 : 0, MidpointRounding.AwayFromZero);
}

/// <summary>
/// DESIGN.md's targets for the rows the quick table measures (its table "Performance design and targets"). Rows that
/// DESIGN.md gives no target (the checkpoint) have none here. The cross-scheduler handoff's is relative: no slower
/// than System.Threading.Channels between two dedicated threads, in the same run (unbuffered: bounded(1); the capacity
/// 64 row holds itself to the same rule beside bounded(64)).
/// </summary>
internal static class DesignTargets
{
    private static readonly DesignTarget[] s_all =
    [
        new(QuickTableKeys.ChanSync, 50, 0),
        new(QuickTableKeys.ChanBuff, 25, 0),
        new(QuickTableKeys.ChanAsync, 25, 0),
        new(QuickTableKeys.Select, 100, 0),
        new(QuickTableKeys.SelectDefault, 20, 0),
        new(QuickTableKeys.PingPong, 110, 0),
        new(QuickTableKeys.Yield, 35, 0),
        new(QuickTableKeys.Spawn, 150, 200),
        new(QuickTableKeys.BlockedMemory, null, 280),
        new(QuickTableKeys.CrossScheduler, null, 0, AtMostBaseline: true),
        new(QuickTableKeys.CrossSchedulerBuffered, null, 0, AtMostBaseline: true),
    ];

    /// <summary>The target of a row, or null when DESIGN.md sets none.</summary>
    public static DesignTarget? For(string workload) => s_all.FirstOrDefault(t => t.Workload == workload);
}
