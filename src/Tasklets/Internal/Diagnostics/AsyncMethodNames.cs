using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;

namespace Tasklets.Internal;

/// <summary>
/// Names the async methods a suspended tasklet is in, for <see cref="Scheduler.Dump"/>: from the state machine box
/// that awaits a wait (the state the runtime passes with its async-method continuation) to the user's method, and on
/// through the methods that await it.
/// </summary>
/// <remarks>
/// <para>The runtime boxes a suspended async method in a generic box over the compiler's state machine type
/// (<c>AsyncTaskMethodBuilder&lt;T&gt;.AsyncStateMachineBox&lt;TStateMachine&gt;</c>, a debugger-tracked subclass
/// of it, or a pooling builder's box); the state machine is a struct in Release builds and a class in Debug builds,
/// the box is the same generic either way. The state machine's type name encodes the method:
/// <c>&lt;Worker&gt;d__3</c> nested in the declaring type, <c>&lt;&lt;Main&gt;b__0_0&gt;d</c> nested in a closure class for a
/// lambda in <c>Main</c>, <c>&lt;&lt;Main&gt;g__Local|0_0&gt;d</c> for a local function.</para>
/// <para>The awaiting methods are found through the box's completion: a box that is a <see cref="Task"/> keeps its
/// continuation in a private field (inside a tasklet, an await registers a context continuation whose action's
/// target is the awaiting method's box). That is a private detail of the runtime, read by reflection: if it changes,
/// the chain stops at the innermost method and nothing fails.</para>
/// <para>Cold: reflection runs only when someone asks for a dump, never on a hot path. Per-type results are cached.
/// Thread-safety: any thread. The objects read may be changing under the reader (a dump from another thread while
/// the scheduler runs): every read is of one reference, the walk is bounded, and callers catch what a torn read could
/// still throw.</para>
/// </remarks>
internal static class AsyncMethodNames
{
    /// <summary>At most this many methods are named per tasklet: a deeper chain ends with "...".</summary>
    public const int MaxDepth = 16;

    private const BindingFlags InstanceFields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

    // The readable name of a box or state machine type; null for a type that is not one, or one of the library's own
    // async methods (they are plumbing, not where the user's code is).
    private static readonly ConcurrentDictionary<Type, string?> s_names = new();

    // Task.m_continuationObject, the private field that holds a task's continuation (null if the runtime has none).
    private static readonly FieldInfo? s_taskContinuation = typeof(Task).GetField("m_continuationObject", InstanceFields);

    private static readonly Assembly s_library = typeof(AsyncMethodNames).Assembly;

    /// <summary>
    /// "Worker &lt;- Program.Main (lambda)": the async methods suspended from <paramref name="awaiter"/> (a state
    /// machine box, as stored by a waiter) outwards, innermost first; null when none can be named.
    /// </summary>
    public static string? Describe(object? awaiter)
    {
        StringBuilder? text = null;
        object? current = awaiter;
        for (int depth = 0; current is not null; depth++)
        {
            if (depth == MaxDepth)
            {
                text?.Append(" <- ...");
                break;
            }

            Type? stateMachine = StateMachineOf(current.GetType());
            if (stateMachine is null)
            {
                break;
            }

            if (NameOf(stateMachine) is { } name)
            {
                text ??= new StringBuilder();
                if (text.Length > 0)
                {
                    text.Append(" <- ");
                }

                text.Append(name);
            }

            current = AwaitingBox(current);
        }

        return text?.ToString();
    }

    /// <summary>The compiler's state machine type that <paramref name="box"/> runs, or null if it is not a box.</summary>
    internal static Type? StateMachineOf(Type box)
    {
        for (Type? type = box; type is not null && type != typeof(object); type = type.BaseType)
        {
            if (!type.IsGenericType)
            {
                continue;
            }

            foreach (Type argument in type.GetGenericArguments())
            {
                if (typeof(IAsyncStateMachine).IsAssignableFrom(argument))
                {
                    return argument;
                }
            }
        }

        // A state machine class awaited directly (not through a box): the type itself.
        return typeof(IAsyncStateMachine).IsAssignableFrom(box) ? box : null;
    }

    /// <summary>"Program.Worker", "Program.Main (lambda)", "Program.Main.Local (local function)"; null for the library's own methods.</summary>
    internal static string? NameOf(Type stateMachine) => s_names.GetOrAdd(stateMachine, static t => t.Assembly == s_library ? null : Readable(t));

