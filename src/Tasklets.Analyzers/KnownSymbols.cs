using Microsoft.CodeAnalysis;

namespace Tasklets.Analyzers;

/// <summary>
/// The types the rules recognise, looked up once per compilation. Every check compares symbols, never names alone:
/// a type called Channel in another namespace, or a Tasklets namespace of the user's own, is not the library.
/// </summary>
internal sealed class KnownSymbols
{
    /// <summary>The library's assembly name; its public types live in the namespace of the same name.</summary>
    public const string LibraryName = "Tasklets";

    private KnownSymbols(Compilation compilation, INamedTypeSymbol tasklet)
    {
        Compilation = compilation;
        Tasklet = tasklet;
        LibraryAssembly = tasklet.ContainingAssembly;
        Task = compilation.GetTypeByMetadataName("System.Threading.Tasks.Task");
        TaskOfT = compilation.GetTypeByMetadataName("System.Threading.Tasks.Task`1");
        ValueTask = compilation.GetTypeByMetadataName("System.Threading.Tasks.ValueTask");
        ValueTaskOfT = compilation.GetTypeByMetadataName("System.Threading.Tasks.ValueTask`1");
        TaskletOp = compilation.GetTypeByMetadataName(LibraryName + ".TaskletOp");
        TaskletOpOfT = compilation.GetTypeByMetadataName(LibraryName + ".TaskletOp`1");
        ConfigureAwaitOptions = compilation.GetTypeByMetadataName("System.Threading.Tasks.ConfigureAwaitOptions");
        Thread = compilation.GetTypeByMetadataName("System.Threading.Thread");
        TimeSpan = compilation.GetTypeByMetadataName("System.TimeSpan");
        var awaiters = new HashSet<INamedTypeSymbol>(SymbolEqualityComparer.Default);
        foreach (string name in AwaiterNames)
        {
            if (compilation.GetTypeByMetadataName(name) is { } awaiter)
            {
                awaiters.Add(awaiter);
            }
        }

        Awaiters = awaiters;
    }

    // The awaiters of Task, Task<T>, ValueTask, ValueTask<T> and their ConfigureAwait forms: GetResult on one of
    // them waits for the task when it has not completed.
    private static readonly string[] AwaiterNames =
    [
        "System.Runtime.CompilerServices.TaskAwaiter",
        "System.Runtime.CompilerServices.TaskAwaiter`1",
        "System.Runtime.CompilerServices.ValueTaskAwaiter",
        "System.Runtime.CompilerServices.ValueTaskAwaiter`1",
        "System.Runtime.CompilerServices.ConfiguredTaskAwaitable+ConfiguredTaskAwaiter",
        "System.Runtime.CompilerServices.ConfiguredTaskAwaitable`1+ConfiguredTaskAwaiter",
        "System.Runtime.CompilerServices.ConfiguredValueTaskAwaitable+ConfiguredValueTaskAwaiter",
        "System.Runtime.CompilerServices.ConfiguredValueTaskAwaitable`1+ConfiguredValueTaskAwaiter",
    ];

    public Compilation Compilation { get; }

    public INamedTypeSymbol Tasklet { get; }

    public IAssemblySymbol LibraryAssembly { get; }

    public INamedTypeSymbol? Task { get; }

    public INamedTypeSymbol? TaskOfT { get; }

    public INamedTypeSymbol? ValueTask { get; }

    public INamedTypeSymbol? ValueTaskOfT { get; }

    /// <summary>The library's struct awaitable without a result (null when compiling against a library without it).</summary>
    public INamedTypeSymbol? TaskletOp { get; }

    /// <summary>The library's struct awaitable with a result.</summary>
    public INamedTypeSymbol? TaskletOpOfT { get; }

    public INamedTypeSymbol? ConfigureAwaitOptions { get; }

    public INamedTypeSymbol? Thread { get; }

    public INamedTypeSymbol? TimeSpan { get; }

    public HashSet<INamedTypeSymbol> Awaiters { get; }

    /// <summary>The symbols of <paramref name="compilation"/>, or null when it does not reference the Tasklets library.</summary>
    public static KnownSymbols? Create(Compilation compilation)
    {
        INamedTypeSymbol? tasklet = compilation.GetTypeByMetadataName(LibraryName + ".Tasklet");
        return tasklet is not null && tasklet.ContainingAssembly.Name == LibraryName ? new KnownSymbols(compilation, tasklet) : null;
    }

    /// <summary>A type (or a type nested in one) of the library's namespace, from the library's assembly.</summary>
    public bool IsLibraryType(ITypeSymbol? type)
    {
        if (type is null || !SymbolEqualityComparer.Default.Equals(type.ContainingAssembly, LibraryAssembly))
        {
            return false;
        }

        INamespaceSymbol? ns = type.ContainingNamespace;
        return ns is { Name: LibraryName } && ns.ContainingNamespace is { IsGlobalNamespace: true };
    }

    /// <summary>A library type named <paramref name="metadataName"/> (Channel`1, AsyncLock, ...), generic or not.</summary>
    public bool IsLibraryType(ITypeSymbol? type, string metadataName)
        => type is not null && type.OriginalDefinition.MetadataName == metadataName && type.ContainingType is null && IsLibraryType(type);

    /// <summary>Task or Task&lt;T&gt; (any T).</summary>
    public bool IsTask(ITypeSymbol? type)
        => type is not null && (Is(type.OriginalDefinition, Task) || Is(type.OriginalDefinition, TaskOfT));

    /// <summary>
    /// The library's TaskletTask or TaskletTask&lt;T&gt;: what an async lambda passed to Go returns once the overloads
    /// of priority 1 bind it, so a parameter of that delegate type takes a tasklet body as Func&lt;Task&gt;'s does.
    /// </summary>
    public bool IsTaskletTask(ITypeSymbol? type)
        => IsLibraryType(type, "TaskletTask") || IsLibraryType(type, "TaskletTask`1");

    /// <summary>
    /// ValueTask or ValueTask&lt;T&gt; (any T), or the library's TaskletOp or TaskletOp&lt;T&gt;: the awaitables that may
    /// be consumed once (TASKLET003, TASKLET004).
    /// </summary>
    public bool IsValueTask(ITypeSymbol? type)
        => type is not null && (Is(type.OriginalDefinition, ValueTask) || Is(type.OriginalDefinition, ValueTaskOfT)
            || Is(type.OriginalDefinition, TaskletOp) || Is(type.OriginalDefinition, TaskletOpOfT));

    /// <summary>Task&lt;T&gt; or ValueTask&lt;T&gt;, whose Result property waits.</summary>
    public bool IsTaskOfT(ITypeSymbol? type)
        => type is not null && (Is(type.OriginalDefinition, TaskOfT) || Is(type.OriginalDefinition, ValueTaskOfT));

    public static bool Is(ISymbol? symbol, ISymbol? other) => other is not null && SymbolEqualityComparer.Default.Equals(symbol, other);
}
