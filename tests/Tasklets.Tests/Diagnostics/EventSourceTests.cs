using System.Diagnostics;
using System.Diagnostics.Tracing;
using Tasklets.Internal;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

/// <summary>Records the events of the Tasklets source; enabled explicitly after construction (never in OnEventSourceCreated, which runs before the fields exist).</summary>
internal sealed class TaskletsEventRecorder : EventListener
{
    private readonly List<EventWrittenEventArgs> _events = [];

    public void Enable(IDictionary<string, string?>? arguments = null)
        => EnableEvents(TaskletsEventSource.Log, EventLevel.Verbose, EventKeywords.All, arguments);

    public List<EventWrittenEventArgs> Events(string name)
    {
        lock (_events)
        {
            return [.. _events.Where(e => e.EventName == name)];
        }
    }

    /// <summary>The text of the Dump events written so far, parts joined in order.</summary>
    public string DumpText()
    {
        List<EventWrittenEventArgs> parts = Events("Dump");
        return string.Concat(parts.Select(e => (string)e.Payload![2]!));
    }

    protected override void OnEventWritten(EventWrittenEventArgs eventData)
    {
        lock (_events)
        {
            _events.Add(eventData);
        }
    }
}

// Issue 15: an EventSource named Tasklets with deadlock, failure and stall events, and a command that writes DumpAll.
public class EventSourceTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    private static Dictionary<string, string?> DumpAllArguments() => new() { ["Command"] = "DumpAll" };

    [Fact]
    public void Source_IsNamedTasklets_AndItsManifestIsValid()
    {
        Assert.Equal("Tasklets", TaskletsEventSource.Log.Name);
        Assert.Null(TaskletsEventSource.Log.ConstructionException);
        string? manifest = EventSource.GenerateManifest(typeof(TaskletsEventSource), typeof(TaskletsEventSource).Assembly.Location, EventManifestOptions.Strict);
        Assert.NotNull(manifest);
        foreach (string name in new[] { "Deadlock", "UnobservedFailure", "Stall", "Dump" })
        {
            Assert.Contains($"name=\"{name}\"", manifest, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void EnableWithCommandDumpAll_LikeDotnetTrace_WritesTheDumpOfARunningScheduler()
    {
        // dotnet-trace's "--providers Tasklets:0:4:Command=DumpAll" arrives as the arguments of the enable command.
        using var s = new Scheduler();
        var gate = new Channel<int> { Name = "wire" };
        Tasklet stuck = s.Go(async () => await gate.ReceiveAsync(), "stuck-reader");
        var runner = new Thread(() => Record.Exception(s.Run)) { IsBackground = true };
        runner.Start();
        SpinUntil(() => stuck.State == TaskletState.Blocked && Scheduler.Running.Contains(s));

        using var recorder = new TaskletsEventRecorder();
        recorder.Enable(DumpAllArguments());

        string dump = recorder.DumpText();
        Assert.Contains($"scheduler {s.Id} on thread {runner.ManagedThreadId}", dump, StringComparison.Ordinal);
        Assert.Contains($"{stuck.Id} 'stuck-reader' Blocked: receive on channel 'wire'", dump, StringComparison.Ordinal);
        Assert.Contains("(lambda)", dump, StringComparison.Ordinal);
        EventWrittenEventArgs first = recorder.Events("Dump")[0];
        Assert.Equal(TaskletsEventSource.DumpEventId, first.EventId);
        Assert.Equal(["part", "parts", "text"], first.PayloadNames);

        gate.Send(1);
        Assert.True(runner.Join(s_guard), "hang guard");
    }

    [Fact]
    public void SendCommand_WithDumpAll_WritesAgain_AndOtherCommandsWriteNothing()
    {
        using var s = new Scheduler();
        var gate = new Channel<int> { Name = "later" };
        Tasklet stuck = s.Go(async () => await gate.ReceiveAsync(), "waits-for-command");
        var runner = new Thread(() => Record.Exception(s.Run)) { IsBackground = true };
        runner.Start();
        SpinUntil(() => stuck.State == TaskletState.Blocked && Scheduler.Running.Contains(s));

        using var recorder = new TaskletsEventRecorder();
        recorder.Enable();
        EventSource.SendCommand(TaskletsEventSource.Log, (EventCommand)1, new Dictionary<string, string?> { ["Command"] = "Other" });
        Assert.DoesNotContain(recorder.Events("Dump"), _ => true);

        EventSource.SendCommand(TaskletsEventSource.Log, (EventCommand)1, new Dictionary<string, string?> { ["command"] = "dumpall" });
        Assert.Contains($"{stuck.Id} 'waits-for-command' Blocked", recorder.DumpText(), StringComparison.Ordinal);

        gate.Send(1);
        Assert.True(runner.Join(s_guard), "hang guard");
    }

    [Fact]
    public void DumpAll_LargerThanOneEvent_IsSplitIntoNumberedPartsAtLineEnds()
    {
        using var s = new Scheduler();
        var gate = new Channel<int> { Name = "many" };
        string longName = new('n', 200);
        for (int i = 0; i < 300; i++)
        {
            s.Go(async () =>
            {
                try
                {
                    await gate.ReceiveAsync();
                }
                catch (ChannelClosedException)
                {
                    // the end of the test
                }
            }, $"{longName}-{i}");
        }

        var runner = new Thread(() => Record.Exception(s.Run)) { IsBackground = true };
        runner.Start();
        SpinUntil(() => s.Tasklets.All(t => t.State == TaskletState.Blocked) && Scheduler.Running.Contains(s));

        using var recorder = new TaskletsEventRecorder();
        recorder.Enable(DumpAllArguments());
        List<EventWrittenEventArgs> parts = recorder.Events("Dump");
        Assert.True(parts.Count >= 4, $"{parts.Count} part(s)");
        for (int i = 0; i < parts.Count; i++)
        {
            Assert.Equal(i + 1, (int)parts[i].Payload![0]!);
            Assert.Equal(parts.Count, (int)parts[i].Payload![1]!);
            string text = (string)parts[i].Payload![2]!;
            Assert.True(text.Length <= TaskletsEventSource.MaxTextChars);
            Assert.EndsWith("\n", text, StringComparison.Ordinal);
        }

        string dump = recorder.DumpText();
        for (int i = 0; i < 300; i++)
        {
            Assert.Contains($"'{longName}-{i}' Blocked", dump, StringComparison.Ordinal);
        }

        gate.Close();
        Assert.True(runner.Join(s_guard), "hang guard");
    }

    [Fact]
    public void Split_CutsAtLineEnds_OrAtTheLimitWhenALineIsLonger()
    {
        Assert.Equal(["ab\n", "cd\n", "ef"], TaskletsEventSource.Split("ab\ncd\nef", 4));
        Assert.Equal(["ab\n", "cd\ne"], TaskletsEventSource.Split("ab\ncd\ne", 4));
        Assert.Equal(["abcd", "efgh", "ij"], TaskletsEventSource.Split("abcdefghij", 4));
        Assert.Equal([""], TaskletsEventSource.Split("", 4));
    }

    [Fact]
    public void UnobservedFailure_IsWritten_WithoutAnOnUnobservedFailureCallback()
    {
        using var recorder = new TaskletsEventRecorder();
        recorder.Enable();
        using var s = new Scheduler(new SchedulerOptions { Seed = 1 });
        Tasklet failing = s.Go(() => throw new InvalidOperationException("nobody joins me"), "lonely");
        Assert.Throws<AggregateException>(s.Run);

        EventWrittenEventArgs e = Assert.Single(recorder.Events("UnobservedFailure"), e => (long)e.Payload![0]! == s.Id);
        Assert.Equal(EventLevel.Error, e.Level);
        Assert.Equal(["scheduler", "tasklet", "name", "exception"], e.PayloadNames);
        Assert.Equal(failing.Id, (long)e.Payload![1]!);
        Assert.Equal("lonely", e.Payload[2]);
        Assert.Contains("InvalidOperationException: nobody joins me", (string)e.Payload[3]!, StringComparison.Ordinal);
    }

    [Fact]
    public void Stall_WritesTheEventTheStallMonitorReports()
    {
        using var recorder = new TaskletsEventRecorder();
        recorder.Enable();
        using var s = new Scheduler();
        TaskletsEventSource.Log.Stall(s, TimeSpan.FromSeconds(12.5), longStep: true, "1 'spinner' Running");

        EventWrittenEventArgs e = Assert.Single(recorder.Events("Stall"), e => (long)e.Payload![0]! == s.Id);
        Assert.Equal(EventLevel.Warning, e.Level);
        Assert.Equal(12_500d, (double)e.Payload![1]!);
        Assert.Equal(true, e.Payload[2]);
        Assert.Equal("1 'spinner' Running", e.Payload[3]);
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
}

// Deadlock detection is process-wide: the deadlock event test runs alone, like the other deadlock tests.
[Collection(NonParallel.Name)]
public class DeadlockEventTests
{
    [Fact]
    public void Deadlock_IsWritten_WithTheDeadlockMessage()
    {
        using var recorder = new TaskletsEventRecorder();
        recorder.Enable();
        using var s = new Scheduler();
        s.Go(async () => await new Channel<int> { Name = "void" }.ReceiveAsync(), "forever");
        DeadlockException deadlock = Assert.Throws<DeadlockException>(s.Run);

        EventWrittenEventArgs e = Assert.Single(recorder.Events("Deadlock"), e => (long)e.Payload![0]! == s.Id);
        Assert.Equal(EventLevel.Error, e.Level);
        Assert.Equal(["scheduler", "message"], e.PayloadNames);
        Assert.Equal(deadlock.Message, e.Payload![1]);
        Assert.Contains("'forever': receive on channel 'void'", (string)e.Payload[1]!, StringComparison.Ordinal);
    }
}
