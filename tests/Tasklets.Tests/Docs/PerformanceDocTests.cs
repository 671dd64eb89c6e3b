using Tasklets.Benchmarks;
using Xunit;

namespace Tasklets.Tests.Docs;

/// <summary>
/// docs/performance.md's "Peer figures" table is the output of the benchmark's compiled <see cref="PeerFigures"/>
/// (linked into this project from bench/Tasklets.Benchmarks/PeerFigures.cs): the main job prints the same figures the
/// document states, and neither is edited alone. Regenerate the document's table with
/// <c>dotnet run -c Release --project bench/Tasklets.Benchmarks -- --peers-markdown</c>.
/// </summary>
public sealed class PerformanceDocTests
{
    [Fact]
    public void PeerTableOfTheDocumentIsTheCompiledOne()
    {
        string document = File.ReadAllText(Path.Combine(RepositoryRoot(), "docs", "performance.md")).ReplaceLineEndings("\n");
        int begin = document.IndexOf(PeerFigures.BeginMarker + "\n", StringComparison.Ordinal);
        int end = document.IndexOf(PeerFigures.EndMarker, StringComparison.Ordinal);
        Assert.True(begin >= 0 && end > begin, $"docs/performance.md must hold the peer table between '{PeerFigures.BeginMarker}' and '{PeerFigures.EndMarker}'.");

        string table = document[(begin + PeerFigures.BeginMarker.Length + 1)..end];
        Assert.Equal(PeerFigures.Markdown(), table);
    }

    [Fact]
    public void EveryPeerFigureNamesARowOfTheQuickTable()
    {
        string[] keys =
        [
            QuickTableKeys.ChanSync, QuickTableKeys.ChanBuff, QuickTableKeys.ChanAsync, QuickTableKeys.Select,
            QuickTableKeys.SelectDefault, QuickTableKeys.PingPong, QuickTableKeys.Spawn, QuickTableKeys.Yield,
            QuickTableKeys.Checkpoint, QuickTableKeys.BlockedMemory,
        ];
        Assert.All(PeerFigures.All, p => Assert.Contains(p.Workload, keys));
        Assert.All(PeerFigures.All, p => Assert.True(p.Value > 0, $"{p.Workload} / {p.Peer} has no figure."));
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
}
