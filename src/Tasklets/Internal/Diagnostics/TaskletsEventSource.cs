using System.Diagnostics.Tracing;

namespace Tasklets.Internal;

/// <summary>
/// The <c>Tasklets</c> EventSource: deadlocks, failures nobody observed and stalls as events, and a command that
/// writes <see cref="Scheduler.DumpAll"/>, so that a hung process explains itself to dotnet-trace, PerfView, an
/// in-process <see cref="EventListener"/> or any EventPipe/ETW session (docs/diagnostics.md has the command lines).
/// </summary>
/// <remarks>
/// <para><b>The command.</b> A session that enables the source with the argument <c>Command=DumpAll</c> (dotnet-trace's
/// <c>--providers Tasklets:0:4:Command=DumpAll</c>; EventPipe and ETW deliver provider arguments as the
/// <see cref="EventCommandEventArgs.Arguments"/> of the enable command), or sends any command with that argument
/// (<see cref="EventSource.SendCommand"/>), gets <see cref="Dump"/> events whose text is <c>Scheduler.DumpAll()</c>.
/// Key and value are matched ignoring case. The dump is taken on the thread that delivers the command.</para>
/// <para><b>Sizes.</b> EventPipe and ETW drop events larger than about 64 KB, so the dump is split into parts of at
/// most <see cref="MaxTextChars"/> characters at line ends (numbered 1..parts), and the long texts of the other
/// events are cut at that size with a note.</para>
/// <para><b>Cost.</b> Nothing when no session is enabled: each writer checks <see cref="EventSource.IsEnabled()"/>
/// first, and none is on a per-step path (a deadlock, a failure nobody observed, a stall).</para>
/// </remarks>
[EventSource(Name = SourceName)]
internal sealed class TaskletsEventSource : EventSource
{
    /// <summary>The source's name, the provider name for tools.</summary>
    public const string SourceName = "Tasklets";

    /// <summary>The argument key that carries a command.</summary>
    public const string CommandKey = "Command";

    /// <summary>The command value that asks for <see cref="Scheduler.DumpAll"/>.</summary>
    public const string DumpAllCommand = "DumpAll";

    /// <summary>The longest text one event carries (UTF-16: 32 KB, well inside the transports' 64 KB).</summary>
    public const int MaxTextChars = 16 * 1024;

    /// <summary>Event ids; stable, part of the documented contract.</summary>
    public const int DeadlockEventId = 1;

    /// <inheritdoc cref="DeadlockEventId"/>
    public const int UnobservedFailureEventId = 2;

    /// <inheritdoc cref="DeadlockEventId"/>
    public const int StallEventId = 3;

    /// <inheritdoc cref="DeadlockEventId"/>
    public const int DumpEventId = 4;

    /// <summary>The one instance; created when the first scheduler enters a Run method, so that sessions can find it.</summary>
    public static readonly TaskletsEventSource Log = new();

    // Self-describing (TraceLogging) format: with the manifest format, events of payload shapes that WriteEvent has no
    // typed overload for go through a path that checks the session's keywords against the descriptor's reserved
    // session bits, so EventPipe drops them for a session that names keywords 0 (the usual "Tasklets:0:4" of
    // dotnet-trace); self-describing events reach it whatever the keywords (checked with dotnet-trace 10 on .NET 10,
    // and by EventPipeSessionTests).
    private TaskletsEventSource()
        : base(EventSourceSettings.EtwSelfDescribingEventFormat)
    {
    }

    // ---------------------------------------------------------------- events (primitive payloads, as the transports carry them)

    /// <summary>A deadlock was detected on scheduler <paramref name="scheduler"/>; <paramref name="message"/> is the DeadlockException's.</summary>
    [Event(DeadlockEventId, Level = EventLevel.Error, Message = "Deadlock on scheduler {0}: {1}")]
    internal void Deadlock(long scheduler, string message) => WriteEvent(DeadlockEventId, scheduler, message);

    /// <summary>A tasklet died failed while nobody joined it (the OnUnobservedFailure notification, written whether or not a callback is set).</summary>
    [Event(UnobservedFailureEventId, Level = EventLevel.Error, Message = "Tasklet {1} '{2}' of scheduler {0} failed and nobody observed it: {3}")]
    internal void UnobservedFailure(long scheduler, long tasklet, string name, string exception)
        => WriteEvent(UnobservedFailureEventId, scheduler, tasklet, name, exception);

