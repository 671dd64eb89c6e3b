using System.Threading.Tasks.Sources;
using Tasklets.Internal;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>The premises and promises of the waiter's hot path: what the runtime passes it, and that it allocates nothing.</summary>
public class WaiterHotPathTests
{
    [Fact]
    public async Task AsyncMethodContinuation_IsWhatAnAsyncMethodAwaitPasses()
    {
        // TaskletWaiter keeps only the state for this delegate; if the runtime passed another one, every await would
        // take the rare path (still correct, but a cold object per tasklet).
        var recorder = new RecordingSource();
        Task awaiting = AwaitAsync(recorder);
        Assert.Same(AsyncMethodContinuation.Delegate, recorder.Continuation);
        recorder.Complete(); // runs the rest of AwaitAsync inline
        Assert.True(awaiting.IsCompletedSuccessfully);
        await awaiting;

        static async Task AwaitAsync(RecordingSource source) => await new ValueTask(source, 0);
    }

    [Fact]
    public void SendReceive_ParkedRoundTrips_AllocateNothingInSteadyState()
    {
        long allocated = -1;
        int mismatches = 0;
        Scheduler.Run(async () =>
        {
            var ping = new Channel<int>();
            var pong = new Channel<int>();
            Tasklet echo = Tasklet.Go(async () =>
            {
                while (true)
                {
                    await pong.SendAsync(await ping.ReceiveAsync());
                }
            });

            // One loop, so that no new async method (and its state machine box) starts inside the measurement.
            long before = 0;
            for (int i = 0; i < 11_000; i++)
            {
                if (i == 1_000)
                {
                    before = GC.GetAllocatedBytesForCurrentThread(); // after warm-up: nodes cached, run queue grown
                }

                await ping.SendAsync(i); // the echo tasklet is parked on receive: each handoff switches
                if (await pong.ReceiveAsync() != i)
                {
                    mismatches++; // not Assert.Equal: it allocates a comparer per call, inside the measured loop
                }
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            echo.Kill();
        });
        Assert.Equal(0, mismatches);
        Assert.Equal(0, allocated);
    }

    // Deliberately independent of AsyncMethodContinuation's own probe: reusing it would check the capture against
    // itself, and the test could not fail.
    private sealed class RecordingSource : IValueTaskSource
    {
        private object? _state;
        private bool _completed;

        public Action<object?>? Continuation { get; private set; }

        public ValueTaskSourceStatus GetStatus(short token) => _completed ? ValueTaskSourceStatus.Succeeded : ValueTaskSourceStatus.Pending;

        public void OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
        {
            Continuation = continuation;
            _state = state;
        }

        public void GetResult(short token)
        {
        }

        public void Complete()
        {
            _completed = true;
            Continuation!(_state);
        }
    }
}