    private static string Readable(Type stateMachine)
    {
        // The declaring type, past the compiler's closure classes (<>c, <>c__DisplayClass0_0).
        Type? declaring = stateMachine.DeclaringType;
        while (declaring is not null && declaring.Name.StartsWith('<'))
        {
            declaring = declaring.DeclaringType;
        }

        string method = MethodName(stateMachine.Name);
        return declaring is null ? method : TypeName(declaring) + "." + method;
    }

    // "<Worker>d__3" -> "Worker"; "<<Main>b__0_0>d" -> "Main (lambda)"; "<<Main>g__Local|0_0>d" -> "Main.Local (local
    // function)"; "<<<Main>$>b__0_0>d" (top-level statements) -> "Main (lambda)". Anything else stays as it is.
    private static string MethodName(string stateMachineName)
    {
        if (Enclosed(stateMachineName) is not { } inner)
        {
            return stateMachineName;
        }

        if (!inner.StartsWith('<') || Enclosed(inner) is not { } outer)
        {
            return inner; // a named async method
        }

        string suffix = inner[(outer.Length + 2)..];
        if (outer == "<Main>$")
        {
            outer = "Main"; // the compiler's name for top-level statements
        }

        if (suffix.StartsWith("b__", StringComparison.Ordinal))
        {
            return outer + " (lambda)";
        }

        if (suffix.StartsWith("g__", StringComparison.Ordinal))
        {
            int end = suffix.IndexOf('|', StringComparison.Ordinal);
            return outer + "." + (end > 3 ? suffix[3..end] : suffix[3..]) + " (local function)";
        }

        return inner;
    }

    // The text inside the '<' that starts name and its matching '>', or null.
    private static string? Enclosed(string name)
    {
        if (!name.StartsWith('<'))
        {
            return null;
        }

        int depth = 0;
        for (int i = 0; i < name.Length; i++)
        {
            if (name[i] == '<')
            {
                depth++;
            }
            else if (name[i] == '>' && --depth == 0)
            {
                return name[1..i];
            }
        }

        return null;
    }

    // "Outer.Inner", without namespace and generic arity.
    private static string TypeName(Type type)
    {
        string name = type.Name;
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick > 0)
        {
            name = name[..tick];
        }

        return type.DeclaringType is { } outer ? TypeName(outer) + "." + name : name;
    }

    /// <summary>The box of the async method that awaits <paramref name="box"/>'s completion, or null.</summary>
    private static object? AwaitingBox(object box)
    {
        object? continuation = box switch
        {
            Task task => s_taskContinuation?.GetValue(task),
            _ => PooledContinuationState(box),
        };

        return Resolve(continuation, hops: 0);
    }

    // What a continuation object stands for: a box itself, a delegate whose target is the box (MoveNextAction), an
    // await continuation whose action is that delegate, or a list of continuations (the first box among them).
    private static object? Resolve(object? continuation, int hops)
    {
        if (continuation is null || hops > 3)
        {
            return null;
        }

        if (StateMachineOf(continuation.GetType()) is not null)
        {
            return continuation;
        }

        switch (continuation)
        {
            case Delegate callback:
                return Resolve(callback.Target, hops + 1);
            case System.Collections.IList list:
                for (int i = 0; i < list.Count && i < 8; i++)
                {
                    if (Resolve(list[i], hops + 1) is { } box)
                    {
                        return box;
                    }
                }

                return null;
            default:
                // AwaitTaskContinuation and its context-bound subclasses keep the continuation in m_action.
                FieldInfo? action = FieldIn(continuation.GetType(), "m_action");
                return action is null ? null : Resolve(action.GetValue(continuation), hops + 1);
        }
    }

    // A pooling builder's box (not a Task) completes through its ManualResetValueTaskSourceCore, whose continuation
    // state is the awaiting method's box.
    private static object? PooledContinuationState(object box)
    {
        FieldInfo? source = FieldIn(box.GetType(), "_valueTaskSource");
        object? core = source?.GetValue(box);
        return core is null ? null : FieldIn(core.GetType(), "_continuationState")?.GetValue(core);
    }

    // Diagnostics only, never on a path that must work: when trimming or NativeAOT removed the field, GetField returns
    // null and Dump leaves the method names out of that line.
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Dump's method names are best-effort: a trimmed field leaves them out.")]
    [System.Diagnostics.CodeAnalysis.UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Dump's method names are best-effort: a trimmed field leaves them out.")]
    private static FieldInfo? FieldIn(Type type, string name)
    {
        for (Type? t = type; t is not null; t = t.BaseType)
        {
            if (t.GetField(name, InstanceFields | BindingFlags.DeclaredOnly) is { } field)
            {
                return field;
            }
        }

        return null;
    }
}
