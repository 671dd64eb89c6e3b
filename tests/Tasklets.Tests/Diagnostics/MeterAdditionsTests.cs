using System.Diagnostics.Metrics;
using Tasklets.Internal;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

// Issue 15: the meter gains tasklets.runnable and tasklets.blocked per scheduler (tag tasklets.scheduler), a step
// duration histogram and a stall counter. Other tests' schedulers report too: assertions filter on this test's tag.
public class MeterAdditionsTests
{
    private sealed class Recorder : IDisposable
    {
        private readonly MeterListener _listener = new();
        private readonly List<(string Instrument, double Value, object? Scheduler)> _measurements = [];

        public Recorder(params string[] instruments)
        {
            _listener.InstrumentPublished = (instrument, listener) =>
            {
                if (instrument.Meter.Name == Scheduler.MeterName && instruments.Contains(instrument.Name))
                {
                    listener.EnableMeasurementEvents(instrument);
                }
            };
            _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.SetMeasurementEventCallback<double>((instrument, value, tags, _) => Add(instrument, value, tags));
            _listener.Start();
        }

        public void Collect() => _listener.RecordObservableInstruments();

        public List<double> Values(string instrument, Scheduler? scheduler)
        {
            lock (_measurements)
            {
                return [.. _measurements.Where(m => m.Instrument == instrument && (scheduler is null || Equals(m.Scheduler, scheduler.Id))).Select(m => m.Value)];
            }
        }

        public void Clear()
        {
            lock (_measurements)
            {
                _measurements.Clear();
            }
        }

        public void Dispose() => _listener.Dispose();

        private void Add(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            object? scheduler = null;
            foreach (KeyValuePair<string, object?> tag in tags)
            {
                if (tag.Key == "tasklets.scheduler")
                {
                    scheduler = tag.Value;
                }
            }

            lock (_measurements)
            {
                _measurements.Add((instrument.Name, value, scheduler));
            }
        }
    }

    [Fact]
    public void RunnableAndBlocked_ArePerRunningScheduler_TaggedWithItsId()
    {
        using var recorder = new Recorder("tasklets.runnable", "tasklets.blocked");
        using var s = new Scheduler();
        var gate = new Channel<int>();
        for (int i = 0; i < 3; i++)
        {
            s.Go(async () => await gate.ReceiveAsync(), $"blocked-{i}");
        }

        s.RunOnce(); // the three block
        recorder.Collect();
        Assert.Empty(recorder.Values("tasklets.runnable", s)); // not inside a Run method: not reported

        (double Runnable, double Blocked) seen = default;
        s.Go(() =>
        {
            // Inside the step the counts are exact: two tasklets queued behind this one, three parked, this one running.
            recorder.Clear();
            recorder.Collect();
            seen = (Assert.Single(recorder.Values("tasklets.runnable", s)), Assert.Single(recorder.Values("tasklets.blocked", s)));
            return Task.CompletedTask;
        }, "probe");
        s.Go(() => Task.CompletedTask, "ready-1");
        s.Go(() => Task.CompletedTask, "ready-2");
        s.RunOnce();

        Assert.Equal((2d, 3d), seen);
        s.Dispose();
    }

    [Fact]
    public void StepDuration_RecordsEveryStep_WhileAListenerHasItEnabled()
    {
        using var recorder = new Recorder("tasklets.step.duration");
        using var s = new Scheduler(new SchedulerOptions { Seed = 1 });
        s.Go(async () =>
        {
            for (int i = 0; i < 9; i++)
            {
                await Tasklet.Yield();
            }
        });
        s.Run(); // ten steps: the start and nine resumptions

        List<double> steps = recorder.Values("tasklets.step.duration", s);
        Assert.Equal(10, steps.Count);
        Assert.All(steps, d => Assert.True(d >= 0, "a duration is never negative"));
    }
}

// A process-wide counter with no tag: counted alone so that the delta is this test's.
[Collection(NonParallel.Name)]
public class StallCounterTests
{
    [Fact]
    public void Stall_CountsOnTaskletsStalls()
    {
        long stalls = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == Scheduler.MeterName && instrument.Name == "tasklets.stalls")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref stalls, value));
        listener.Start();

        TaskletsMetrics.Stall();
        TaskletsMetrics.Stall();
        Assert.Equal(2, Interlocked.Read(ref stalls));
    }
}
