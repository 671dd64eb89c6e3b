using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Deadlock;

/// <summary>
/// Issue 15, DESIGN "Deadlock": detection per group of schedulers. Schedulers whose tasklets met on a primitive, or
/// that spawned onto each other, are one group; a group whose schedulers are all stuck is deadlocked while other
/// schedulers of the process run or idle. On the build before, one running or idle scheduler anywhere turned
/// detection off, so the first tests hang there (the guard fails). The no-false-positive tests keep a party outside
/// the stuck scheduler that will wake it: each must end without a DeadlockException.
/// </summary>
[Collection(NonParallel.Name)]
public class GroupDetectionTests
{
    [Fact]
    public void TwoDeadlockedSchedulers_AreDetected_WhileAThirdKeepsRunning()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        using var busy = new Scheduler();
        using var stop = new ManualResetEventSlim();
        busy.Go(async () =>
        {
            while (!stop.IsSet)
            {
                await Tasklet.Yield(); // always runnable: never stuck, never idle
            }
        }, "busy");
        using var spawned = new ManualResetEventSlim();
        a.Go(async () =>
        {
            var p = new Channel<int> { Name = "p" };
            var q = new Channel<int> { Name = "q" };
            b.Go(async () =>
            {
                await p.ReceiveAsync(); // waits for a, which waits for b: a cycle across two schedulers
                await q.SendAsync(1);
            }, "on-b");
            spawned.Set();
            await q.ReceiveAsync();
            await p.SendAsync(1);
        }, "on-a");

