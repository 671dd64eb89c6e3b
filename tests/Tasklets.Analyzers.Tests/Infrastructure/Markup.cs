using Microsoft.CodeAnalysis.Text;

namespace Tasklets.Analyzers.Tests.Infrastructure;

/// <summary>An expected diagnostic: its id and the span it must cover.</summary>
public sealed record ExpectedDiagnostic(string Id, TextSpan Span);

/// <summary>
/// Test sources mark each expected diagnostic as <c>{|TASKLET001:covered text|}</c>; markers may nest. Parsing
/// returns the source without the markers and the expected (id, span) pairs in the order their markers close.
/// </summary>
public static class Markup
{
    public static (string Source, IReadOnlyList<ExpectedDiagnostic> Expected) Parse(string markup)
    {
        var source = new System.Text.StringBuilder(markup.Length);
        var open = new Stack<(string Id, int Start)>();
        var expected = new List<ExpectedDiagnostic>();
        int i = 0;
        while (i < markup.Length)
        {
            if (string.CompareOrdinal(markup, i, "{|", 0, 2) == 0)
            {
                int colon = markup.IndexOf(':', i + 2);
                if (colon < 0)
                {
                    throw new FormatException($"'{{|' at {i} has no ':' after its diagnostic id.");
                }

                open.Push((markup[(i + 2)..colon], source.Length));
                i = colon + 1;
            }
            else if (string.CompareOrdinal(markup, i, "|}", 0, 2) == 0)
            {
                if (open.Count == 0)
                {
                    throw new FormatException($"'|}}' at {i} closes no marker.");
                }

                (string id, int start) = open.Pop();
                expected.Add(new ExpectedDiagnostic(id, TextSpan.FromBounds(start, source.Length)));
                i += 2;
            }
            else
            {
                source.Append(markup[i]);
                i++;
            }
        }

        if (open.Count != 0)
        {
            throw new FormatException($"{open.Count} marker(s) are not closed.");
        }

        return (source.ToString(), expected);
    }
}
