using System.Collections.Immutable;
using Microsoft.CodeAnalysis;
using Microsoft.CodeAnalysis.Diagnostics;
using Microsoft.CodeAnalysis.FlowAnalysis;
using Microsoft.CodeAnalysis.Operations;

namespace Tasklets.Analyzers;

/// <summary>
/// TASKLET003 and TASKLET004: a ValueTask or TaskletOp that a Tasklets method returned (a "library ValueTask": SendAsync,
/// ReceiveAsync, Select.WaitAsync and Yield return TaskletOp; Tasklet.Sleep, JoinAsync, LockAsync, ... ValueTask) stored in a field or property, or held
/// by a local that is consumed more than once on some path. These apply everywhere, not only in tasklet bodies:
/// the waiter behind such a ValueTask is reused by the next operation of the same party.
/// </summary>
/// <remarks>
/// TASKLET004 is a may-analysis over the control-flow graph of each method, lambda and local function: the locals
/// consumed since their last assignment flow along the edges (a union where paths join, to a fixed point through
/// loops), and a consumption of a local that may already be consumed is reported. So <c>if (a) await t; else await t;</c>
/// is silent, and one <c>await t</c> in a loop that does not assign <c>t</c> again is reported. Consumptions are
/// await, AsTask(), AsValueTask(), GetAwaiter(), ConfigureAwait(), Preserve() and Result; copying the local is not tracked, and a
/// catch or finally block starts with nothing consumed (the graph has no edges into them), so the analysis errs
/// towards silence there.
/// </remarks>
[DiagnosticAnalyzer(LanguageNames.CSharp)]
internal sealed class ValueTaskAnalyzer : DiagnosticAnalyzer
{
    /// <inheritdoc/>
    public override ImmutableArray<DiagnosticDescriptor> SupportedDiagnostics { get; } =
        ImmutableArray.Create(TaskletDiagnostics.StoredValueTask, TaskletDiagnostics.ValueTaskConsumedTwice);

    /// <inheritdoc/>
    public override void Initialize(AnalysisContext context)
    {
        context.ConfigureGeneratedCodeAnalysis(GeneratedCodeAnalysisFlags.None);
        context.EnableConcurrentExecution();
        context.RegisterCompilationStartAction(start =>
        {
            if (KnownSymbols.Create(start.Compilation) is not { } known)
            {
                return;
            }

            start.RegisterOperationAction(
                context => AnalyzeStore(context, known),
                OperationKind.SimpleAssignment, OperationKind.FieldInitializer, OperationKind.PropertyInitializer);
            start.RegisterOperationBlockAction(context => AnalyzeBlocks(context, known));
        });
    }

    // ------------------------------------------------------------------ TASKLET003: stored in a field or property

    private static void AnalyzeStore(OperationAnalysisContext context, KnownSymbols known)
    {
        (IOperation? value, ISymbol? member) = context.Operation switch
        {
            ISimpleAssignmentOperation { Target: IFieldReferenceOperation field } assignment => (assignment.Value, (ISymbol)field.Field),
            ISimpleAssignmentOperation { Target: IPropertyReferenceOperation { Arguments.IsEmpty: true } property } assignment => (assignment.Value, property.Property),
            IFieldInitializerOperation { InitializedFields.IsEmpty: false } initializer => (initializer.Value, initializer.InitializedFields[0]),
            IPropertyInitializerOperation { InitializedProperties.IsEmpty: false } initializer => (initializer.Value, initializer.InitializedProperties[0]),
            _ => (null, null),
        };
        if (member is not null && Producer(value, known) is { } producer)
        {
            context.ReportDiagnostic(Diagnostic.Create(
                TaskletDiagnostics.StoredValueTask, value!.Syntax.GetLocation(), producer.ContainingType.Name + "." + producer.Name, member.Name));
        }
    }