        RunningScheduler busyRun = RunningScheduler.Start(busy);
        RunningScheduler aRun = RunningScheduler.Start(a);
        Assert.True(spawned.Wait(RunningScheduler.Guard));
        RunningScheduler bRun = RunningScheduler.Start(b); // b's Run would return at once with nothing spawned yet
        DeadlockException fromA = Assert.IsType<DeadlockException>(aRun.Join());
        DeadlockException fromB = Assert.IsType<DeadlockException>(bRun.Join());
        Assert.Contains("'on-a': receive on channel 'q'", fromA.Message, StringComparison.Ordinal);
        Assert.Contains("'on-b': receive on channel 'p'", fromB.Message, StringComparison.Ordinal);
        stop.Set();
        Assert.Null(busyRun.Join());
    }

    [Fact]
    public void IdleSchedulersElsewhere_DoNotHideADeadlock()
    {
        using var sleeper = new Scheduler();
        using var server = new Scheduler();
        using var deadlocked = new Scheduler();
        var feed = new Channel<int> { Name = "feed" }; // made outside: outside code may feed it
        Tasklet sleeping = sleeper.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)), "sleeper");
        server.Go(async () => await feed.ReceiveAsync(), "server");
        deadlocked.Go(async () => await new Channel<int> { Name = "never" }.ReceiveAsync(), "waiter");
        RunningScheduler sleeperRun = RunningScheduler.Start(sleeper);
        RunningScheduler serverRun = RunningScheduler.Start(server);

        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunningScheduler.Start(deadlocked).Join());
        Assert.Contains("'waiter': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);

        feed.Send(1);
        Assert.Null(serverRun.Join());
        sleeping.Kill(); // its Run returns
        Assert.Null(sleeperRun.Join());
    }

    [Fact]
    public void PartnerFinishedItsRun_LeavesTheWaiterDeadlocked()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        var spawned = new ManualResetEventSlim();
        a.Go(async () =>
        {
            var items = new Channel<int> { Name = "items" };
            b.Go(async () =>
            {
                for (int i = 0; i < 10; i++)
                {
                    await items.SendAsync(i);
                }
            }, "producer");
            spawned.Set();
            for (int i = 0; i < 11; i++)
            {
                await items.ReceiveAsync(); // the eleventh never comes: b ends, and nothing else holds the channel
            }
        }, "consumer");

        RunningScheduler aRun = RunningScheduler.Start(a);
        Assert.True(spawned.Wait(RunningScheduler.Guard));
        Assert.Null(RunningScheduler.Start(b).Join());
        DeadlockException deadlock = Assert.IsType<DeadlockException>(aRun.Join());
        Assert.Contains("'consumer': receive on channel 'items'", deadlock.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ReplyChannelSentToAServerOnAnotherScheduler_IsNotADeadlock_WhileTheServerWorks()
    {
        // Go's request/reply: the reply channel is made by the client and travels inside the request. The server has
        // not used it until it answers; it shares the request channel with the client, so they are one group.
        using var client = new Scheduler();
        using var server = new Scheduler();
        var requests = new Channel<(int Value, Channel<int> Reply)>(capacity: 1) { Name = "requests" };
        int answer = 0;
        using var serverReady = new ManualResetEventSlim();
        server.Go(async () =>
        {
            serverReady.Set();
            (int value, Channel<int> reply) = await requests.ReceiveAsync();
            for (int i = 0; i < 2000; i++)
            {
                await Tasklet.Yield(); // the client is stuck on the reply meanwhile, its server is not
            }

            await reply.SendAsync(value * 2);
        }, "server");
        client.Go(async () =>
        {
            var reply = new Channel<int> { Name = "reply" };
            await requests.SendAsync((21, reply));
            answer = await reply.ReceiveAsync();
        }, "client");

        RunningScheduler serverRun = RunningScheduler.Start(server);
        Assert.True(serverReady.Wait(RunningScheduler.Guard));
        Assert.Null(RunningScheduler.Start(client).Join());
        Assert.Null(serverRun.Join());
        Assert.Equal(42, answer);
    }

    [Fact]
    public void ReplyChannelSentThroughAChannelMadeOutside_IsNotADeadlock_BeforeTheServerFirstReceives()
    {
        // The request channel is made by plain code, which may have handed it to any scheduler: the client's group
        // meets the outside world through it, so the client waits for every scheduler inside Run() before a verdict.
        // The server has used nothing when the client gets stuck on its reply.
        using var client = new Scheduler();
        using var server = new Scheduler();
        using var release = new ManualResetEventSlim();
        using var serverRunning = new ManualResetEventSlim();
        var requests = new Channel<(int Value, Channel<int> Reply)>(capacity: 1) { Name = "requests" };
        int answer = 0;
        server.Go(async () =>
        {
            serverRunning.Set(); // a scheduler counts once its Run has begun
            await YieldUntil(release);
            (int value, Channel<int> reply) = await requests.ReceiveAsync();
            await reply.SendAsync(value * 2);
        }, "server");
        client.Go(async () =>
        {
            var reply = new Channel<int> { Name = "reply" };
            await requests.SendAsync((21, reply));
            answer = await reply.ReceiveAsync();
        }, "client");

        RunningScheduler serverRun = RunningScheduler.Start(server);
        Assert.True(serverRunning.Wait(RunningScheduler.Guard));
        RunningScheduler clientRun = RunningScheduler.Start(client);
        ReleaseWhenStuck(client, release, clientRun, serverRun);
        Assert.Equal(42, answer);
    }

    [Fact]
    public void AGroupThatMetTheOutside_IsStillDeclared_WhenEverySchedulerIsStuck()
    {
        using var a = new Scheduler();
        var made = new Channel<int>(capacity: 1) { Name = "made-outside" };
        a.Go(async () =>
        {
            await made.SendAsync(1); // the group meets the outside world
            await new Channel<int> { Name = "never" }.ReceiveAsync();
        }, "waiter");
        DeadlockException deadlock = Assert.IsType<DeadlockException>(RunningScheduler.Start(a).Join());
        Assert.Contains("'waiter': receive on channel 'never'", deadlock.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ChannelCapturedByATaskletSpawnedOnAnotherScheduler_IsNotADeadlock_BeforeItIsUsed()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        using var release = new ManualResetEventSlim();
        using var spawned = new ManualResetEventSlim();
        int got = 0;
        a.Go(async () =>
        {
            var result = new Channel<int> { Name = "result" };
            b.Go(async () =>
            {
                await YieldUntil(release); // works without touching the channel until the test says so
                await result.SendAsync(5);
            }, "worker");
            spawned.Set();
            got = await result.ReceiveAsync();
        }, "waiter");

        RunningScheduler aRun = RunningScheduler.Start(a);
        Assert.True(spawned.Wait(RunningScheduler.Guard));
        RunningScheduler bRun = RunningScheduler.Start(b);
        ReleaseWhenStuck(a, release, aRun, bRun);
        Assert.Equal(5, got);
    }

    [Fact]
    public void APollerOnAnotherScheduler_IsAParty_SoTheSenderIsNotDeadlocked()
    {
        // The channel reaches the poller through plain code (a task), so only the poll itself makes the poller's
        // scheduler a party: a select with a default case that finds nothing ready is a use.
        using var a = new Scheduler();
        using var b = new Scheduler();
        using var release = new ManualResetEventSlim();
        var handOver = new TaskCompletionSource<Channel<int>>(TaskCreationOptions.RunContinuationsAsynchronously);
        var polled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int got = 0;
        b.Go(async () =>
        {
            Channel<int> c = await handOver.Task;
            ReceiveCase<int> receive = c.ReceiveCase();
            Assert.Equal(-1, Select.Try(receive));
            polled.SetResult();
            await YieldUntil(release); // polls nothing more until the test has seen the sender stuck
            Assert.Equal(0, await Select.WaitAsync(receive));
            got = receive.Value;
        }, "poller");
        a.Go(async () =>
        {
            var c = new Channel<int> { Name = "polled" };
            handOver.SetResult(c);
            await polled.Task;
            await c.SendAsync(4);
        }, "sender");

        RunningScheduler bRun = RunningScheduler.Start(b);
        RunningScheduler aRun = RunningScheduler.Start(a);
        ReleaseWhenStuck(a, release, aRun, bRun);
        Assert.Equal(4, got);
    }

    [Fact]
    public void PartnerPumpedByRunFor_IsNotADeadlock()
    {
        using var a = new Scheduler();
        using var pumped = new Scheduler();
        using var release = new ManualResetEventSlim();
        int got = 0;
        a.Go(async () =>
        {
            var result = new Channel<int> { Name = "result" };
            pumped.Go(async () =>
            {
                await YieldUntil(release);
                await result.SendAsync(9);
            }, "frame-work");
            got = await result.ReceiveAsync();
        }, "waiter");

        RunningScheduler aRun = RunningScheduler.Start(a);
        var host = new Thread(() =>
        {
            // A host loop: frames of RunFor, never inside Run().
            while (pumped.RunFor(TimeSpan.FromMilliseconds(1)) || pumped.Tasklets.Count == 0)
            {
                if (aRun.IsDone)
                {
                    return;
                }
            }
        })
        { IsBackground = true };
        host.Start();
        ReleaseWhenStuck(a, release, aRun);
        Assert.True(host.Join(RunningScheduler.Guard));
        Assert.Equal(9, got);
    }

    [Fact]
    public void JoinOfATaskletOnABusyScheduler_IsNotADeadlock()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        using var release = new ManualResetEventSlim();
        var work = b.Go(async () =>
        {
            await YieldUntil(release);
            return 3;
        }, "work");
        int got = 0;
        a.Go(async () => got = await work, "joiner");
        RunningScheduler bRun = RunningScheduler.Start(b);
        RunningScheduler aRun = RunningScheduler.Start(a);
        ReleaseWhenStuck(a, release, aRun, bRun);
        Assert.Equal(3, got);
    }

    [Fact]
    public void ExternalParties_WhileOtherSchedulersRunAndIdle_AreNotDeadlocks()
    {
        // Each kind of party the detector cannot see, with a busy and an idle scheduler elsewhere in the process.
        using var busy = new Scheduler();
        using var idle = new Scheduler();
        using var stopBusy = new ManualResetEventSlim();
        busy.Go(async () =>
        {
            while (!stopBusy.IsSet)
            {
                await Tasklet.Yield();
            }
        }, "busy");
        Tasklet sleeping = idle.Go(async () => await Tasklet.Sleep(TimeSpan.FromHours(1)), "idle");
        RunningScheduler busyRun = RunningScheduler.Start(busy);
        RunningScheduler idleRun = RunningScheduler.Start(idle);

        using var s = new Scheduler();
        var fedByThread = new Channel<int> { Name = "thread" };
        var fedByPool = new Channel<int> { Name = "pool" };
        var released = new AsyncSemaphore(0) { Name = "released" };
        var sum = 0;
        s.Go(async () =>
        {
            int value = await fedByThread.ReceiveAsync();
            sum += value;
        }, "os-thread");
        s.Go(async () =>
        {
            int value = await fedByPool.ReceiveAsync();
            sum += value;
        }, "pool");
        s.Go(async () =>
        {
            await released.WaitAsync();
            sum += 100;
        }, "semaphore");
        s.Go(async () =>
        {
            await Task.Delay(1); // a foreign await (a timer of the pool)
            sum += 1000;
        }, "io");
        s.Go(async () =>
        {
            int value = await Tasklet.RunInThread(_ => 10000);
            sum += value;
        }, "thread-work");
        IDisposable hold = s.KeepAlive();
        RunningScheduler run = RunningScheduler.Start(s);
        var thread = new Thread(() =>
        {
            fedByThread.Send(1);
            hold.Dispose();
        });
        thread.Start();
        _ = Task.Run(async () =>
        {
            await fedByPool.SendAsync(10);
            released.Release();
        });

        Assert.Null(run.Join());
        Assert.True(thread.Join(RunningScheduler.Guard));
        Assert.Equal(11111, sum);
        stopBusy.Set();
        Assert.Null(busyRun.Join());
        sleeping.Kill();
        Assert.Null(idleRun.Join());
    }

    // A partner's work that touches nothing of the group's until the test releases it.
    private static async Task YieldUntil(ManualResetEventSlim release)
    {
        while (!release.IsSet)
        {
            await Tasklet.Yield();
        }
    }

    // Once `stuck` has been judged (a false deadlock would be on its way), releases the partner; each run then ends
    // without an exception.
    private static void ReleaseWhenStuck(Scheduler stuck, ManualResetEventSlim release, params RunningScheduler[] runs)
    {
        RunningScheduler.WaitUntilStuck(stuck);
        release.Set();
        foreach (RunningScheduler run in runs)
        {
            Assert.Null(run.Join());
        }
    }
}
