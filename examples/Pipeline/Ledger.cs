namespace Pipeline;

/// <summary>A worker's output: the item and its square.</summary>
internal readonly record struct Result(int Item, long Square);

/// <summary>
/// Where each item ended. Recording an item twice, or a wrong output, is a violation; so is an item that ends nowhere.
/// One scheduler, one thread: no synchronisation needed.
/// </summary>
internal sealed class Ledger(int items)
{
    public const string Done = "output";
    public const string Late = "timed out";
    public const string NeverSent = "cancelled: never sent";
    public const string LeftInInput = "cancelled: left in the input channel";
    public const string InWork = "cancelled: in a worker";
    public const string HandingOver = "cancelled: while handed over";

    private readonly string?[] _ends = new string?[items + 1];
    private readonly List<string> _violations = [];

    public void Output(Result result)
    {
        if (result.Square != (long)result.Item * result.Item)
        {
            _violations.Add($"item {result.Item}: output {result.Square}, expected {(long)result.Item * result.Item}");
        }

        Record(result.Item, Done);
    }

    public void TimedOut(int item) => Record(item, Late);

    public void Cancelled(int item, string where) => Record(item, where);

    public int Count(string end) => _ends.Count(e => e == end);

    public List<string> Check()
    {
        var failures = new List<string>(_violations);
        for (int item = 1; item < _ends.Length; item++)
        {
            if (_ends[item] is null)
            {
                failures.Add($"item {item} was lost: neither output, nor timed out, nor cancelled");
            }
        }

        return failures;
    }

    public string Summary()
    {
        var counts = _ends.Skip(1).Where(e => e is not null).GroupBy(e => e!).OrderByDescending(g => g.Count());
        return string.Join(", ", counts.Select(g => $"{g.Count()} {g.Key}"));
    }

    private void Record(int item, string end)
    {
        if (item < 1 || item >= _ends.Length)
        {
            _violations.Add($"an item {item} that was never produced ended as '{end}'");
            return;
        }

        if (_ends[item] is string earlier)
        {
            _violations.Add($"item {item} ended twice: '{earlier}', then '{end}'");
            return;
        }

        _ends[item] = end;
    }
}
