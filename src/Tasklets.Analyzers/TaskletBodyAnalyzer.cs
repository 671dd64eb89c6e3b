using System.Collections.Concurrent;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Tasklets.Analyzers;

/// <summary>
/// The base of the rules that apply inside tasklet bodies (TASKLET001, TASKLET002): finds each body and hands every
/// operation of it to <see cref="AnalyzeOperation"/>.
/// </summary>
/// <remarks>
/// A body is found where it is passed (<see cref="TaskletBodies.IsBodyArgument"/>): a lambda or anonymous method
/// there is walked at once; a method group, or the method a forwarding lambda (<c>() =&gt; WorkAsync(x)</c>) calls,
/// is walked when it is declared in the same file as the call, once per compilation however many calls pass it
/// (its operations come from the call's semantic model: another file's would need Compilation.GetSemanticModel,
/// which analyzers must not call, RS1030). Lambdas and local functions nested in a body are not part of it.
/// </remarks>
internal abstract class TaskletBodyAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public sealed override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            if (KnownSymbols.Create(start.Compilation) is not { } known)
            {
                return; // no Tasklets reference: nothing can be a tasklet body
            }

            // Methods already walked as bodies in this compilation: a method passed to Go twice is reported once.
            var walked = new ConcurrentDictionary<IMethodSymbol, byte>(SymbolEqualityComparer.Default);
            start.RegisterOperationAction(context => OnDelegateCreation(context, known, walked), OperationKind.DelegateCreation);
        });
    }

    /// <summary>Checks one operation of a tasklet body.</summary>
    protected abstract void AnalyzeOperation(IOperation operation, TaskletBody body);

    private void OnDelegateCreation(OperationAnalysisContext context, KnownSymbols known, ConcurrentDictionary<IMethodSymbol, byte> walked)
    {
        var creation = (IDelegateCreationOperation)context.Operation;
        if (!TaskletBodies.IsBodyArgument(creation, known))
        {
            return;
        }

        switch (creation.Target)
        {
            case IAnonymousFunctionOperation lambda:
                WalkBody(lambda.Body, lambda.Symbol.IsAsync, context, known);
                if (TaskletBodies.ForwardedMethod(lambda) is { } forwarded)
                {
                    WalkMethod(forwarded, creation, context, known, walked);
                }

                break;
            case IMethodReferenceOperation reference:
                WalkMethod(reference.Method, creation, context, known, walked);
                break;
        }
    }

    private void WalkMethod(IMethodSymbol method, IOperation site, OperationAnalysisContext context, KnownSymbols known, ConcurrentDictionary<IMethodSymbol, byte> walked)
    {
        method = method.PartialImplementationPart ?? method.OriginalDefinition;
        if (method.DeclaringSyntaxReferences.Length != 1 || site.SemanticModel is not { } semanticModel)
        {
            return; // from metadata, or a partial method without a body
        }

        SyntaxReference reference = method.DeclaringSyntaxReferences[0];
        if (reference.SyntaxTree != semanticModel.SyntaxTree || !walked.TryAdd(method, 0))
        {
            return;
        }

        SyntaxNode declaration = reference.GetSyntax(context.CancellationToken);
        IOperation? body = semanticModel.GetOperation(declaration, context.CancellationToken) switch
        {
            IMethodBodyOperation methodBody => (IOperation?)methodBody.BlockBody ?? methodBody.ExpressionBody,
            ILocalFunctionOperation localFunction => localFunction.Body,
            _ => null,
        };
        if (body is not null)
        {
            WalkBody(body, method.IsAsync, context, known);
        }
    }

    private void WalkBody(IOperation root, bool isAsync, OperationAnalysisContext context, KnownSymbols known)
    {
        var body = new TaskletBody(root, isAsync, known, context);
        TaskletBodies.Walk(root, operation => AnalyzeOperation(operation, body));
    }
}

/// <summary>A tasklet body being analysed, and where its diagnostics go.</summary>
internal sealed class TaskletBody
{
    private readonly OperationAnalysisContext _context;

    public TaskletBody(IOperation root, bool isAsync, KnownSymbols known, OperationAnalysisContext context)
    {
        Root = root;
        IsAsync = isAsync;
        Known = known;
        _context = context;
    }

    /// <summary>The body's block (or expression).</summary>
    public IOperation Root { get; }

    /// <summary>The body is an async lambda or method: a fix may insert an await.</summary>
    public bool IsAsync { get; }

    /// <summary>
    /// The body runs on the library's builder: a lambda or method returning TaskletTask or TaskletTask&lt;T&gt;, which
    /// brings every await back to its scheduler (docs/semantics.md, "Tasklet bodies on the library's builder").
    /// </summary>
    public bool OnLibraryBuilder => Root.Parent switch
    {
        IAnonymousFunctionOperation lambda => Known.IsTaskletTask(lambda.Symbol.ReturnType),
        IMethodBodyOperation or ILocalFunctionOperation => Root.SemanticModel?.GetEnclosingSymbol(Root.Syntax.SpanStart) is IMethodSymbol method && Known.IsTaskletTask(method.ReturnType),
        _ => false,
    };

    public KnownSymbols Known { get; }

    public CancellationToken CancellationToken => _context.CancellationToken;

    public void Report(Diagnostic diagnostic) => _context.ReportDiagnostic(diagnostic);

    /// <summary>
    /// True when an <c>await</c> may replace <paramref name="operation"/>: the body is async and the operation is not
    /// inside a lock statement (CS1996). Fixes that insert an await are offered only then.
    /// </summary>
    public bool CanAwaitAt(IOperation operation)
    {
        if (!IsAsync)
        {
            return false;
        }

        for (IOperation? current = operation.Parent; current is not null && current != Root; current = current.Parent)
        {
            if (current is ILockOperation)
            {
                return false;
            }
        }

        return true;
    }
}
