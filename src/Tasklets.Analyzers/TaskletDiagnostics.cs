using System.Collections.Immutable;
using Microsoft.CodeAnalysis;

namespace Tasklets.Analyzers;

/// <summary>
/// The rules of the Tasklets analyzers: one descriptor per rule id, each linking to its section of docs/analyzers.md
/// (the repository named once, in Directory.Build.props; see RepositoryInfo in this project's build).
/// </summary>
/// <remarks>
/// Ids are never reused or renumbered: a rule that is withdrawn keeps its number (AnalyzerReleases.*.md track them).
/// Messages are one sentence without a trailing period (RS1032), and say what to write instead.
/// </remarks>
internal static class TaskletDiagnostics
{
    /// <summary>ConfigureAwait(false) in a tasklet body.</summary>
    public const string ConfigureAwaitId = "TASKLET001";

    /// <summary>A blocking call in a tasklet body.</summary>
    public const string BlockingCallId = "TASKLET002";

    /// <summary>A library ValueTask stored in a field or property.</summary>
    public const string StoredValueTaskId = "TASKLET003";

    /// <summary>A local holding a library ValueTask consumed more than once.</summary>
    public const string ValueTaskConsumedTwiceId = "TASKLET004";

    /// <summary>The key of <see cref="Diagnostic.Properties"/> that tells a code fix what to do; absent: no fix.</summary>
    public const string FixKey = "Fix";

    /// <summary>The key of the async twin's name (a <see cref="FixKinds.AwaitTwin"/> fix).</summary>
    public const string TwinKey = "Twin";

    private const string Reliability = "Reliability";
    private const string Usage = "Usage";

    /// <summary>TASKLET001's second argument for a body on the standard builder (an async Task lambda or method).</summary>
    public const string ConfigureAwaitLeaves = "moves the rest of this tasklet body off its scheduler: after the await it runs on a thread-pool thread, in parallel with the scheduler's other tasklets";

    /// <summary>TASKLET001's second argument for a body on the library's builder (a lambda bound to Func&lt;TaskletTask&gt;).</summary>
    public const string ConfigureAwaitCostsAPost = "does nothing useful in this tasklet body: the library's builder brings the body back to its scheduler anyway, one post later (in an async Task method it awaits, the same call would leave the scheduler)";

    public static readonly DiagnosticDescriptor ConfigureAwait = new(
        ConfigureAwaitId,
        title: "Do not use ConfigureAwait(false) in a tasklet body",
        messageFormat: "'{0}' {1}; await without ConfigureAwait",
        Reliability,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "A tasklet's continuations run on its scheduler because the scheduler installs a SynchronizationContext. ConfigureAwait(false) (or ConfigureAwaitOptions without ContinueOnCapturedContext) ignores that context, so in an async Task method the code after the await leaves the scheduler: it runs on the thread pool, no longer one tasklet at a time, and the cooperative guarantee is gone. An async lambda given to Go runs on the library's builder, which brings it back to its scheduler; there the call only costs a post.",
        helpLinkUri: HelpLink(ConfigureAwaitId));

    public static readonly DiagnosticDescriptor BlockingCall = new(
        BlockingCallId,
        title: "Do not block inside a tasklet body",
        messageFormat: "{0} blocks the scheduler's thread and so stops every tasklet of that scheduler; use {1}",
        Reliability,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "A scheduler runs its tasklets one at a time on one thread. A call that blocks that thread (Task.Wait, Task.Result, GetAwaiter().GetResult(), Thread.Sleep, or the Tasklets blocking forms meant for OS threads: Channel<T>.Send and Receive, AsyncLock.Lock, AsyncSemaphore.Wait, ...) stops every tasklet of the scheduler, and waiting for another tasklet of it this way never ends. Await the asynchronous form instead.",
        helpLinkUri: HelpLink(BlockingCallId));

    public static readonly DiagnosticDescriptor StoredValueTask = new(
        StoredValueTaskId,
        title: "Do not store a Tasklets ValueTask in a field or property",
        messageFormat: "The ValueTask from '{0}' is stored in '{1}'; await it where it is created, or store its AsTask() if other code must await it",
        Usage,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "A ValueTask returned by a Tasklets operation is backed by the calling tasklet's reusable waiter: it may be awaited once, and only inside the tasklet that started it. A field or property hands it to code that may await it later, twice, or from another tasklet or thread, which throws InvalidOperationException. AsTask() gives a Task that any code may await any number of times.",
        helpLinkUri: HelpLink(StoredValueTaskId));

    public static readonly DiagnosticDescriptor ValueTaskConsumedTwice = new(
        ValueTaskConsumedTwiceId,
        title: "Do not consume a Tasklets ValueTask more than once",
        messageFormat: "'{0}' holds a ValueTask from a Tasklets operation that may already have been awaited or converted on this path; keep the result of the first await, or call AsTask() once and use that Task",
        Usage,
        DiagnosticSeverity.Warning,
        isEnabledByDefault: true,
        description: "A ValueTask may be consumed (awaited, AsTask(), GetAwaiter(), Result, Preserve()) only once. The Tasklets waiter behind it is reused by the tasklet's next operation, so a second await throws InvalidOperationException, or, after an unrelated operation reused the waiter, would observe that operation.",
        helpLinkUri: HelpLink(ValueTaskConsumedTwiceId));

    /// <summary>Every rule, for the analyzers' SupportedDiagnostics and the tests.</summary>
    public static ImmutableArray<DiagnosticDescriptor> All { get; } =
        ImmutableArray.Create(ConfigureAwait, BlockingCall, StoredValueTask, ValueTaskConsumedTwice);

    /// <summary>The rule's section of docs/analyzers.md: headings are the bare ids, so the anchor is the id in lower case.</summary>
    internal static string HelpLink(string id)
        => RepositoryInfo.Url + "/blob/main/docs/analyzers.md#" + id.ToLowerInvariant();
}

/// <summary>What a code fix may do with a diagnostic (the <see cref="TaskletDiagnostics.FixKey"/> property).</summary>
internal static class FixKinds
{
    /// <summary>TASKLET001: remove the ConfigureAwait call, keeping its receiver.</summary>
    public const string RemoveConfigureAwait = "RemoveConfigureAwait";

    /// <summary>TASKLET001 with ConfigureAwaitOptions: add ContinueOnCapturedContext to the options.</summary>
    public const string AddContinueOnCapturedContext = "AddContinueOnCapturedContext";

    /// <summary>TASKLET002: await the task instead (t.Wait(), t.Result, t.GetAwaiter().GetResult()).</summary>
    public const string AwaitReceiver = "AwaitReceiver";

    /// <summary>TASKLET002: await the library's async twin with the same arguments (ch.Send(x) to await ch.SendAsync(x)).</summary>
    public const string AwaitTwin = "AwaitTwin";

    /// <summary>TASKLET002: Thread.Sleep(TimeSpan) to await Tasklet.Sleep(TimeSpan).</summary>
    public const string TaskletSleep = "TaskletSleep";

    /// <summary>TASKLET002: Thread.Sleep(int milliseconds) to await Tasklet.Sleep(TimeSpan.FromMilliseconds(...)).</summary>
    public const string TaskletSleepMilliseconds = "TaskletSleepMilliseconds";
}