    /// <summary>The library method whose ValueTask <paramref name="value"/> is, or null.</summary>
    private static IMethodSymbol? Producer(IOperation? value, KnownSymbols known)
        => TaskletBodies.Unwrap(value) is IInvocationOperation invocation
           && known.IsValueTask(invocation.Type)
           && known.IsLibraryType(invocation.TargetMethod.ContainingType)
            ? invocation.TargetMethod
            : null;

    // ------------------------------------------------------------------ TASKLET004: consumed more than once

    private static void AnalyzeBlocks(OperationBlockAnalysisContext context, KnownSymbols known)
    {
        var reported = new HashSet<IOperation>();
        var roots = new HashSet<IOperation>();
        foreach (IOperation block in context.OperationBlocks)
        {
            // A method's block sits under its IMethodBodyOperation: the graph is the root's, asked for by the block.
            IOperation root = block;
            while (root.Parent is not null)
            {
                root = root.Parent;
            }

            if (!roots.Add(root) || !HasGraph(root) || !AssignsLibraryValueTaskToLocal(root, known))
            {
                continue; // the cheap scan of the operation tree first: most blocks never build a graph
            }

            AnalyzeGraph(context.GetControlFlowGraph(block), known, reported, context);
        }
    }

    // The roots ControlFlowGraph.Create accepts (a root block is a method body in some error cases and scripts).
    private static bool HasGraph(IOperation root) => root is IMethodBodyOperation or IConstructorBodyOperation
        or IFieldInitializerOperation or IPropertyInitializerOperation or IParameterInitializerOperation or IBlockOperation;

    private static bool AssignsLibraryValueTaskToLocal(IOperation block, KnownSymbols known)
    {
        foreach (IOperation operation in block.Descendants())
        {
            IOperation? value = operation switch
            {
                IVariableDeclaratorOperation declarator => declarator.Initializer?.Value,
                ISimpleAssignmentOperation { Target: ILocalReferenceOperation } assignment => assignment.Value,
                _ => null,
            };
            if (Producer(value, known) is not null)
            {
                return true;
            }
        }

        return false;
    }

    private static void AnalyzeGraph(ControlFlowGraph graph, KnownSymbols known, HashSet<IOperation> reported, OperationBlockAnalysisContext context)
    {
        var tracked = new HashSet<ILocalSymbol>(SymbolEqualityComparer.Default);
        var lambdas = new List<IFlowAnonymousFunctionOperation>();
        foreach (BasicBlock block in graph.Blocks)
        {
            foreach (IOperation root in Roots(block))
            {
                foreach (IOperation operation in root.DescendantsAndSelf())
                {
                    if (operation is ISimpleAssignmentOperation { Target: ILocalReferenceOperation local } assignment
                        && known.IsValueTask(local.Local.Type) && Producer(assignment.Value, known) is not null)
                    {
                        tracked.Add(local.Local);
                    }
                    else if (operation is IFlowAnonymousFunctionOperation lambda)
                    {
                        lambdas.Add(lambda);
                    }
                }
            }
        }

        if (tracked.Count > 0)
        {
            Flow(graph, tracked, reported, context);
        }

        foreach (IFlowAnonymousFunctionOperation lambda in lambdas)
        {
            AnalyzeGraph(graph.GetAnonymousFunctionControlFlowGraph(lambda, context.CancellationToken), known, reported, context);
        }

        foreach (IMethodSymbol localFunction in graph.LocalFunctions)
        {
            AnalyzeGraph(graph.GetLocalFunctionControlFlowGraph(localFunction, context.CancellationToken), known, reported, context);
        }
    }

    private static IEnumerable<IOperation> Roots(BasicBlock block)
    {
        foreach (IOperation operation in block.Operations)
        {
            yield return operation;
        }

        if (block.BranchValue is { } branch)
        {
            yield return branch;
        }
    }

