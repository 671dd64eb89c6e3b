using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Text;
using Xunit;

namespace Tasklets.Analyzers.Tests.Infrastructure;

/// <summary>
/// Runs every Tasklets analyzer on a test source and compares what they report, id and span, with the source's
/// markers (<see cref="Markup"/>); applies code fixes through a workspace and compares the text. The compilation
/// references this runtime's framework assemblies (the trusted platform assemblies of the shared framework) and
/// Tasklets.dll, and the source must compile without errors, so a test cannot pass on code that does not build.
/// </summary>
public static class Verify
{
    /// <summary>The usings every test source gets, as a consumer's project with implicit usings has them.</summary>
    public const string GlobalUsings = """
        global using System;
        global using System.Collections.Generic;
        global using System.Linq;
        global using System.Threading;
        global using System.Threading.Tasks;
        global using Tasklets;
        """;

    private static readonly CSharpParseOptions s_parseOptions = new(LanguageVersion.Latest);

    private static readonly CSharpCompilationOptions s_compilationOptions = new(
        OutputKind.DynamicallyLinkedLibrary, nullableContextOptions: NullableContextOptions.Enable);

    private static readonly ImmutableArray<MetadataReference> s_references = CreateReferences();

    private static readonly ImmutableArray<DiagnosticAnalyzer> s_analyzers =
        [new ConfigureAwaitAnalyzer(), new BlockingCallAnalyzer(), new ValueTaskAnalyzer()];

    private static readonly ImmutableArray<CodeFixProvider> s_fixers =
        [new ConfigureAwaitCodeFixProvider(), new BlockingCallCodeFixProvider()];

    /// <summary>The analyzers report exactly the marked diagnostics: none elsewhere, none missing.</summary>
    public static async Task DiagnosticsAsync(string markup)
    {
        (string source, IReadOnlyList<ExpectedDiagnostic> expected) = Markup.Parse(markup);
        ImmutableArray<Diagnostic> actual = await AnalyzeAsync(Compile(source));
        string Describe(IEnumerable<(string Id, TextSpan Span)> diagnostics) => string.Join(
            Environment.NewLine,
            diagnostics.Select(d => $"  {d.Id} at {d.Span}: '{source.Substring(d.Span.Start, d.Span.Length)}'"));
        var want = expected.Select(e => (e.Id, e.Span)).OrderBy(d => d.Span.Start).ThenBy(d => d.Id, StringComparer.Ordinal).ToList();
        var got = actual.Select(d => (d.Id, d.Location.SourceSpan)).OrderBy(d => d.SourceSpan.Start).ThenBy(d => d.Id, StringComparer.Ordinal).ToList();
        Assert.True(
            want.SequenceEqual(got),
            $"Expected:{Environment.NewLine}{Describe(want)}{Environment.NewLine}Actual:{Environment.NewLine}{Describe(got)}{Environment.NewLine}"
            + string.Join(Environment.NewLine, actual.Select(d => "  " + d)));
    }

    /// <summary>The Tasklets diagnostics of <paramref name="source"/> (no markers), for tests that look at messages.</summary>
    public static Task<ImmutableArray<Diagnostic>> AnalyzeAsync(string source) => AnalyzeAsync(Compile(source));

    /// <summary>
    /// The markup's diagnostics are reported; applying the offered fixes one at a time, until none is left, gives
    /// <paramref name="expected"/>, which compiles without errors.
    /// </summary>
    public static async Task FixAsync(string markup, string expected)
    {
        await DiagnosticsAsync(markup);
        (string source, _) = Markup.Parse(markup);
        using var workspace = new AdhocWorkspace();
        Document document = CreateDocument(workspace, source);
        for (int round = 0; ; round++)
        {
            Assert.True(round < 20, "the fixes did not converge: a fix leaves its diagnostic in place");
            CodeAction? action = null;
            foreach (Diagnostic diagnostic in await AnalyzeAsync((await document.Project.GetCompilationAsync())!))
            {
                action = (await ActionsAsync(document, diagnostic)).FirstOrDefault();
                if (action is not null)
                {
                    break;
                }
            }

            if (action is null)
            {
                break;
            }

            ImmutableArray<CodeActionOperation> operations = await action.GetOperationsAsync(CancellationToken.None);
            Solution changed = operations.OfType<ApplyChangesOperation>().Single().ChangedSolution;
            document = changed.GetDocument(document.Id)!;
        }

        string actual = (await document.GetTextAsync()).ToString();
        Assert.Equal(expected.ReplaceLineEndings("\n"), actual.ReplaceLineEndings("\n"));
        AssertCompiles((await document.Project.GetCompilationAsync())!);
    }

