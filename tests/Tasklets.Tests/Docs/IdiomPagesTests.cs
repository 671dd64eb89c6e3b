using System.Reflection;
using System.Text;
using System.Text.RegularExpressions;
using Xunit;

namespace Tasklets.Tests.Docs;

/// <summary>
/// docs/for-go-users.md and docs/for-stackless-users.md hold idiom tables whose snippets must be true of the current
/// API. Each page's snippets run in its test class (<see cref="ForGoUsersSnippetTests"/>,
/// <see cref="ForStacklessUsersSnippetTests"/>). The tests here tie the two together: every code span in a table's
/// Tasklets column (the second one) and every csharp block of the page must appear in the test file as printed, up to
/// whitespace, so that a snippet cannot change, or be added, without the code that runs it. Code spans anywhere on a
/// page that name a member of a Tasklets type (<c>Select.Try</c>, <c>SchedulerOptions.Seed</c>) must name one that
/// exists, so that prose cannot invent API either. README.md links both pages.
/// </summary>
public sealed partial class IdiomPagesTests
{
    public static TheoryData<string, string> Pages => new()
    {
        { "docs/for-go-users.md", "tests/Tasklets.Tests/Docs/ForGoUsersSnippetTests.cs" },
        { "docs/for-stackless-users.md", "tests/Tasklets.Tests/Docs/ForStacklessUsersSnippetTests.cs" },
        { "docs/for-channels-users.md", "tests/Tasklets.Tests/Docs/ForChannelsUsersSnippetTests.cs" },
    };

    [Theory]
    [MemberData(nameof(Pages))]
    public void Page_EverySnippet_RunsInItsTestFile(string page, string testFile)
    {
        string root = RepositoryRoot();
        List<Snippet> snippets = Snippets(File.ReadAllText(Path.Combine(root, page)));
        string code = Normalise(File.ReadAllText(Path.Combine(root, testFile)));

        Assert.True(snippets.Count >= 20, $"{page}: only {snippets.Count} snippets found; is the table still there?");
        List<string> missing = snippets.Where(s => !code.Contains(Normalise(s.Text), StringComparison.Ordinal))
            .Select(s => $"line {s.Line}: {s.Text}").ToList();
        Assert.True(missing.Count == 0,
            $"Snippets of {page} that {testFile} does not run (write them there as printed, up to whitespace):{Environment.NewLine}"
            + string.Join(Environment.NewLine, missing));
    }

    [Theory]
    [MemberData(nameof(Pages))]
    public void Page_EveryTaskletsMemberNamed_Exists(string page, string testFile)
    {
        _ = testFile;
        string text = File.ReadAllText(Path.Combine(RepositoryRoot(), page));
        // Tasklet and Tasklet<T> share a name: a member of either counts.
        ILookup<string, Type> types = typeof(Scheduler).Assembly.GetExportedTypes().ToLookup(t => t.Name.Split('`')[0], StringComparer.Ordinal);
        var unknown = new List<string>();
        int checkedCount = 0;
        foreach (Match span in ProseLines(text).SelectMany(line => CodeSpan().Matches(line)))
        {
            Match access = MemberAccess().Match(span.Groups[1].Value);
            if (!access.Success || !types.Contains(access.Groups["type"].Value))
            {
                continue;
            }

            checkedCount++;
            string member = access.Groups["member"].Value;
            if (!types[access.Groups["type"].Value].Any(t => t.GetMember(member, BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance).Length > 0))
            {
                unknown.Add($"`{span.Groups[1].Value}`: {access.Groups["type"].Value} has no public member {member}");
            }
        }

        Assert.True(checkedCount > 0, $"{page}: no code span names a member of a Tasklets type; is the check still reading it?");
        Assert.True(unknown.Count == 0, $"{page} names API that does not exist:{Environment.NewLine}{string.Join(Environment.NewLine, unknown)}");
    }

    [Fact]
    public void Readme_LinksBothPages()
    {
        string readme = File.ReadAllText(Path.Combine(RepositoryRoot(), "README.md"));
        Assert.Contains("(docs/for-go-users.md)", readme, StringComparison.Ordinal);
        Assert.Contains("(docs/for-stackless-users.md)", readme, StringComparison.Ordinal);
    }

