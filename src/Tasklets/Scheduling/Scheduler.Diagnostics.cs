using System.Diagnostics;
using System.Globalization;
using System.Text;
using Tasklets.Internal;

namespace Tasklets;

// Facet: introspection (Tasklets, Dump, wait descriptions).
// Relies on: the alive list is owner-thread state; read it from the owner, or while no thread runs the scheduler.
public sealed partial class Scheduler
{
    /// <summary>
    /// The alive tasklets, in spawn order. Read it from a tasklet of this scheduler or while no thread runs it;
    /// from another thread it is a best-effort snapshot.
    /// </summary>
    public IReadOnlyCollection<Tasklet> Tasklets
    {
        get
        {
            var list = new List<Tasklet>(_aliveCount);
            for (Tasklet? t = _aliveHead; t is not null; t = t._nextAlive)
            {
                list.Add(t);
            }

            list.Sort(static (a, b) => a.Id.CompareTo(b.Id));
            return list;
        }
    }

    /// <summary>One line per alive tasklet: id, name, state, what it waits on, and for how long.</summary>
    /// <returns>The dump, for logs and the debugger.</returns>
    public string Dump()
    {
        var text = new StringBuilder();
        long now = Stopwatch.GetTimestamp();
        foreach (Tasklet t in Tasklets)
        {
            TaskletState state = t.State;
            text.Append(t.Id.ToString(CultureInfo.InvariantCulture)).Append(" '").Append(t.Name).Append("' ").Append(state);
            if (state == TaskletState.Blocked)
            {
                text.Append(": ").Append(DescribeWait(t));
                long start = t._waiter.WaitStart;
                if (t._waiter.IsParked && start != 0)
                {
                    TimeSpan waited = Stopwatch.GetElapsedTime(start, Math.Max(start, now));
                    text.Append(" for ").Append(waited.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)).Append(" ms");
                }

                text.Append(DescribeOutsideUse(t)); // Scheduler.Stalls.cs: "; nothing outside has used it"
            }

            text.AppendLine();
        }

        return text.ToString();
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
