using System.Diagnostics.Tracing;
using System.Text;
using Microsoft.Diagnostics.NETCore.Client;
using Xunit;

namespace Tasklets.Tests.Diagnostics;

// Issue 15: the documented command line (dotnet-trace collect --providers Tasklets:0:4:Command=DumpAll) must get the
// dump out of a live process. This test opens the same EventPipe session on its own process through the diagnostics
// port, as dotnet-trace does, and looks for the dump's text in the raw trace stream (payload strings are UTF-16).
public class EventPipeSessionTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    [Fact]
    public void EventPipeSession_WithKeywordsZeroAndCommandDumpAll_ReceivesTheDump()
    {
        using var s = new Scheduler();
        var gate = new Channel<int> { Name = "pipe-gate" };
        string name = "pipe-reader-" + Guid.NewGuid().ToString("N");
        Tasklet reader = s.Go(async () => await gate.ReceiveAsync(), name);
        var runner = new Thread(() => Record.Exception(s.Run)) { IsBackground = true };
        runner.Start();
        var spinner = default(SpinWait);
        var guard = System.Diagnostics.Stopwatch.StartNew();
        while (!(reader.State == TaskletState.Blocked && Scheduler.Running.Contains(s)))
        {
            Assert.True(guard.Elapsed < s_guard, "hang guard: the reader never parked");
            spinner.SpinOnce();
        }

        // Keywords 0, level 4 (Informational), the argument as dotnet-trace passes it.
        var provider = new EventPipeProvider("Tasklets", EventLevel.Informational, 0, new Dictionary<string, string> { ["Command"] = "DumpAll" });
        var client = new DiagnosticsClient(Environment.ProcessId);
        byte[] wanted = Encoding.Unicode.GetBytes($"'{name}' Blocked: receive on channel 'pipe-gate'");
        using (EventPipeSession session = client.StartEventPipeSession([provider], requestRundown: false))
        {
            bool found = false;
            var streamReader = new Thread(() => found = ReadUntil(session.EventStream, wanted)) { IsBackground = true };
            streamReader.Start();
            bool completed = streamReader.Join(s_guard);
            session.Stop();
            Assert.True(completed && found, "the dump never reached the EventPipe session");
        }

        gate.Send(1);
        Assert.True(runner.Join(s_guard), "hang guard");
    }

    // Reads the trace stream until it holds wanted (true) or ends (false).
    private static bool ReadUntil(Stream stream, byte[] wanted)
    {
        var seen = new List<byte>();
        var buffer = new byte[16 * 1024];
        int read;
        while ((read = stream.Read(buffer, 0, buffer.Length)) > 0)
        {
            seen.AddRange(buffer.AsSpan(0, read));
            if (System.Runtime.InteropServices.CollectionsMarshal.AsSpan(seen).IndexOf(wanted) >= 0)
            {
                return true;
            }
        }

        return false;
    }
}
