using System.Collections.Immutable;
using System.Globalization;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.CSharp.Syntax;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;
using Microsoft.CodeAnalysis.Text;

namespace Tasklets.Analyzers;

/// <summary>
/// TASKLET001: <c>ConfigureAwait(false)</c>, or <c>ConfigureAwait(options)</c> without
/// <c>ConfigureAwaitOptions.ContinueOnCapturedContext</c>, inside a tasklet body. Any method named ConfigureAwait
/// counts (Task, ValueTask, the IAsyncEnumerable and IAsyncDisposable extensions, other libraries' awaitables): the
/// name and its bool or ConfigureAwaitOptions parameter mean the same everywhere. Only constant arguments are judged.
/// </summary>
[DiagnosticAnalyzer(Microsoft.CodeAnalysis.LanguageNames.CSharp)]
internal sealed class ConfigureAwaitAnalyzer : TaskletBodyAnalyzer
{
    // ConfigureAwaitOptions.ContinueOnCapturedContext: the one flag that keeps the continuation on the scheduler.
    private const long ContinueOnCapturedContext = 1;

    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(TaskletDiagnostics.ConfigureAwait);

    /// <inheritdoc/>
    protected override void AnalyzeOperation(IOperation operation, TaskletBody body)
    {
        if (operation is not IInvocationOperation { TargetMethod.Name: "ConfigureAwait" } invocation)
        {
            return;
        }

        foreach (IArgumentOperation argument in invocation.Arguments)
        {
            if (argument.Parameter is not { } parameter || argument.Value.ConstantValue is not { HasValue: true, Value: { } value })
            {
                continue;
            }

            string? fix = null;
            if (parameter.Type.SpecialType == SpecialType.System_Boolean && value is false)
            {
                fix = FixKinds.RemoveConfigureAwait;
            }
            else if (KnownSymbols.Is(parameter.Type, body.Known.ConfigureAwaitOptions))
            {
                long flags = Convert.ToInt64(value, CultureInfo.InvariantCulture);
                if ((flags & ContinueOnCapturedContext) == 0)
                {
                    // Options other than None (SuppressThrowing, ForceYielding) keep their meaning with the flag added.
                    fix = flags == 0 ? FixKinds.RemoveConfigureAwait : FixKinds.AddContinueOnCapturedContext;
                }
            }

            if (fix is not null)
            {
                var properties = ImmutableDictionary<string, string?>.Empty.Add(TaskletDiagnostics.FixKey, fix);
                body.Report(Diagnostic.Create(
                    TaskletDiagnostics.ConfigureAwait,
                    Location(invocation),
                    properties,
                    "ConfigureAwait(" + argument.Value.Syntax + ")",
                    body.OnLibraryBuilder ? TaskletDiagnostics.ConfigureAwaitCostsAPost : TaskletDiagnostics.ConfigureAwaitLeaves));
                return;
            }
        }
    }

    // "ConfigureAwait(false)" of "task.ConfigureAwait(false)", where the squiggle reads best; the whole call otherwise.
    private static Location Location(IInvocationOperation invocation)
    {
        SyntaxNode syntax = invocation.Syntax;
        return syntax is InvocationExpressionSyntax { Expression: MemberAccessExpressionSyntax access }
            ? Microsoft.CodeAnalysis.Location.Create(syntax.SyntaxTree, TextSpan.FromBounds(access.Name.SpanStart, syntax.Span.End))
            : syntax.GetLocation();
    }
}
