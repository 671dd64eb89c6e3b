using System.Diagnostics.Metrics;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

public class DumpTests
{
    [Fact]
    public void Dump_NamesEveryTaskletAndItsWait()
    {
        using var s = new Scheduler();
        var jobs = new Channel<int>(10) { Name = "jobs" };
        Tasklet worker = s.Go(async () => await jobs.ReceiveAsync(), "worker");
        Tasklet sleeper = s.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)), "sleeper");
        Tasklet joiner = s.Go(async () => await worker, "joiner");
        Tasklet fresh = s.Go(() => Task.CompletedTask, "fresh");
        s.RunOnce(); // one pass: the first three block; fresh finishes
        Tasklet later = s.Go(() => Task.CompletedTask, "later");

        string dump = s.Dump();
        Assert.Contains($"{worker.Id} 'worker' Blocked: receive on channel 'jobs' (capacity 10, 0 buffered)", dump);
        Assert.Contains($"{sleeper.Id} 'sleeper' Blocked: sleep", dump);
        Assert.Contains($"{joiner.Id} 'joiner' Blocked: join of tasklet {worker.Id} 'worker'", dump);
        Assert.DoesNotContain("'fresh'", dump);
        Assert.Equal(TaskletState.Dead, fresh.State);
        Assert.Equal(TaskletState.Created, later.State);
        Assert.Contains(" ms", dump);
        jobs.TrySend(1);
        s.RunUntilIdle();
        Assert.DoesNotContain("'worker'", s.Dump());
    }

    [Fact]
    public void Dump_WaitBegunInTheFirstStepsOfRun_SaysHowLongItLasted()
    {
        // Issue 15: the wait start came from a coarse clock still 0 in Run()'s first steps, so Dump said no "for".
        using var s = new Scheduler();
        var silent = new Channel<int> { Name = "silent" };
        var io = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        s.Go(async () => await silent.ReceiveAsync(), "reader");
        s.Go(async () =>
        {
            await io.Task; // a foreign await: Run() idles instead of declaring a deadlock
            silent.Close();
        }, "closer");
        var runner = new Thread(() => Record.Exception(s.Run)) { IsBackground = true };
        runner.Start();
        string dump = "";
        var spinner = default(SpinWait);
        var guard = System.Diagnostics.Stopwatch.StartNew();
        while (!(dump = s.Dump()).Contains("'reader' Blocked", StringComparison.Ordinal) && guard.Elapsed < TimeSpan.FromSeconds(30))
        {
            spinner.SpinOnce(); // until Run() has parked the reader (a state to reach, not a time to wait)
        }

        io.SetResult();
        Assert.True(runner.Join(TimeSpan.FromSeconds(30)), "hang guard");
        Assert.Matches(@"'reader' Blocked: receive on channel 'silent'[^\n]* for [0-9.]+ ms", dump);
    }

    [Fact]
    public void LibraryCall_AfterConfigureAwaitFalse_SaysTheCodeLeftItsScheduler()
    {
        // Issue 15: code that left its scheduler says so, with the likely cause.
        AggregateException failures = Assert.Throws<AggregateException>(() =>
        {
            using var s = new Scheduler();
            // A body on the library's builder always resumes on its scheduler; a method it awaits can still leave.
            s.Go(async () => await Leave(), "leaver");
            s.Run();
        });

        static async Task Leave()
        {
#pragma warning disable TASKLET001 // the misuse under test: the run-time report of code that left its scheduler
            await Task.Run(() => { }).ConfigureAwait(false); // resumes on the thread pool, off the scheduler
#pragma warning restore TASKLET001
            await Tasklet.Yield();
        }
        var failure = Assert.IsType<InvalidOperationException>(Assert.Single(failures.InnerExceptions));
        Assert.Contains("left its scheduler", failure.Message, StringComparison.Ordinal);
        Assert.Contains("ConfigureAwait(false)", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DebuggerDisplay_AttributesResolve()
    {
        foreach (Type type in new[] { typeof(Tasklet), typeof(Channel<int>), typeof(Scheduler) })
        {
            var attribute = (System.Diagnostics.DebuggerDisplayAttribute?)Attribute.GetCustomAttribute(type, typeof(System.Diagnostics.DebuggerDisplayAttribute));
            Assert.NotNull(attribute);
            var property = type.GetProperty("DebuggerDisplay", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic);
            Assert.NotNull(property);
        }

        using var s = new Scheduler();
        var c = new Channel<int> { Name = "dbg" };
        Tasklet t = s.Go(() => Task.CompletedTask, "t");
        Assert.Contains("'dbg'", (string)typeof(Channel<int>).GetProperty("DebuggerDisplay", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(c)!);
        Assert.Contains("'t'", (string)typeof(Tasklet).GetProperty("DebuggerDisplay", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.GetValue(t)!);
    }
}

[Collection(NonParallel.Name)]
public class MetricsTests
{
    [Fact]
    public void Meter_ReportsSpawnsSwitchesChannelOperationsAndDeadlocks()
    {
        var values = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Scheduler.MeterName)
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            lock (values)
            {
                values[instrument.Name] = instrument.Name == "tasklets.deadlocks" ? values.GetValueOrDefault(instrument.Name) + value : value;
            }
        });
        listener.Start();

        listener.RecordObservableInstruments();
        Dictionary<string, long> before = new(values);
        using (var s = new Scheduler())
        {
            s.Go(async () =>
            {
                var c = new Channel<int>();
                Tasklet.Go(async () => { for (int i = 0; i < 100; i++) { await c.SendAsync(i); } });
                for (int i = 0; i < 100; i++)
                {
                    await c.ReceiveAsync();
                }
            });
            s.Run();
        }

        using (var s = new Scheduler())
        {
            s.Go(async () => await new Channel<int>().ReceiveAsync());
            Assert.Throws<DeadlockException>(s.Run);
        }

        listener.RecordObservableInstruments();
        Assert.Equal(3, values["tasklets.spawned"] - before["tasklets.spawned"]);
        Assert.Equal(0, values["tasklets.alive"] - before["tasklets.alive"]);
        Assert.Equal(201, values["tasklets.channel.operations"] - before["tasklets.channel.operations"]);
        Assert.True(values["tasklets.switches"] - before["tasklets.switches"] >= 100);
        Assert.Equal(1, values.GetValueOrDefault("tasklets.deadlocks") - before.GetValueOrDefault("tasklets.deadlocks"));
    }
}
