using Microsoft.CodeAnalysis;

namespace Tasklets.Analyzers;

/// <summary>
/// The library's blocking forms, each for OS threads that are not tasklets (their XML docs say "blocking the calling
/// OS thread"), with the awaitable twin a tasklet uses instead. The twin takes the same arguments. A test compares
/// this list with the library's documentation, so a blocking form added later without an entry here fails it.
/// </summary>
internal static class BlockingMembers
{
    /// <summary>(type's metadata name in the Tasklets namespace, blocking method, awaitable twin).</summary>
    public static readonly (string Type, string Method, string Twin)[] All =
    [
        ("Channel`1", "Send", "SendAsync"),
        ("Channel`1", "Receive", "ReceiveAsync"),
        ("AsyncLock", "Lock", "LockAsync"),
        ("AsyncSemaphore", "Wait", "WaitAsync"),
        ("AsyncManualResetEvent", "Wait", "WaitAsync"),
        ("WaitGroup", "Wait", "WaitAsync"),
        ("AsyncBarrier", "SignalAndWait", "SignalAndWaitAsync"),
    ];

    /// <summary>The awaitable twin of <paramref name="method"/> if it is one of the library's blocking forms.</summary>
    public static string? TwinOf(IMethodSymbol method, KnownSymbols known)
    {
        if (method.IsStatic || !known.IsLibraryType(method.ContainingType))
        {
            return null;
        }

        foreach ((string type, string blocking, string twin) in All)
        {
            if (method.Name == blocking && known.IsLibraryType(method.ContainingType, type))
            {
                return twin;
            }
        }

        return null;
    }
}
