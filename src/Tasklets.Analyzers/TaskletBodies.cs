using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace Tasklets.Analyzers;

/// <summary>
/// What a tasklet body is (docs/analyzers.md, "What counts as a tasklet body"): the lambda, anonymous method or method
/// group passed where the library takes one, recognised by the parameter: a parameter of a method (or constructor) of
/// a library type whose declared type is a delegate returning Task, Task&lt;T&gt;, or the library's TaskletTask or
/// TaskletTask&lt;T&gt; (the builder the Go overloads bind async lambdas to, issue 17): Tasklet.Go, Scheduler.Go,
/// Scheduler.Run(main), TaskletGroup.Go, Explore.Run and Replay, and any such method added later. A delegate whose
/// declared return type is a type parameter (Tasklet.RunInThread's Func&lt;CancellationToken, T&gt;, which runs on a
/// thread of its own) or void (Scheduler.InvokeAsync) is not a body.
/// </summary>
internal static class TaskletBodies
{
    /// <summary>True when an argument for <paramref name="parameter"/> is a tasklet body.</summary>
    public static bool IsBodyParameter(IParameterSymbol? parameter, KnownSymbols known)
    {
        if (parameter?.ContainingSymbol is not IMethodSymbol method || !known.IsLibraryType(method.ContainingType))
        {
            return false;
        }

        // The declared type (Func<Task<T>> of Go<T>), not the constructed one: a T inferred as Task does not make
        // RunInThread's work a body.
        return parameter.OriginalDefinition.Type is INamedTypeSymbol { TypeKind: TypeKind.Delegate, DelegateInvokeMethod: { } invoke }
            && (known.IsTask(invoke.ReturnType) || known.IsTaskletTask(invoke.ReturnType));
    }

    /// <summary>True when <paramref name="creation"/> (a lambda or method group made into a delegate) is passed as a tasklet body.</summary>
    public static bool IsBodyArgument(IDelegateCreationOperation creation, KnownSymbols known)
    {
        IOperation? parent = creation.Parent;
        while (parent is IConversionOperation or IParenthesizedOperation)
        {
            parent = parent.Parent;
        }

        return parent is IArgumentOperation argument && IsBodyParameter(argument.Parameter, known);
    }

    /// <summary>
    /// The method a forwarding lambda calls: <c>() =&gt; M(...)</c>, <c>async () =&gt; await M(...)</c>, or a block
    /// body whose only statement is that call or its return. Such a method runs as the tasklet body.
    /// </summary>
    public static IMethodSymbol? ForwardedMethod(IAnonymousFunctionOperation lambda)
    {
        IOperation? single = null;
        foreach (IOperation statement in lambda.Body.Operations)
        {
            if (statement is IReturnOperation { IsImplicit: true, ReturnedValue: null })
            {
                continue; // the end of a block body
            }

            if (single is not null)
            {
                return null;
            }

            single = statement;
        }

        IOperation? expression = single switch
        {
            IReturnOperation ret => ret.ReturnedValue,
            IExpressionStatementOperation statement => statement.Operation,
            _ => null,
        };
        expression = Unwrap(expression);
        if (expression is IAwaitOperation awaited)
        {
            expression = Unwrap(awaited.Operation);
        }

        return expression is IInvocationOperation invocation ? invocation.TargetMethod : null;
    }

    /// <summary>The operation under implicit and explicit conversions and parentheses.</summary>
    public static IOperation? Unwrap(IOperation? operation)
    {
        while (operation is IConversionOperation or IParenthesizedOperation)
        {
            operation = operation is IConversionOperation conversion ? conversion.Operand : ((IParenthesizedOperation)operation).Operand;
        }

        return operation;
    }

    /// <summary>
    /// Calls <paramref name="visit"/> for every operation under <paramref name="root"/> that runs as part of it:
    /// lambdas, anonymous methods and local functions declared inside are skipped (they run when and where whoever
    /// invokes them decides; one passed as a tasklet body is a body of its own).
    /// </summary>
    public static void Walk(IOperation root, Action<IOperation> visit)
    {
        var pending = new Stack<IOperation>();
        pending.Push(root);
        while (pending.Count > 0)
        {
            IOperation operation = pending.Pop();
            visit(operation);
            foreach (IOperation child in operation.ChildOperations)
            {
                if (child is not (IAnonymousFunctionOperation or ILocalFunctionOperation))
                {
                    pending.Push(child);
                }
            }
        }
    }
}
