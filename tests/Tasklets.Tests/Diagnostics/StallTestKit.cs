using System.Diagnostics;
using Tasklets.Internal;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

/// <summary>
/// Helpers of the stall tests: a Run() on a thread of its own with a hang guard, a recorder of Stalled events, and a
/// wait for the stall monitor's observation time (a state, not a sleep) that proves a stall would have been reported.
/// </summary>
internal static class StallTestKit
{
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    /// <summary>The threshold the tests use: small, and never asserted on as a duration.</summary>
    public static readonly TimeSpan StallTimeout = TimeSpan.FromMilliseconds(100);

    public static SchedulerOptions Options(int? seed = null) => new() { StallTimeout = StallTimeout, Seed = seed };

    /// <summary>Runs <paramref name="run"/> on a background thread; <see cref="Runner.Join"/> returns what it threw.</summary>
    public static Runner Start(Action run) => new(run);

    /// <summary>Polls <paramref name="condition"/> (a state to reach) until it holds; fails after the guard.</summary>
    public static void WaitUntil(Func<bool> condition, string what)
    {
        var spinner = default(SpinWait);
        var guard = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(guard.Elapsed < Guard, "hang guard: " + what);
            spinner.SpinOnce(sleep1Threshold: 10); // soon sleeps between polls: the machine is shared
        }
    }

    /// <summary>
    /// Waits until the stall monitor has observed <paramref name="timeouts"/> stall timeouts more: any stall window
    /// open all that time would have been reported by then (and its handler run).
    /// </summary>
    public static void WaitForMonitor(int timeouts = 6)
    {
        long from = StallMonitor.ObservedTicks;
        long needed = (long)(StallTimeout.TotalSeconds * Stopwatch.Frequency) * timeouts;
        WaitUntil(() => StallMonitor.ObservedTicks - from >= needed, "the stall monitor's checks");
    }

    /// <summary>Accepts the reports that are not long steps.</summary>
    public static bool NotLongStep(SchedulerStalledEventArgs e) => !e.LongStep;

    /// <summary>Accepts the long steps of the tasklet named <paramref name="name"/>.</summary>
    public static Func<SchedulerStalledEventArgs, bool> LongStepOf(string name)
        => e => e.LongStep && e.Dump.Split('\n')[0].Contains($"'{name}'", StringComparison.Ordinal);

    public sealed class Runner
    {
        private readonly Thread _thread;
        private Exception? _failure;

        public Runner(Action run)
        {
            _thread = new Thread(() => _failure = Record.Exception(run)) { IsBackground = true };
            _thread.Start();
        }

        public Exception? Join()
        {
            Assert.True(_thread.Join(Guard), "hang guard: Run() did not return");
            return _failure;
        }
    }

    /// <summary>
    /// Records the Stalled events of one scheduler that <paramref name="filter"/> accepts (all if null). A test about
    /// one kind of stall filters out long steps it did not make: on this shared 2-core machine the first steps of a
    /// fresh test process (the JIT) or a thread the OS keeps off its core may hold the scheduler for the small
    /// timeout, and that is rightly reported as a long step.
    /// </summary>
    public sealed class StallRecorder
    {
        private readonly List<SchedulerStalledEventArgs> _events = [];

        public StallRecorder(Scheduler scheduler, Func<SchedulerStalledEventArgs, bool>? filter = null)
        {
            scheduler.Stalled += (sender, e) =>
            {
                Assert.Same(scheduler, sender);
                if (filter is not null && !filter(e))
                {
                    return;
                }

                lock (_events)
                {
                    _events.Add(e);
                    Monitor.PulseAll(_events);
                }
            };
        }

        public int Count
        {
            get
            {
                lock (_events)
                {
                    return _events.Count;
                }
            }
        }

        /// <summary>Waits for the first report that <paramref name="match"/> accepts and returns it.</summary>
        public SchedulerStalledEventArgs WaitFor(Func<SchedulerStalledEventArgs, bool> match)
        {
            var guard = Stopwatch.StartNew();
            lock (_events)
            {
                while (true)
                {
                    foreach (SchedulerStalledEventArgs e in _events)
                    {
                        if (match(e))
                        {
                            return e;
                        }
                    }

                    TimeSpan left = Guard - guard.Elapsed;
                    Assert.True(left > TimeSpan.Zero, "hang guard: the stall report never came; got: " + string.Join(" | ", _events.Select(e => e.Dump)));
                    Monitor.Wait(_events, left);
                }
            }
        }

        /// <summary>Waits for the <paramref name="n"/>th report and returns it.</summary>
        public SchedulerStalledEventArgs WaitFor(int n = 1)
        {
            var guard = Stopwatch.StartNew();
            lock (_events)
            {
                while (_events.Count < n)
                {
                    TimeSpan left = Guard - guard.Elapsed;
                    Assert.True(left > TimeSpan.Zero, $"hang guard: stall report {n} never came");
                    Monitor.Wait(_events, left);
                }

                return _events[n - 1];
            }
        }
    }
}