    [Fact]
    public void Snippets_TakeTheSecondColumnsSpansAndTheCSharpBlocks_Only()
    {
        string page = string.Join('\n',
            "| Go | Tasklets | Notes |",
            "|---|---|---|",
            "| `go f()` | `a();` `b \\| c;` | `not a snippet` |",
            "| `x` | no equivalent | prose |",
            "",
            "`inline prose`",
            "```csharp",
            "block();",
            "```",
            "```sh",
            "shell",
            "```");

        List<Snippet> snippets = Snippets(page);

        Assert.Equal(["a();", "b | c;", "block();"], snippets.Select(s => s.Text));
        Assert.Equal([3, 3, 7], snippets.Select(s => s.Line));
        Assert.Equal("a b", Normalise("  a \n\t b "));
    }

    /// <summary>The code spans of every table's second column, and every csharp block, with their line numbers.</summary>
    private static List<Snippet> Snippets(string page)
    {
        string[] lines = page.ReplaceLineEndings("\n").Split('\n');
        var snippets = new List<Snippet>();
        for (int i = 0; i < lines.Length; i++)
        {
            string line = lines[i];
            if (line.StartsWith("```csharp", StringComparison.Ordinal))
            {
                int end = Array.FindIndex(lines, i + 1, l => l.StartsWith("```", StringComparison.Ordinal));
                Assert.True(end > i, $"line {i + 1}: a code block that is never closed.");
                snippets.Add(new Snippet(i + 1, string.Join('\n', lines[(i + 1)..end])));
                i = end;
            }
            else if (line.StartsWith("```", StringComparison.Ordinal))
            {
                int end = Array.FindIndex(lines, i + 1, l => l.StartsWith("```", StringComparison.Ordinal));
                i = end > i ? end : i;
            }
            else if (line.StartsWith('|') && !Separator().IsMatch(line))
            {
                List<string> cells = Cells(line);
                if (cells.Count > 1)
                {
                    snippets.AddRange(CodeSpan().Matches(cells[1]).Select(m => new Snippet(i + 1, m.Groups[1].Value.Replace("\\|", "|", StringComparison.Ordinal))));
                }
            }
        }

        return snippets;
    }

    /// <summary>The page's lines outside fenced code blocks (whose backticks would pair with a span's).</summary>
    private static IEnumerable<string> ProseLines(string page)
    {
        bool fenced = false;
        foreach (string line in page.ReplaceLineEndings("\n").Split('\n'))
        {
            if (line.StartsWith("```", StringComparison.Ordinal))
            {
                fenced = !fenced;
            }
            else if (!fenced)
            {
                yield return line;
            }
        }
    }

    /// <summary>A table row's cells: split at the pipes outside code spans (an escaped pipe stays in its cell).</summary>
    private static List<string> Cells(string row)
    {
        var cells = new List<string>();
        var cell = new StringBuilder();
        bool inCode = false;
        for (int i = 1; i < row.Length; i++)
        {
            char c = row[i];
            if (c == '`')
            {
                inCode = !inCode;
            }
            else if (c == '\\' && i + 1 < row.Length && row[i + 1] == '|')
            {
                cell.Append("\\|");
                i++;
                continue;
            }
            else if (c == '|' && !inCode)
            {
                cells.Add(cell.ToString());
                cell.Clear();
                continue;
            }

            cell.Append(c);
        }

        return cells;
    }

    private static string Normalise(string code) => Whitespace().Replace(code, " ").Trim();

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Tasklets.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"No Tasklets.sln above {AppContext.BaseDirectory}: run the tests from the repository's build output.");
    }

    [GeneratedRegex(@"`([^`]+)`")]
    private static partial Regex CodeSpan();

    // Type.Member at the start of a span: "Select.Try(...)", "Channel<T>.CreateUnbounded()", "Tasklet.Current!.X".
    [GeneratedRegex(@"^(?<type>[A-Z]\w*)(?:<[^>]*>)?\.(?<member>[A-Z]\w*)")]
    private static partial Regex MemberAccess();

    [GeneratedRegex(@"^\|(\s*:?-+:?\s*\|)+\s*$")]
    private static partial Regex Separator();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    private sealed record Snippet(int Line, string Text);
}
