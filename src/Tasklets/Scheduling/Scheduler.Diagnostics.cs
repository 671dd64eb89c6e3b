using System.Diagnostics;
using System.Globalization;
using System.Text;
using Tasklets.Internal;

namespace Tasklets;

// Facet: introspection (Tasklets, Dump, wait descriptions, the process-wide registry of running schedulers behind
// Running and DumpAll) and the per-step metric.
// Relies on: the alive list is owner-thread state, exact from the owner or while no thread runs the scheduler; from
// another thread it is walked best-effort, which terminates because a tasklet is linked once (at the head) and every
// link points at a tasklet linked earlier, or is null once unlinked.
public sealed partial class Scheduler
{
    // Every scheduler whose owner is inside Run, Run(main), RunFor or RunOnce now, in registration order. Written
    // only at the entry and exit of a Run method, under its own lock: nothing per step.
    private static readonly List<Scheduler> s_running = [];
    private static long s_nextSchedulerId;

    // The thread inside a Run method while this scheduler is registered, else null. Written under lock(s_running).
    private Thread? _runThread;

    // The boxed Id, for the metrics' tasklets.scheduler tag (boxed once, so that recording a tag never allocates).
    // Written before the first registration, under lock(s_running); read by metric callbacks through the registry.
    private object? _idTag;

    // Whether steps are timed for the tasklets.step.duration histogram: the histogram's Enabled, read at the entry
    // of a Run method and with every metrics flush (64 steps), so that a step reads one owner-thread bool, and the
    // clock only while a listener wants the figure.
    private bool _recordStepDurations;

    /// <summary>
    /// A process-unique id, increasing in creation order: the header of the scheduler in <see cref="DumpAll"/>, the
    /// <c>tasklets.scheduler</c> tag of its metrics and the scheduler field of its EventSource events.
    /// </summary>
    public long Id { get; } = Interlocked.Increment(ref s_nextSchedulerId);

    /// <summary>
    /// Every scheduler inside a Run method now (<see cref="Run()"/>, <see cref="Run(Func{Task}, SchedulerOptions?)"/>,
    /// <see cref="RunFor"/>, <see cref="RunOnce"/>), in the order they entered it: for tools and <see cref="DumpAll"/>.
    /// </summary>
    /// <remarks>A snapshot, safe from any thread: a scheduler may leave its Run method at once after it was read.</remarks>
    public static Scheduler[] Running
    {
        get
        {
            lock (s_running)
            {
                return [.. s_running];
            }
        }
    }

    /// <summary>
    /// The <see cref="Dump"/> of every scheduler inside a Run method now, each under a header with its id, the thread
    /// that runs it and how many tasklets are alive and runnable. Any thread; also written by the <c>Tasklets</c>
    /// EventSource on its <c>DumpAll</c> command (docs/diagnostics.md).
    /// </summary>
    /// <returns>The dumps; "No scheduler is inside a Run method." when there is none.</returns>
    /// <remarks>
    /// A scheduler dumped from another thread while it runs is a best-effort snapshot (see <see cref="Dump"/>). Never
    /// throws for that, and never waits for a scheduler.
    /// </remarks>
    public static string DumpAll()
    {
        Scheduler[] running = Running;
        if (running.Length == 0)
        {
            return "No scheduler is inside a Run method." + Environment.NewLine;
        }

        var text = new StringBuilder();
        foreach (Scheduler scheduler in running)
        {
            scheduler.AppendHeader(text);
            foreach (string line in scheduler.Dump().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries))
            {
                text.Append("  ").AppendLine(line);
            }
        }