    // The fixed point of "consumed since the last assignment" over the graph, then one pass that reports.
    private static void Flow(ControlFlowGraph graph, HashSet<ILocalSymbol> tracked, HashSet<IOperation> reported, OperationBlockAnalysisContext context)
    {
        ImmutableArray<BasicBlock> blocks = graph.Blocks;
        var entry = new ImmutableHashSet<ILocalSymbol>?[blocks.Length];
        var exit = new ImmutableHashSet<ILocalSymbol>?[blocks.Length];
        ImmutableHashSet<ILocalSymbol> empty = ImmutableHashSet.Create<ILocalSymbol>(SymbolEqualityComparer.Default);
        bool changed = true;
        while (changed)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            changed = false;
            foreach (BasicBlock block in blocks)
            {
                if (!block.IsReachable)
                {
                    continue;
                }

                ImmutableHashSet<ILocalSymbol> state = empty;
                foreach (ControlFlowBranch predecessor in block.Predecessors)
                {
                    if (exit[predecessor.Source.Ordinal] is { } flowing)
                    {
                        state = state.Union(flowing);
                    }
                }

                ImmutableHashSet<ILocalSymbol> after = Transfer(block, state, tracked, consumedTwice: null);
                if (exit[block.Ordinal] is not { } before || !before.SetEquals(after))
                {
                    exit[block.Ordinal] = after;
                    changed = true;
                }

                entry[block.Ordinal] = state;
            }
        }

        var twice = new List<IOperation>();
        foreach (BasicBlock block in blocks)
        {
            if (block.IsReachable && entry[block.Ordinal] is { } state)
            {
                Transfer(block, state, tracked, twice);
            }
        }

        foreach (IOperation consumption in twice)
        {
            if (reported.Add(consumption))
            {
                var local = (ILocalReferenceOperation)Consumed(consumption)!;
                context.ReportDiagnostic(Diagnostic.Create(TaskletDiagnostics.ValueTaskConsumedTwice, local.Syntax.GetLocation(), local.Local.Name));
            }
        }
    }

    // The block's effect on the set of consumed locals, in evaluation order (operands before the operation that uses
    // them). Records in consumedTwice each consumption of a local that the set already held.
    private static ImmutableHashSet<ILocalSymbol> Transfer(BasicBlock block, ImmutableHashSet<ILocalSymbol> state, HashSet<ILocalSymbol> tracked, List<IOperation>? consumedTwice)
    {
        foreach (IOperation root in Roots(block))
        {
            foreach (IOperation operation in PostOrder(root))
            {
                if (operation is ISimpleAssignmentOperation { Target: ILocalReferenceOperation assigned } && tracked.Contains(assigned.Local))
                {
                    state = state.Remove(assigned.Local);
                }
                else if (operation is IArgumentOperation { Parameter.RefKind: RefKind.Out, Value: ILocalReferenceOperation output } && tracked.Contains(output.Local))
                {
                    state = state.Remove(output.Local);
                }
                else if (Consumed(operation) is ILocalReferenceOperation consumed && tracked.Contains(consumed.Local))
                {
                    if (state.Contains(consumed.Local))
                    {
                        consumedTwice?.Add(operation);
                    }
                    else
                    {
                        state = state.Add(consumed.Local);
                    }
                }
            }
        }

        return state;
    }

    // The local a consuming operation consumes: await t, t.AsTask(), t.AsValueTask() (TaskletOp), t.GetAwaiter(),
    // t.ConfigureAwait(..), t.Preserve(), t.Result. An implicit conversion of a TaskletOp to ValueTask is not counted.
    private static IOperation? Consumed(IOperation operation) => operation switch
    {
        IAwaitOperation awaited => TaskletBodies.Unwrap(awaited.Operation) as ILocalReferenceOperation,
        IInvocationOperation { TargetMethod.Name: "AsTask" or "AsValueTask" or "GetAwaiter" or "ConfigureAwait" or "Preserve", Instance: ILocalReferenceOperation local } => local,
        IPropertyReferenceOperation { Property.Name: "Result", Instance: ILocalReferenceOperation local } => local,
        _ => null,
    };

    private static IEnumerable<IOperation> PostOrder(IOperation root)
    {
        foreach (IOperation child in root.ChildOperations)
        {
            foreach (IOperation operation in PostOrder(child))
            {
                yield return operation;
            }
        }

        yield return root;
    }
}
