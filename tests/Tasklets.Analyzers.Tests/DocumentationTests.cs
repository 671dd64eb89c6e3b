using System.Text.RegularExpressions;
using Microsoft.CodeAnalysis;
using Xunit;

namespace Tasklets.Analyzers.Tests;

/// <summary>Each rule links to its own section of docs/analyzers.md, under the repository Directory.Build.props names.</summary>
public sealed class DocumentationTests
{
    [Fact]
    public void EveryRule_HelpLinkIsItsSectionOfDocsAnalyzersMd()
    {
        string root = RepositoryRoot();
        string repository = Regex.Match(File.ReadAllText(Path.Combine(root, "Directory.Build.props")), "<RepositoryUrl>(?<url>[^<]+)</RepositoryUrl>").Groups["url"].Value;
        string[] headings = File.ReadAllLines(Path.Combine(root, "docs", "analyzers.md"))
            .Where(line => line.StartsWith("## ", StringComparison.Ordinal))
            .Select(line => line[3..].Trim())
            .ToArray();
        Assert.NotEqual("", repository);
        foreach (DiagnosticDescriptor rule in TaskletDiagnostics.All)
        {
            Assert.Equal($"{repository}/blob/main/docs/analyzers.md#{rule.Id.ToLowerInvariant()}", rule.HelpLinkUri);
            Assert.Contains(rule.Id, headings); // GitHub's anchor of '## TASKLET001' is #tasklet001
            Assert.Equal(DiagnosticSeverity.Warning, rule.DefaultSeverity);
            Assert.True(rule.IsEnabledByDefault);
        }
    }

    [Fact]
    public void EveryRule_IsSupportedByExactlyOneAnalyzer()
    {
        DiagnosticDescriptor[] supported = new Microsoft.CodeAnalysis.Diagnostics.DiagnosticAnalyzer[] { new ConfigureAwaitAnalyzer(), new BlockingCallAnalyzer(), new ValueTaskAnalyzer() }
            .SelectMany(analyzer => analyzer.SupportedDiagnostics)
            .ToArray();
        Assert.Equal(TaskletDiagnostics.All.Select(d => d.Id).Order(StringComparer.Ordinal), supported.Select(d => d.Id).Order(StringComparer.Ordinal));
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
