using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Regression;

/// <summary>
/// Regressions from the second adversarial review of the waiter layer (issue "Nothing is lost, proven"). Each test
/// states the documented behaviour and failed on the tree that review read; the commit that fixed it names the test.
/// </summary>
[Collection(NonParallel.Name)] // deadlock detection is process-wide
public class WaiterSecondReviewRegressionTests
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(30);

    private static Exception? RunOnThread(Func<Task> main)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                Scheduler.Run(main);
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        Assert.True(thread.Join(s_guard), "hang guard");
        return failure;
    }

    // F1: "awaited" (a stored continuation) is not "the tasklet is suspended on this wait only". The common timeout
    // idiom WhenAny(op.AsTask(), Task.Delay) stores AsTask's continuation on the tasklet's waiter, so AfterStep does
    // not count the tasklet as foreign-waiting, and the scheduler declares a deadlock while Task.Delay is pending.
    [Fact]
    public void F1_WhenAnyOfReceiveAsTaskAndTaskDelay_IsNotADeadlock()
    {
        bool timedOut = false;
        Exception? failure = RunOnThread(async () =>
        {
            var ch = new Channel<int>(); // made inside the tasklet: only tasklets reach it
            Task<int> receive = ch.ReceiveAsync().AsTask();
            Task first = await Task.WhenAny(receive, Task.Delay(200));
            timedOut = !ReferenceEquals(first, receive);
            ch.Close();
            await Assert.ThrowsAsync<ChannelClosedException>(() => receive);
        });
        Assert.Null(failure);
        Assert.True(timedOut);
    }

    // F3: a tasklet parked on an external waiter (its own holds a stored receive) with AsTask(): the continuation has
    // no context (AsTask passes no flags), so Wake completes the waiter (phase Completed) and queues the continuation
    // to the thread pool. Until that work item runs, nothing tells the scheduler a wake-up is in flight:
    // MayBeEndedFromOutside counts only Claimed, the tasklet was not counted as foreign (it "awaited" a library wait).
    // The scheduler goes idle and declares a deadlock. (The thread pool is kept busy to widen the window.)
    [Fact]
    public void F3_ExternalWaiterAsTaskWokenBySameSchedulerPartner_IsNotADeadlock()
    {
        var release = new ManualResetEventSlim();
        int got = 0;
        Exception? failure;
        try
        {
            failure = RunOnThread(async () =>
            {
                var a = new Channel<int>(1);
                var b = new Channel<int>();
                ValueTask<int> stored = a.ReceiveAsync(); // the tasklet's own waiter stays busy
                Tasklet.Go(async () =>
                {
                    // The thread pool is kept busy when the external waiter's continuation is queued there: as many
                    // work items as cores are running (each signals once it runs) before the send.
                    using var busy = new CountdownEvent(Environment.ProcessorCount);
                    int signalled = 0;
                    for (int i = 0; i < 32; i++)
                    {
                        ThreadPool.UnsafeQueueUserWorkItem(
                            _ =>
                            {
                                if (Interlocked.Increment(ref signalled) <= Environment.ProcessorCount)
                                {
                                    busy.Signal();
                                }

                                release.Wait(TimeSpan.FromSeconds(5)); // released by the test's finally
                            },
                            null);
                    }

                    Assert.True(busy.Wait(TimeSpan.FromSeconds(30)), "hang guard: pool workers");
                    await b.SendAsync(1);
                });
                got = await b.ReceiveAsync().AsTask(); // parks on an external waiter
                Assert.True(a.TrySend(2));
                got += await stored;
            });
        }
        finally
        {
            release.Set();
        }

        Assert.Null(failure);
        Assert.Equal(3, got);
    }

    // F4: a select that fires at once and switches to the partner it woke (channel Preference) returns a ValueTask
    // completed by a yield: its case holds the item in Value, but the case is not "in use" (IsInUse looks only at
    // queue registrations), so a select of the tasklet that runs before the first select resumes reuses the case and
    // overwrites Value: item 1 is lost, item 2 is read twice. Documented: InvalidOperationException for a case in use
    // by a select that has not finished.
    [Fact]
    public void F4_CaseOfASelectThatSwitchedToItsPartner_IsInUseUntilItResumes()
    {
        using var s = SchedulerExtensions.Deterministic();
        var ch = new Channel<int> { Preference = ChannelPreference.Sender };
        var rc = ch.ReceiveCase();
        var seen = new List<int>();
        bool secondRefused = false;
        s.Go(async () => await ch.SendAsync(1));
        s.Go(async () => await ch.SendAsync(2));
        s.Go(async () =>
        {
            await Select.WaitAsync(rc); // fires with 1, wakes sender 1 to the front, yields
            seen.Add(rc.Value);
        });
        s.Go(async () =>
        {
            try
            {
                await Select.WaitAsync(rc); // runs before the first select resumed
                seen.Add(rc.Value);
            }
            catch (InvalidOperationException)
            {
                secondRefused = true;
                seen.Add(await ch.ReceiveAsync());
            }
        });
        s.RunUntilIdle();
        seen.Sort();
        Assert.True(secondRefused || seen.SequenceEqual([1, 2]), $"seen: {string.Join(",", seen)}, refused: {secondRefused}");
    }

    // F5: the refusal of an await from another tasklet (TaskletWaiter.OnCompleted throws) does not reach the awaiting
    // code: the runtime's async-method builder catches exceptions thrown by IValueTaskSource.OnCompleted and rethrows
    // them on the thread pool (Task.ThrowAsync), which terminates the process; the awaiting method never resumes.
    [Fact]
    public void F5_AwaitOfAnotherTaskletsOperation_ThrowsInTheAwaiter_NotOnTheThreadPool()
    {
        // Before the fix, OnCompleted threw, the async-method builder rethrew that on the thread pool, and the test
        // process ended. Now the awaiter resumes through its own context and its GetResult throws.
        Exception? awaitFailure = null;
        int got = 0;
        Scheduler.Run(
            async () =>
            {
                var ch = new Channel<int>(1);
                ValueTask<int> stored = default;
                Tasklet a = Tasklet.Go(async () =>
                {
                    stored = ch.ReceiveAsync(); // A's operation, parked on A's own waiter
                    await Tasklet.Sleep(TimeSpan.FromSeconds(1));
                    Assert.True(ch.TrySend(7));
                    got = await stored;
                });
                await Tasklet.Yield(); // A stores its receive and sleeps
                try
                {
                    await stored; // awaited outside A: refused
                }
                catch (InvalidOperationException e)
                {
                    awaitFailure = e;
                }

                await a;
            },
            new SchedulerOptions { Seed = 1 });
        Assert.IsType<InvalidOperationException>(awaitFailure);
        Assert.Contains("outside that tasklet", awaitFailure!.Message);
        Assert.Equal(7, got); // the refused await left A's wait alone
    }
}
