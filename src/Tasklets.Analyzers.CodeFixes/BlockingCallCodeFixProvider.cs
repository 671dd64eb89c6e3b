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
/// TASKLET002's fixes, offered only where the analyzer found that an await can stand there (an async body, no lock
/// statement around): <c>t.Wait();</c>, <c>t.Result</c> and <c>t.GetAwaiter().GetResult()</c> become <c>await t</c>;
/// <c>ch.Send(x)</c> becomes <c>await ch.SendAsync(x)</c> (each blocking form has an awaitable twin with the same
/// arguments); <c>Thread.Sleep(ms)</c> becomes <c>await Tasklet.Sleep(TimeSpan.FromMilliseconds(ms))</c>.
/// </summary>
[ExportCodeFixProvider(LanguageNames.CSharp, Name = nameof(BlockingCallCodeFixProvider)), Shared]
internal sealed class BlockingCallCodeFixProvider : CodeFixProvider
{
    /// <inheritdoc/>
    public override ImmutableArray<string> FixableDiagnosticIds { get; } = ImmutableArray.Create(TaskletDiagnostics.BlockingCallId);

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
                || root.FindNode(diagnostic.Location.SourceSpan, getInnermostNodeForTie: true) is not ExpressionSyntax blocking)
            {
                continue;
            }

            ExpressionSyntax? awaited = fix switch
            {
                FixKinds.AwaitReceiver => AwaitedTask(blocking),
                FixKinds.AwaitTwin => diagnostic.Properties.TryGetValue(TaskletDiagnostics.TwinKey, out string? twin) && twin is not null ? TwinCall(blocking, twin) : null,
                FixKinds.TaskletSleep or FixKinds.TaskletSleepMilliseconds => TaskletSleep(blocking, fix == FixKinds.TaskletSleepMilliseconds),
                _ => null,
            };
            if (awaited is null)
            {
                continue;
            }

            SyntaxNode replacement = Await(awaited, blocking);
            string title = "Use " + Describe(replacement);
            context.RegisterCodeFix(
                CodeAction.Create(title, _ => Task.FromResult(context.Document.WithSyntaxRoot(root.ReplaceNode(blocking, replacement))), equivalenceKey: fix),
                diagnostic);
        }
    }

    // What to await instead of the blocking expression: t of t.Wait(), t.Result, t.GetAwaiter().GetResult().
    private static ExpressionSyntax? AwaitedTask(ExpressionSyntax blocking) => blocking switch
    {
        MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Result" } result => result.Expression,
        InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "GetResult", Expression: InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "GetAwaiter" } getAwaiter } } } => getAwaiter.Expression,
        InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax { Name.Identifier.ValueText: "Wait" } wait } => wait.Expression,
        _ => null,
    };

    // ch.Send(x) -> ch.SendAsync(x): the same receiver and arguments, the twin's name.
    private static InvocationExpressionSyntax? TwinCall(ExpressionSyntax blocking, string twin)
        => blocking is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access } invocation
            ? invocation.WithExpression(access.WithName(SyntaxFactory.IdentifierName(twin).WithTriviaFrom(access.Name)))
            : null;

    // Thread.Sleep(x) -> Tasklet.Sleep(x), or Tasklet.Sleep(TimeSpan.FromMilliseconds(x)) for an int; a named
    // argument loses its name (Thread.Sleep's parameter names are not Tasklet.Sleep's).
    private static InvocationExpressionSyntax? TaskletSleep(ExpressionSyntax blocking, bool milliseconds)
    {
        if (blocking is not InvocationExpressionSyntax { ArgumentList.Arguments.Count: 1 } invocation)
        {
            return null;
        }

        ArgumentSyntax argument = invocation.ArgumentList.Arguments[0];
        ExpressionSyntax delay = argument.Expression;
        if (milliseconds)
        {
            delay = SyntaxFactory.InvocationExpression(
                SyntaxFactory.ParseExpression("global::System.TimeSpan.FromMilliseconds").WithAdditionalAnnotations(Simplifier.Annotation),
                SyntaxFactory.ArgumentList(SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Argument(delay.WithoutTrivia())))).WithTriviaFrom(delay);
        }

        return SyntaxFactory.InvocationExpression(
            SyntaxFactory.ParseExpression("global::Tasklets.Tasklet.Sleep").WithAdditionalAnnotations(Simplifier.Annotation),
            invocation.ArgumentList.WithArguments(SyntaxFactory.SingletonSeparatedList(SyntaxFactory.Argument(delay))));
    }

    // 'await x' in place of the blocking expression, in parentheses where it is the receiver of a member access,
    // an element access or a call ((await t).Length), with the blocking expression's trivia.
    private static ExpressionSyntax Await(ExpressionSyntax awaited, ExpressionSyntax blocking)
    {
        ExpressionSyntax result = SyntaxFactory.AwaitExpression(
            SyntaxFactory.Token(SyntaxKind.AwaitKeyword).WithTrailingTrivia(SyntaxFactory.Space),
            awaited.WithoutTrivia());
        bool receiver = blocking.Parent switch
        {
            MemberAccessExpressionSyntax access => access.Expression == blocking,
            ConditionalAccessExpressionSyntax conditional => conditional.Expression == blocking,
            ElementAccessExpressionSyntax element => element.Expression == blocking,
            InvocationExpressionSyntax call => call.Expression == blocking,
            PostfixUnaryExpressionSyntax => true,
            _ => false,
        };
        if (receiver)
        {
            result = SyntaxFactory.ParenthesizedExpression(result);
        }

        return result.WithTriviaFrom(blocking);
    }

    // The fix's title: "Use 'await ch.SendAsync(...)'".
    private static string Describe(SyntaxNode replacement)
    {
        string text = replacement.WithoutTrivia().ToString();
        int open = text.IndexOf('(', text.StartsWith("(", StringComparison.Ordinal) ? 1 : 0);
        return "'" + (open > 0 ? text.Substring(0, open) + "(...)" : text).Replace("global::Tasklets.", string.Empty) + "'";
    }
}