    /// <summary>A scheduler stalled (DESIGN "Stalls"): for <paramref name="stalledForMilliseconds"/>, by one long step or not, with its dump.</summary>
    [Event(StallEventId, Level = EventLevel.Warning, Message = "Scheduler {0} stalled for {1} ms (long step: {2})")]
    internal void Stall(long scheduler, double stalledForMilliseconds, bool longStep, string dump)
        => WriteEvent(StallEventId, scheduler, stalledForMilliseconds, longStep, dump);

    /// <summary>Part <paramref name="part"/> of <paramref name="parts"/> of <see cref="Scheduler.DumpAll"/>, written on the DumpAll command.</summary>
    [Event(DumpEventId, Level = EventLevel.Informational, Message = "Scheduler.DumpAll() part {0} of {1}")]
    internal void Dump(int part, int parts, string text) => WriteEvent(DumpEventId, part, parts, text);

    // ---------------------------------------------------------------- writers for the library (cheap when disabled)

    /// <summary>Writes <see cref="Deadlock(long, string)"/> if a session listens. Scheduler thread.</summary>
    [NonEvent]
    public void Deadlock(Scheduler scheduler, string message)
    {
        if (IsEnabled())
        {
            Deadlock(scheduler.Id, Cut(message));
        }
    }

    /// <summary>Writes <see cref="UnobservedFailure(long, long, string, string)"/> if a session listens. Scheduler thread.</summary>
    [NonEvent]
    public void UnobservedFailure(Scheduler scheduler, Tasklet tasklet, Exception exception)
    {
        if (IsEnabled())
        {
            UnobservedFailure(scheduler.Id, tasklet.Id, tasklet.Name, Cut(exception.ToString()));
        }
    }

    /// <summary>
    /// Writes <see cref="Stall(long, double, bool, string)"/> if a session listens: for the stall monitor, once per
    /// stall, next to <see cref="TaskletsMetrics.Stall"/> and the <c>Stalled</c> event. Any thread.
    /// </summary>
    [NonEvent]
    public void Stall(Scheduler scheduler, TimeSpan stalledFor, bool longStep, string dump)
    {
        if (IsEnabled())
        {
            Stall(scheduler.Id, stalledFor.TotalMilliseconds, longStep, Cut(dump));
        }
    }

    /// <summary>Writes <see cref="Scheduler.DumpAll"/> as <see cref="Dump(int, int, string)"/> events, in parts.</summary>
    [NonEvent]
    public void WriteDumpAll()
    {
        if (!IsEnabled())
        {
            return;
        }

        List<string> parts = Split(Scheduler.DumpAll(), MaxTextChars);
        for (int i = 0; i < parts.Count; i++)
        {
            Dump(i + 1, parts.Count, parts[i]);
        }
    }

    /// <summary>Runs the DumpAll command when a session's command carries it (see the remarks of the type).</summary>
    protected override void OnEventCommand(EventCommandEventArgs command)
    {
        if (command.Command != EventCommand.Disable && IsDumpAll(command.Arguments))
        {
            WriteDumpAll();
        }
    }

    /// <summary>True when <paramref name="arguments"/> hold <c>Command=DumpAll</c>, ignoring case.</summary>
    internal static bool IsDumpAll(IDictionary<string, string?>? arguments)
    {
        if (arguments is null)
        {
            return false;
        }

        foreach (KeyValuePair<string, string?> argument in arguments)
        {
            if (string.Equals(argument.Key, CommandKey, StringComparison.OrdinalIgnoreCase)
                && string.Equals(argument.Value?.Trim(), DumpAllCommand, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary><paramref name="text"/> in parts of at most <paramref name="max"/> characters, cut after a line end where there is one.</summary>
    internal static List<string> Split(string text, int max)
    {
        var parts = new List<string>();
        int start = 0;
        while (text.Length - start > max)
        {
            int cut = text.LastIndexOf('\n', start + max - 1, max);
            int end = cut >= start ? cut + 1 : start + max;
            parts.Add(text[start..end]);
            start = end;
        }

        parts.Add(text[start..]);
        return parts;
    }

    private static string Cut(string text)
        => text.Length <= MaxTextChars ? text : string.Concat(text.AsSpan(0, MaxTextChars - 64), "\n(cut: the full text is longer; send Command=DumpAll for every dump)");
}