    /// <summary>The markup's diagnostics are reported and no code fix is offered for any of them.</summary>
    public static async Task NoFixAsync(string markup)
    {
        await DiagnosticsAsync(markup);
        (string source, _) = Markup.Parse(markup);
        using var workspace = new AdhocWorkspace();
        Document document = CreateDocument(workspace, source);
        ImmutableArray<Diagnostic> diagnostics = await AnalyzeAsync((await document.Project.GetCompilationAsync())!);
        Assert.NotEmpty(diagnostics);
        foreach (Diagnostic diagnostic in diagnostics)
        {
            ImmutableArray<CodeAction> actions = await ActionsAsync(document, diagnostic);
            Assert.True(actions.IsEmpty, $"a fix was offered for {diagnostic}: {string.Join(", ", actions.Select(a => a.Title))}");
        }
    }

    /// <summary>The titles of the fixes offered for each diagnostic of <paramref name="source"/> (no markers).</summary>
    public static async Task<IReadOnlyList<string>> FixTitlesAsync(string source)
    {
        using var workspace = new AdhocWorkspace();
        Document document = CreateDocument(workspace, source);
        var titles = new List<string>();
        foreach (Diagnostic diagnostic in await AnalyzeAsync((await document.Project.GetCompilationAsync())!))
        {
            titles.AddRange((await ActionsAsync(document, diagnostic)).Select(a => a.Title));
        }

        return titles;
    }

    public static CSharpCompilation Compile(string source)
    {
        CSharpCompilation compilation = CSharpCompilation.Create(
            "Test",
            [CSharpSyntaxTree.ParseText(GlobalUsings, s_parseOptions, "GlobalUsings.cs"), CSharpSyntaxTree.ParseText(source, s_parseOptions, "Test.cs")],
            s_references,
            s_compilationOptions);
        AssertCompiles(compilation);
        return compilation;
    }

    private static void AssertCompiles(Compilation compilation)
    {
        Diagnostic[] errors = compilation.GetDiagnostics().Where(d => d.Severity == DiagnosticSeverity.Error).ToArray();
        Assert.True(errors.Length == 0, "the test source does not compile:" + Environment.NewLine + string.Join(Environment.NewLine, errors.Select(e => "  " + e)));
    }

    private static async Task<ImmutableArray<Diagnostic>> AnalyzeAsync(Compilation compilation)
    {
        var failures = new List<Exception>();
        var options = new CompilationWithAnalyzersOptions(
            new AnalyzerOptions([]),
            onAnalyzerException: (exception, analyzer, diagnostic) =>
            {
                lock (failures)
                {
                    failures.Add(exception);
                }
            },
            concurrentAnalysis: true,
            logAnalyzerExecutionTime: false);
        ImmutableArray<Diagnostic> diagnostics = await compilation.WithAnalyzers(s_analyzers, options).GetAnalyzerDiagnosticsAsync();
        Assert.True(failures.Count == 0, "an analyzer threw: " + string.Join(Environment.NewLine, failures));
        return [.. diagnostics.OrderBy(d => d.Location.SourceSpan.Start)];
    }

    private static async Task<ImmutableArray<CodeAction>> ActionsAsync(Document document, Diagnostic diagnostic)
    {
        var actions = ImmutableArray.CreateBuilder<CodeAction>();
        foreach (CodeFixProvider fixer in s_fixers.Where(f => f.FixableDiagnosticIds.Contains(diagnostic.Id)))
        {
            var context = new CodeFixContext(document, diagnostic, (action, _) => actions.Add(action), CancellationToken.None);
            await fixer.RegisterCodeFixesAsync(context);
        }

        return actions.ToImmutable();
    }

    private static Document CreateDocument(AdhocWorkspace workspace, string source)
    {
        Project project = workspace.AddProject(ProjectInfo.Create(
            ProjectId.CreateNewId(),
            VersionStamp.Default,
            "Test",
            "Test",
            LanguageNames.CSharp,
            compilationOptions: s_compilationOptions,
            parseOptions: s_parseOptions,
            metadataReferences: s_references));
        project = project.AddDocument("GlobalUsings.cs", SourceText.From(GlobalUsings)).Project;
        Document document = project.AddDocument("Test.cs", SourceText.From(source));
        Assert.True(workspace.TryApplyChanges(document.Project.Solution));
        return workspace.CurrentSolution.GetDocument(document.Id)!;
    }

    // The shared framework's assemblies this test runs on (TRUSTED_PLATFORM_ASSEMBLIES lists them with the test's
    // own dependencies; only those beside System.Private.CoreLib are the framework), and the library.
    private static ImmutableArray<MetadataReference> CreateReferences()
    {
        string framework = Path.GetDirectoryName(typeof(object).Assembly.Location)!;
        string[] platform = ((string)AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES")!).Split(Path.PathSeparator);
        return
        [
            .. platform
                .Where(path => string.Equals(Path.GetDirectoryName(path), framework, StringComparison.Ordinal) && path.EndsWith(".dll", StringComparison.Ordinal))
                .Select(path => (MetadataReference)MetadataReference.CreateFromFile(path)),
            MetadataReference.CreateFromFile(typeof(Tasklet).Assembly.Location),
        ];
    }
}
