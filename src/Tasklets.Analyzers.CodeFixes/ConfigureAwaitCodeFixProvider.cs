using System.Collections.Immutable;
using System.Composition;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CodeActions;
using Microsoft.CodeAnalysis.CodeFixes;
using Microsoft.CodeAnalysis.CSharp;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Simplification;

namespace Tasklets.Analyzers;

/// <summary>
/// TASKLET001's fix: <c>await t.ConfigureAwait(false)</c> becomes <c>await t</c> (the receiver stays, with the call's
/// trivia); <c>ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing)</c> keeps its options and gains
/// <c>ContinueOnCapturedContext</c>.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(ConfigureAwaitCodeFixProvider)), Shared]
internal sealed class ConfigureAwaitCodeFixProvider : CodeFixProvider
{
    private const string RemoveTitle = "Remove ConfigureAwait: continue on the tasklet's scheduler";
    private const string AddFlagTitle = "Add ConfigureAwaitOptions.ContinueOnCapturedContext";

    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(TaskletDiagnostics.ConfigureAwaitId);

    /// <inheritdoc/>
    public override FixAllProvider GetFixAllProvider() => WellKnownFixAllProviders.BatchFixer;

    /// <inheritdoc/>
    public override async Task RegisterCodeFixesAsync(CodeFixContext context)
    {
        SyntaxNode? root = await context.Document.GetSyntaxRootAsync(context.CancellationToken).ConfigureAwait(false);
        if (root is null)
        {
            return;
        }

        foreach (Diagnostic diagnostic in context.Diagnostics)
        {
            if (!diagnostic.Properties.TryGetValue(TaskletDiagnostics.FixKey, out string? fix)
                || root.FindNode(diagnostic.Location.SourceSpan).FirstAncestorOrSelf<InvocationExpressionSyntax>() is not { } invocation)
            {
                continue;
            }

            SyntaxNode? replacement = fix switch
            {
                FixKinds.RemoveConfigureAwait => Receiver(invocation),
                FixKinds.AddContinueOnCapturedContext => WithContinueOnCapturedContext(invocation),
                _ => null,
            };
            if (replacement is null)
            {
                continue;
            }

            string title = fix == FixKinds.RemoveConfigureAwait ? RemoveTitle : AddFlagTitle;
            context.RegisterCodeFix(
                CodeAction.Create(title, _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(invocation, replacement))), equivalenceKey: fix),
                diagnostic);
        }
    }

    // task.ConfigureAwait(false) -> task; TaskAsyncEnumerableExtensions.ConfigureAwait(items, false) -> items.
    private static ExpressionSyntax? Receiver(InvocationExpressionSyntax invocation)
    {
        // One argument: the instance or extension form; two: the extension called as a static method.
        SeparatedSyntaxList<ArgumentSyntax> arguments = invocation.ArgumentList.Arguments;
        ExpressionSyntax? receiver = arguments.Count switch
        {
            1 => (invocation.Expression as MemberAccessExpressionSyntax)?.Expression,
            2 => arguments[0].Expression,
            _ => null,
        };

        // The call's trivia, not the receiver's: a fluent call split over lines keeps the receiver's line (its line
        // break before '.ConfigureAwait' goes).
        return receiver?.WithLeadingTrivia(invocation.GetLeadingTrivia()).WithTrailingTrivia(invocation.GetTrailingTrivia());
    }

    // ConfigureAwait(options) -> ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext | options).
    private static InvocationExpressionSyntax? WithContinueOnCapturedContext(InvocationExpressionSyntax invocation)
    {
        ArgumentSyntax? options = invocation.ArgumentList.Arguments.LastOrDefault();
        if (options is null)
        {
            return null;
        }

        ExpressionSyntax flag = SyntaxFactory.ParseExpression("global::System.Threading.Tasks.ConfigureAwaitOptions.ContinueOnCapturedContext")
            .WithAdditionalAnnotations(Simplifier.Annotation);
        ExpressionSyntax value = options.Expression.WithoutTrivia();
        if (value is BinaryExpressionSyntax or ConditionalExpressionSyntax or AssignmentExpressionSyntax)
        {
            value = SyntaxFactory.ParenthesizedExpression(value);
        }

        ExpressionSyntax combined = SyntaxFactory.BinaryExpression(
            SyntaxKind.BitwiseOrExpression,
            flag.WithTrailingTrivia(SyntaxFactory.Space),
            SyntaxFactory.Token(SyntaxKind.BarToken).WithTrailingTrivia(SyntaxFactory.Space),
            value).WithTriviaFrom(options.Expression);
        return invocation.ReplaceNode(options, options.WithExpression(combined));
    }
}
