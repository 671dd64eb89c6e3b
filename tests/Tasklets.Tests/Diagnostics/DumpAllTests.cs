using System.Diagnostics;
using System.Text.RegularExpressions;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

// Issue 15: nothing outside a hung process could ask for the Dump. Scheduler.Running lists the schedulers inside a Run
// method, DumpAll dumps each. Other tests' schedulers may be running meanwhile: assertions look for this test's own.
public class DumpAllTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    /// <summary>A scheduler inside Run() on a thread of its own, with one tasklet parked on a channel created outside it (so Run idles, no deadlock).</summary>
    private sealed class Parked : IDisposable
    {
        private readonly Channel<int> _gate;
        private readonly Thread _thread;
        private Exception? _failure;

        public Parked(string threadName, string taskletName)
        {
            _gate = new Channel<int> { Name = taskletName + "-gate" };
            Scheduler = new Scheduler();
            Tasklet = Scheduler.Go(async () => await _gate.ReceiveAsync(), taskletName);
            _thread = new Thread(() => _failure = Record.Exception(Scheduler.Run)) { IsBackground = true, Name = threadName };
            _thread.Start();
        }

        public Scheduler Scheduler { get; }

        public Tasklet Tasklet { get; }

        public Thread Thread => _thread;

        /// <summary>Until the tasklet is parked inside Run (a state to reach, not a time to wait).</summary>
        public void WaitUntilParked() => SpinUntil(() => Tasklet.State == TaskletState.Blocked && Scheduler.Running.Contains(Scheduler));

        public void Dispose()
        {
            _gate.Send(1); // an OS thread's blocking send: the tasklet takes it and ends, Run returns
            Assert.True(_thread.Join(s_guard), "hang guard: Run() did not return");
            Assert.Null(_failure);
            Scheduler.Dispose();
        }
    }

    private static void SpinUntil(Func<bool> condition)
    {
        var guard = Stopwatch.StartNew();
        var spinner = default(SpinWait);
        while (!condition())
        {
            Assert.True(guard.Elapsed < s_guard, "hang guard: the state was never reached");
            spinner.SpinOnce();
        }
    }

    [Fact]
    public void Running_ListsASchedulerExactlyWhileItsOwnerIsInsideRun()
    {
        var parked = new Parked("diag-running", "parked");
        Assert.DoesNotContain(new Scheduler(), Scheduler.Running);
        parked.WaitUntilParked();
        Assert.Contains(parked.Scheduler, Scheduler.Running);
        parked.Dispose();
        Assert.DoesNotContain(parked.Scheduler, Scheduler.Running);
    }

    [Fact]
    public void Running_IncludesRunOnceRunForAndRunMain_FromInsideTheirSteps()
    {
        using var s = new Scheduler();
        var seen = new List<bool>();
        s.Go(() =>
        {
            seen.Add(Scheduler.Running.Contains(s));
            return Task.CompletedTask;
        });
        s.RunOnce();
        s.Go(() =>
        {
            seen.Add(Scheduler.Running.Contains(s));
            return Task.CompletedTask;
        });
        s.RunFor(TimeSpan.FromSeconds(10));
        Scheduler.Run(() =>
        {
            seen.Add(Scheduler.Running.Contains(Scheduler.Current!));
            return Task.CompletedTask;
        });

        Assert.Equal([true, true, true], seen);
        Assert.DoesNotContain(s, Scheduler.Running);
    }

    [Fact]
    public void DumpAll_TwoRunningSchedulers_GivesEachAHeaderAndItsDump()
    {
        var a = new Parked("diag-thread-a", "alpha");
        var b = new Parked("diag-thread-b", "beta");
        a.WaitUntilParked();
        b.WaitUntilParked();

        string all = Scheduler.DumpAll().ReplaceLineEndings("\n");
        foreach ((Parked p, string name) in new[] { (a, "alpha"), (b, "beta") })
        {
            string header = $"scheduler {p.Scheduler.Id} on thread {p.Thread.ManagedThreadId} '{p.Thread.Name}': 1 alive, 0 runnable\n";
            Assert.Contains(header + $"  {p.Tasklet.Id} '{name}' Blocked: receive on channel '{name}-gate' (unbuffered, 0 buffered) for ", all);
        }

        Assert.NotEqual(a.Scheduler.Id, b.Scheduler.Id);
        a.Dispose();
        b.Dispose();
        Assert.DoesNotContain($"scheduler {a.Scheduler.Id} ", Scheduler.DumpAll(), StringComparison.Ordinal);
    }

    [Fact]
    public void Dump_FromAnotherThreadWhileTheOwnerSpawnsWaitsAndEnds_NeverThrowsNorRunsAway()
    {
        // The owner churns its alive list and its waiters (spawns, selects, sleeps, joins, deaths) while another
        // thread dumps it without pause: every dump must come back, each line either a tasklet's or the marker of
        // a line that changed under the reader. Bounded: a fixed amount of work on the owner.
        using var s = new Scheduler();
        var line = new Regex(@"^(\d+ '[^']*' (Created|Runnable|Running|Blocked|Dead)(: .*)?|\d+ \(changed while read: \w+\)|\(the list changed while read: \d+ tasklets shown\))$", RegexOptions.Compiled);
        s.Go(async () =>
        {
            var a = new Channel<int>();
            var b = new Channel<int>(4);
            for (int round = 0; round < 300; round++)
            {
                var children = new List<Tasklet>();
                for (int i = 0; i < 20; i++)
                {
                    int k = i;
                    children.Add(Tasklet.Go(async () =>
                    {
                        switch (k % 4)
                        {
                            case 0:
                                await a.SendAsync(k);
                                break;
                            case 1:
                                await Select.WaitAsync(a.ReceiveCase(), b.ReceiveCase());
                                break;
                            case 2:
                                await Tasklet.Sleep(TimeSpan.Zero);
                                await b.SendAsync(k);
                                break;
                            default:
                                await Tasklet.Yield();
                                break;
                        }
                    }, $"child-{round}-{k}"));
                }

                while (b.TryReceive(out _) || a.TryReceive(out _))
                {
                }

                for (int i = 0; i < 10; i++)
                {
                    await Tasklet.Yield();
                    while (b.TryReceive(out _))
                    {
                    }
                }

                a.Close();
                foreach (Tasklet child in children)
                {
                    try
                    {
                        await child;
                    }
                    catch (ChannelClosedException)
                    {
                    }
                }

                a = new Channel<int>();
            }
        }, "churn");

        Exception? failure = null;
        var runner = new Thread(() => failure = Record.Exception(s.Run)) { IsBackground = true };
        int dumps = 0;
        runner.Start();
        while (runner.IsAlive)
        {
            foreach (string l in s.Dump().Split(Environment.NewLine, StringSplitOptions.RemoveEmptyEntries))
            {
                Assert.Matches(line, l);
            }

            _ = Scheduler.DumpAll();
            dumps++;
        }

        Assert.True(runner.Join(s_guard), "hang guard");
        Assert.Null(failure);
        Assert.True(dumps > 0);
    }
}
