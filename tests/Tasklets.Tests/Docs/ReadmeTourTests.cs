using System.Text.RegularExpressions;
using Xunit;

namespace Tasklets.Tests.Docs;

/// <summary>
/// The README's code blocks are the code of examples/Tour, which CI builds (warnings are errors) and runs (it checks
/// itself). A block is marked in README.md by the line <c>&lt;!-- tour: name --&gt;</c> right above its fence; the
/// code is the region between the lines <c>// tour:begin name</c> and <c>// tour:end</c> (<c>&lt;!-- ... --&gt;</c> in a
/// project file) in a file of examples/Tour. Block and region must be equal up to whitespace (indentation, runs of
/// spaces, blank lines), so that neither changes alone.
/// </summary>
public sealed partial class ReadmeTourTests
{
    private const string TourFolder = "examples/Tour";

    [Fact]
    public void Readme_EveryCSharpBlock_IsMarkedAsATourRegion()
    {
        List<Block> unmarked = ReadmeBlocks().Where(b => b.Language == "csharp" && b.Region is null).ToList();
        Assert.True(unmarked.Count == 0,
            "Every ```csharp block of README.md must be a region of " + TourFolder + ", marked '<!-- tour: name -->' on the line above its fence. Unmarked blocks start at lines: "
            + string.Join(", ", unmarked.Select(b => b.Line)));
    }

    [Fact]
    public void Readme_MarkedBlocks_EqualTheirTourRegions()
    {
        Dictionary<string, Region> regions = TourRegions();
        var problems = new List<string>();
        foreach (Block block in ReadmeBlocks().Where(b => b.Region is not null))
        {
            if (!regions.TryGetValue(block.Region!, out Region? region))
            {
                problems.Add($"README.md line {block.Line}: no region 'tour:begin {block.Region}' in {TourFolder}.");
                continue;
            }

            string? difference = FirstDifference(block.Text, region.Text);
            if (difference is not null)
            {
                problems.Add($"README.md line {block.Line} differs from region '{block.Region}' of {region.File}: {difference}");
            }
        }

        Assert.True(problems.Count == 0, string.Join(Environment.NewLine, problems) + Environment.NewLine + "Change both: the README block and the region of the Tour project.");
    }

    [Fact]
    public void TourProject_EveryRegion_IsABlockOfTheReadme()
    {
        var shown = ReadmeBlocks().Where(b => b.Region is not null).Select(b => b.Region!).ToHashSet();
        List<string> orphans = TourRegions().Keys.Where(name => !shown.Contains(name)).Order().ToList();
        Assert.True(orphans.Count == 0, $"Regions of {TourFolder} that README.md does not show (a block marked '<!-- tour: name -->'): {string.Join(", ", orphans)}");
    }

    [Fact]
    public void FirstDifference_WhitespaceOnly_IsNone_AndAChangedToken_IsReported()
    {
        Assert.Null(FirstDifference("a  b\n\n    c();   // x", "  a b\n  c(); // x\n"));
        Assert.Contains("c(1);", FirstDifference("a b\nc();", "a b\nc(1);"), StringComparison.Ordinal);
        Assert.NotNull(FirstDifference("a\nb", "a"));
    }

    /// <summary>
    /// The first line where <paramref name="block"/> and <paramref name="region"/> differ once each line is trimmed,
    /// its runs of whitespace are one space and blank lines are dropped; null if none.
    /// </summary>
    private static string? FirstDifference(string block, string region)
    {
        string[] left = Normalise(block);
        string[] right = Normalise(region);
        for (int i = 0; i < Math.Max(left.Length, right.Length); i++)
        {
            string? l = i < left.Length ? left[i] : null;
            string? r = i < right.Length ? right[i] : null;
            if (l != r)
            {
                return $"line {i + 1} of the code reads '{l ?? "(end)"}' in the README and '{r ?? "(end)"}' in the project.";
            }
        }

        return null;
    }

    private static string[] Normalise(string code) =>
        code.ReplaceLineEndings("\n").Split('\n')
            .Select(line => Whitespace().Replace(line.Trim(), " "))
            .Where(line => line.Length > 0)
            .ToArray();

    /// <summary>The fenced blocks of README.md, with the tour region named on the line above each, if any.</summary>
    private static List<Block> ReadmeBlocks()
    {
        string[] lines = File.ReadAllLines(Path.Combine(RepositoryRoot(), "README.md"));
        var blocks = new List<Block>();
        for (int i = 0; i < lines.Length; i++)
        {
            if (!lines[i].StartsWith("```", StringComparison.Ordinal))
            {
                continue;
            }

            string language = lines[i][3..].Trim();
            Match marker = i > 0 ? Marker().Match(lines[i - 1]) : Match.Empty;
            int end = Array.FindIndex(lines, i + 1, l => l.StartsWith("```", StringComparison.Ordinal));
            Assert.True(end > i, $"README.md line {i + 1}: a code block that is never closed.");
            blocks.Add(new Block(i + 1, language, marker.Success ? marker.Groups[1].Value : null, string.Join('\n', lines[(i + 1)..end])));
            i = end;
        }

        return blocks;
    }

    /// <summary>Every 'tour:begin name' ... 'tour:end' region in the files of examples/Tour, by name.</summary>
    private static Dictionary<string, Region> TourRegions()
    {
        string folder = Path.Combine(RepositoryRoot(), TourFolder);
        var regions = new Dictionary<string, Region>(StringComparer.Ordinal);
        IEnumerable<string> files = Directory.EnumerateFiles(folder, "*.cs").Concat(Directory.EnumerateFiles(folder, "*.csproj"));
        foreach (string file in files.Order(StringComparer.Ordinal))
        {
            string[] lines = File.ReadAllLines(file);
            string name = Path.GetFileName(file);
            for (int i = 0; i < lines.Length; i++)
            {
                Match begin = RegionBegin().Match(lines[i]);
                if (!begin.Success)
                {
                    continue;
                }

                int end = Array.FindIndex(lines, i + 1, l => RegionEnd().IsMatch(l));
                Assert.True(end > i, $"{name} line {i + 1}: region '{begin.Groups[1].Value}' has no 'tour:end'.");
                Assert.True(regions.TryAdd(begin.Groups[1].Value, new Region(name, string.Join('\n', lines[(i + 1)..end]))),
                    $"{name} line {i + 1}: a second region named '{begin.Groups[1].Value}'.");
                i = end;
            }
        }

        Assert.True(regions.Count > 0, $"No 'tour:begin' region in {folder}.");
        return regions;
    }

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

    [GeneratedRegex(@"^\s*<!--\s*tour:\s*([\w-]+)\s*-->\s*$")]
    private static partial Regex Marker();

    // A whole line: '// tour:begin name' in C#, '<!-- tour:begin name -->' in MSBuild.
    [GeneratedRegex(@"^\s*(?://|<!--)\s*tour:begin\s+([\w-]+)\s*(?:-->)?\s*$")]
    private static partial Regex RegionBegin();

    [GeneratedRegex(@"^\s*(?://|<!--)\s*tour:end\s*(?:-->)?\s*$")]
    private static partial Regex RegionEnd();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();

    private sealed record Block(int Line, string Language, string? Region, string Text);

    private sealed record Region(string File, string Text);
}
