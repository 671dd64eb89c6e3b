using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.Operations;

namespace Tasklets.Analyzers;

/// <summary>
/// TASKLET002: a call that blocks the thread inside a tasklet body: <c>Task.Wait</c>, <c>Task.WaitAll</c>,
/// <c>Task.WaitAny</c>, <c>Result</c> of Task&lt;T&gt; or ValueTask&lt;T&gt;, <c>GetResult()</c> of a task's awaiter,
/// <c>Thread.Sleep</c>, and the library's blocking forms (<see cref="BlockingMembers"/>).
/// </summary>
/// <remarks>
/// <c>t.Result</c> and <c>t.GetAwaiter().GetResult()</c> of a local or parameter that an earlier <c>await</c> of the
/// body awaited (itself, or through <c>Task.WhenAll</c>), or whose completion the body checked before
/// (<c>IsCompleted</c>, <c>IsCompletedSuccessfully</c>), do not block and are not reported. A code fix is offered
/// only where an await can replace the call: the body is async and the call is not inside a lock statement.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class BlockingCallAnalyzer : TaskletBodyAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } = ImmutableArray.Create(TaskletDiagnostics.BlockingCall);

    /// <inheritdoc/>
    protected override void AnalyzeOperation(IOperation operation, TaskletBody body)
    {
        switch (operation)
        {
            case IInvocationOperation invocation:
                AnalyzeInvocation(invocation, body);
                break;
            case IPropertyReferenceOperation { Property.Name: "Result", Instance: { } task } property
                when body.Known.IsTaskOfT(property.Property.ContainingType) && !AwaitedBefore(task, property, body):
                Report(property, body, property.Property.ContainingType.Name + "<T>.Result", "'await'", FixKinds.AwaitReceiver);
                break;
        }
    }

    private static void AnalyzeInvocation(IInvocationOperation invocation, TaskletBody body)
    {
        IMethodSymbol method = invocation.TargetMethod;
        KnownSymbols known = body.Known;
        INamedTypeSymbol type = method.ContainingType.OriginalDefinition;
        if (KnownSymbols.Is(type, known.Task))
        {
            switch (method.Name)
            {
                case "Wait":
                    // Only the parameterless Wait() is a statement that 'await t;' replaces; Wait(timeout) returns a bool.
                    bool plain = method.Parameters.Length == 0 && invocation.Parent is IExpressionStatementOperation;
                    Report(invocation, body, "Task.Wait", "'await'", plain ? FixKinds.AwaitReceiver : null);
                    break;
                case "WaitAll":
                    Report(invocation, body, "Task.WaitAll", "'await Task.WhenAll(...)'", null);
                    break;
                case "WaitAny":
                    Report(invocation, body, "Task.WaitAny", "'await Task.WhenAny(...)'", null);
                    break;
            }
        }
        else if (KnownSymbols.Is(type, known.Thread) && method.Name == "Sleep" && method.Parameters.Length == 1)
        {
            string fix = KnownSymbols.Is(method.Parameters[0].Type, known.TimeSpan) ? FixKinds.TaskletSleep : FixKinds.TaskletSleepMilliseconds;
            Report(invocation, body, "Thread.Sleep", "'await Tasklet.Sleep(...)', the scheduler's timer", fix);
        }
        else if (method.Name == "GetResult" && method.Parameters.Length == 0 && known.Awaiters.Contains(type))
        {
            // t.GetAwaiter().GetResult() awaits t; an awaiter kept in a variable has no obvious fix.
            IOperation? awaited = invocation.Instance is IInvocationOperation { TargetMethod.Name: "GetAwaiter", Instance: { } task } ? task : null;
            if (awaited is null || !AwaitedBefore(awaited, invocation, body))
            {
                Report(invocation, body, "GetAwaiter().GetResult()", "'await'", awaited is null ? null : FixKinds.AwaitReceiver);
            }
        }
        else if (BlockingMembers.TwinOf(method, known) is { } twin)
        {
            string name = method.ContainingType.IsGenericType ? method.ContainingType.Name + "<T>" : method.ContainingType.Name;
            Report(invocation, body, name + "." + method.Name, "'await " + name + "." + twin + "(...)'", FixKinds.AwaitTwin, twin);
        }
    }

    private static void Report(IOperation operation, TaskletBody body, string what, string instead, string? fix, string? twin = null)
    {
        ImmutableDictionary<string, string?> properties = ImmutableDictionary<string, string?>.Empty;
        if (fix is not null && body.CanAwaitAt(operation))
        {
            properties = properties.Add(TaskletDiagnostics.FixKey, fix);
            if (twin is not null)
            {
                properties = properties.Add(TaskletDiagnostics.TwinKey, twin);
            }
        }

        body.Report(Diagnostic.Create(TaskletDiagnostics.BlockingCall, operation.Syntax.GetLocation(), properties, what, instead));
    }

    // True when 'task' is a local or parameter that an await earlier in the body (in source order) awaited, directly
    // or as an argument of Task.WhenAll, or whose IsCompleted or IsCompletedSuccessfully the body read before (the
    // synchronous fast path: 'if (t.IsCompletedSuccessfully) return t.Result;'). Source order approximates "on every
    // path before": an await in a branch not taken also counts, which errs towards silence.
    private static bool AwaitedBefore(IOperation task, IOperation use, TaskletBody body)
    {
        ISymbol? symbol = ReferencedSymbol(task);
        if (symbol is null)
        {
            return false;
        }

        bool found = false;
        int before = use.Syntax.SpanStart;
        TaskletBodies.Walk(body.Root, operation =>
        {
            if (found || operation.Syntax.Span.End > before)
            {
                return;
            }

            found = operation switch
            {
                IAwaitOperation awaitOperation => Awaits(awaitOperation.Operation, symbol, body.Known),
                IPropertyReferenceOperation { Property.Name: "IsCompleted" or "IsCompletedSuccessfully", Instance: { } instance }
                    => SymbolEqualityComparer.Default.Equals(ReferencedSymbol(instance), symbol),
                _ => false,
            };
        });
        return found;
    }

    private static bool Awaits(IOperation awaited, ISymbol symbol, KnownSymbols known)
    {
        awaited = TaskletBodies.Unwrap(awaited)!;
        if (SymbolEqualityComparer.Default.Equals(ReferencedSymbol(awaited), symbol))
        {
            return true;
        }

        if (awaited is not IInvocationOperation { TargetMethod: { Name: "WhenAll", IsStatic: true } whenAll } invocation
            || !KnownSymbols.Is(whenAll.ContainingType, known.Task))
        {
            return false;
        }

        foreach (IArgumentOperation argument in invocation.Arguments)
        {
            foreach (IOperation value in Elements(argument.Value))
            {
                if (SymbolEqualityComparer.Default.Equals(ReferencedSymbol(value), symbol))
                {
                    return true;
                }
            }
        }

        return false;
    }

    // The tasks an argument of WhenAll names: itself, or the elements of a params array or collection expression.
    private static ImmutableArray<IOperation> Elements(IOperation value)
    {
        value = TaskletBodies.Unwrap(value)!;
        switch (value)
        {
            case IArrayCreationOperation { Initializer: { } initializer }:
                return initializer.ElementValues;
            case ICollectionExpressionOperation collection:
                return collection.Elements;
            default:
                return ImmutableArray.Create(value);
        }
    }

    private static ISymbol? ReferencedSymbol(IOperation? operation) => TaskletBodies.Unwrap(operation) switch
    {
        ILocalReferenceOperation local => local.Local,
        IParameterReferenceOperation parameter => parameter.Parameter,
        _ => null,
    };
}