        return text.ToString();
    }

    // Lock-free reads of owner-maintained state from any thread: each is one aligned reference or int read (never torn);
    // together they may mix two moments of the owner (a header a step old), which a snapshot allows.
    private void AppendHeader(StringBuilder text)
    {
        text.Append("scheduler ").Append(Id.ToString(CultureInfo.InvariantCulture));
        Thread? thread = Volatile.Read(ref _runThread);
        if (thread is null)
        {
            text.Append(" (has just left its Run method)");
        }
        else
        {
            text.Append(" on thread ").Append(thread.ManagedThreadId.ToString(CultureInfo.InvariantCulture));
            if (thread.Name is { } name)
            {
                text.Append(" '").Append(name).Append('\'');
            }
        }

        text.Append(": ").Append(_aliveCount.ToString(CultureInfo.InvariantCulture)).Append(" alive, ")
            .Append(RunnableCount.ToString(CultureInfo.InvariantCulture)).Append(" runnable").AppendLine();
    }

    /// <summary>The tag value of this scheduler's metrics (its boxed <see cref="Id"/>), once it has entered a Run method.</summary>
    /// <remarks>
    /// Read without a lock: a metric callback reaches the scheduler through <see cref="Running"/>, whose lock was taken
    /// after <c>_idTag</c> was written under it, and the owner reads its own write; a reader that still sees null (a
    /// shutdown run that never registered) boxes the id, which is the same value.
    /// </remarks>
    internal object MetricTagValue => _idTag ?? Id;

    /// <summary>
    /// Blocked tasklets for the <c>tasklets.blocked</c> gauge: alive minus ready (run queue and inbox), a cross-thread
    /// snapshot of owner-maintained counts (a posted continuation or an invocation counts as a ready entry, so the
    /// figure is a lower bound while they are queued).
    /// </summary>
    /// <remarks>
    /// Lock-free from another thread: the alive count, the run queue's count, the inbox count and the running tasklet
    /// are each one aligned read that cannot tear; read at slightly different moments they may not add up, so the
    /// difference is clamped at zero. Exact on the owner thread.
    /// </remarks>
    internal int BlockedCountEstimate => Math.Max(0, _aliveCount - RunnableCount - (_running is null ? 0 : 1));

    /// <summary>At the entry of a Run method (any mode): registers it for Running/DumpAll (not a Dispose's shutdown run) and samples the step histogram's switch.</summary>
    private void EnterDiagnostics(RunMode mode)
    {
        _recordStepDurations = TaskletsMetrics.StepDurationEnabled;
        if (mode == RunMode.Shutdown)
        {
            return;
        }

        // The source exists while a scheduler runs, so that a trace session can reach it. Touched before taking
        // s_running, never under it: creating the source takes EventSource's own lock and may run a session's DumpAll
        // command, which takes s_running (the reverse order would deadlock with a command on another thread).
        _ = TaskletsEventSource.Log;
        lock (s_running)
        {
            _idTag ??= Id;
            _runThread = Thread.CurrentThread;
            s_running.Add(this);
        }
    }

    /// <summary>At the exit of a Run method: unregisters it.</summary>
    private void ExitDiagnostics(RunMode mode)
    {
        if (mode == RunMode.Shutdown)
        {
            return;
        }

        lock (s_running)
        {
            s_running.Remove(this);
            _runThread = null;
        }
    }

    /// <summary>Runs a step and records its duration on <c>tasklets.step.duration</c> (only while a listener has that histogram enabled).</summary>
    private void StepRecorded(object entry)
    {
        long start = Stopwatch.GetTimestamp();
        Step(entry);
        TaskletsMetrics.StepDuration(Stopwatch.GetElapsedTime(start), MetricTagValue);
    }

    /// <summary>
    /// The alive tasklets, in spawn order. Read it from a tasklet of this scheduler or while no thread runs it;
    /// from another thread it is a best-effort snapshot.
    /// </summary>
    public IReadOnlyCollection<Tasklet> Tasklets => SnapshotAlive(out _);

    // The alive list, sorted by id. From another thread the walk may race with the owner: it ends early at a tasklet
    // unlinked meanwhile (its link is null), misses tasklets linked meanwhile (they go to the head, behind the walk),
    // and is bounded all the same (twice the count read first, plus a margin), so that it can never run away.
    private List<Tasklet> SnapshotAlive(out bool truncated)
    {
        int count = Math.Max(0, _aliveCount);
        var list = new List<Tasklet>(Math.Min(count, 1 << 20));
        long limit = (2L * count) + 1024;
        truncated = false;
        for (Tasklet? t = _aliveHead; t is not null; t = t._nextAlive)
        {
            if (list.Count >= limit)
            {
                truncated = true;
                break;
            }

            list.Add(t);
        }

        list.Sort(static (a, b) => a.Id.CompareTo(b.Id));
        return list;
    }

    /// <summary>
    /// One line per alive tasklet: id, name, state; for a blocked tasklet what it waits on, for how long, and the
    /// async methods it is suspended in (innermost first, each <c>&lt;-</c> the method that awaits it).
    /// </summary>
    /// <returns>The dump, for logs and the debugger.</returns>
    /// <remarks>
    /// Exact from a tasklet of this scheduler or while no thread runs it. From another thread while it runs, a
    /// best-effort snapshot: a line may show a wait that has just ended or begun, the walk over the tasklets is bounded,
    /// and a line that cannot be read (the tasklet changed under the reader) says so instead of throwing.
    /// </remarks>
    public string Dump()
    {
        var text = new StringBuilder();
        long now = Stopwatch.GetTimestamp();
        List<Tasklet> tasklets = SnapshotAlive(out bool truncated);
        foreach (Tasklet t in tasklets)
        {
            int lineStart = text.Length;
            try
            {
                AppendLine(text, t, now);
            }
            catch (Exception e)
            {
                // A cross-thread read met a wait that changed under it (owner-thread reads cannot get here).
                text.Length = lineStart;
                text.Append(t.Id.ToString(CultureInfo.InvariantCulture)).Append(" (changed while read: ").Append(e.GetType().Name).Append(')');
            }

            text.AppendLine();
        }

        if (truncated)
        {
            text.Append("(the list changed while read: ").Append(tasklets.Count.ToString(CultureInfo.InvariantCulture)).AppendLine(" tasklets shown)");
        }

        return text.ToString();
    }

    private void AppendLine(StringBuilder text, Tasklet t, long now)
    {
        TaskletState state = t.State;
        text.Append(t.Id.ToString(CultureInfo.InvariantCulture)).Append(" '").Append(t.Name).Append("' ").Append(state);
        if (state != TaskletState.Blocked)
        {
            return;
        }

        text.Append(": ").Append(DescribeWait(t));
        long start = t._waiter.WaitStart;
        if (t._waiter.IsParked && start != 0)
        {
            TimeSpan waited = Stopwatch.GetElapsedTime(start, Math.Max(start, now));
            text.Append(" for ").Append(waited.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)).Append(" ms");
        }

        text.Append(DescribeOutsideUse(t)); // Scheduler.Stalls.cs: "; nothing outside has used it"
        if (AsyncMethodNames.Describe(AwaiterOf(t)) is { } methods)
        {
            text.Append("; in ").Append(methods);
        }
    }

    // The box of the async method that awaits the tasklet's parked wait (its own waiter, or an external one); null
    // for a foreign await, whose continuation is held by the foreign awaitable.
    private static object? AwaiterOf(Tasklet tasklet)
    {
        if (tasklet._waiter.IsParked)
        {
            return tasklet._waiter.AwaiterForDebugger;
        }

        return (tasklet.ParkedExternalWait() as ExternalWaiter)?.AwaiterForDebugger;
    }

    /// <summary>What <paramref name="tasklet"/> waits on, in words.</summary>
    internal static string DescribeWait(Tasklet tasklet)
    {
        Waiter waiter = tasklet._waiter;
        if (!waiter.IsParked)
        {
            // A wait on an external waiter (the own one was busy, or a group waits for its children) says what it is.
            if (tasklet.ParkedExternalWait() is not { } external)
            {
                return tasklet._inForeignWait ? "a foreign awaitable (I/O, Task)" : "nothing (runnable)";
            }

            waiter = external;
        }

        // Read once: from another thread (Dump while the scheduler runs) the wait may change under us. Every read
        // below tolerates that: it may describe a neighbouring wait, never throw.
        WaitKind kind = waiter.WaitKind;
        int count = waiter.RegistrationCount;
        switch (kind)
        {
            case WaitKind.Sleep:
                return "sleep";
            case WaitKind.Yield:
                return "yield";
            case WaitKind.Select:
                // In case order: a select registers its cases from a random start.
                var cases = new List<(int Index, string Text)>(count);
                for (int i = 0; i < count; i++)
                {
                    if (waiter.RegistrationAt(i) is { } c)
                    {
                        cases.Add((c._caseIndex, c.DescribeWait()));
                    }
                }

                cases.Sort(static (a, b) => a.Index.CompareTo(b.Index));
                var text = new StringBuilder();
                text.Append("select over ").Append(count).Append(" case(s):");
                foreach ((_, string description) in cases)
                {
                    text.Append(' ').Append(description).Append(';');
                }

                return text.ToString().TrimEnd(';');
            default:
                // A send, a receive, a join: the source of its one registration says what it is.
                return count > 0 && waiter.RegistrationAt(0) is { } node ? node.DescribeWait() : "a library wait";
        }
    }
}
