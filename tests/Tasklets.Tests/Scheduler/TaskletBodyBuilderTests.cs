using System.Reflection;
using Tasklets.Internal;
using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Scheduling;

/// <summary>
/// The contract of the library's tasklet body builder (<see cref="TaskletTask"/>; docs/semantics.md, "Tasklet bodies
/// on the library's builder (issue 17)"): which lambdas bind to it, what an async TaskletTask method does outside a
/// body, how a body's outcome reaches the tasklet, how its ExecutionContext flows, that it never leaves its scheduler,
/// and that its fast path stores the body's box in the tasklet's waiter with no continuation delegate.
/// </summary>
public class TaskletBodyBuilderTests
{
    private static readonly AsyncLocal<string?> s_value = new();

    private static readonly FieldInfo s_body = typeof(Tasklet).GetField("_body", BindingFlags.Instance | BindingFlags.NonPublic)!;
    // The body's foreign continuation lives in its tasklet's cold state (made at the first foreign await).
    private static readonly FieldInfo s_cold = typeof(Tasklet).GetField("_cold", BindingFlags.Instance | BindingFlags.NonPublic)!;

    private static Action? ForeignContinuationOf(TaskletBodyBox box) => ((TaskletColdState?)s_cold.GetValue(box.Owner))?.BodyForeignContinuation;

    // ---------------------------------------------------------------- binding

    [Fact]
    public void SchedulerGo_AsyncLambda_BindsToTaskletTask_AndParksAsATaskletBodyBox()
    {
        using var s = SchedulerExtensions.Deterministic();
        var gate = new Channel<int>();
        Tasklet t = s.Go(async () => { await gate.ReceiveAsync(); });
        Assert.IsType<Func<TaskletTask>>(BodyOf(t)); // read before the start step takes it
        s.RunUntilIdle();
        Assert.IsAssignableFrom<TaskletBodyBox>(t._waiter.AwaiterForDebugger);
        t.Kill();
        s.Run();
    }

    [Fact]
    public void TaskletGo_AsyncLambda_BindsToTaskletTask()
    {
        using var s = SchedulerExtensions.Deterministic();
        Type? bound = null;
        s.Go(async () =>
        {
            Tasklet child = Tasklet.Go(async () => await Tasklet.Yield());
            bound = BodyOf(child)?.GetType();
            await child;
        });
        s.Run();
        Assert.Equal(typeof(Func<TaskletTask>), bound);
    }

    [Fact]
    public void Go_AsyncLambdaWithResult_BindsToTaskletTaskOfT_AndTheTaskletGivesTheResult()
    {
        using var s = SchedulerExtensions.Deterministic();
        var gate = new Channel<int>();
        Tasklet<int> fromScheduler = s.Go(async () => await gate.ReceiveAsync() + 1);
        Tasklet<string>? fromTasklet = null;
        Type? boundInTasklet = null;
        s.Go(async () =>
        {
            fromTasklet = Tasklet.Go(async () =>
            {
                await Tasklet.Yield();
                return "child";
            });
            boundInTasklet = BodyOf(fromTasklet)?.GetType();
            await gate.SendAsync(41);
        });
        Assert.IsType<Func<TaskletTask<int>>>(BodyOf(fromScheduler));
        s.Run();
        Assert.Equal(typeof(Func<TaskletTask<string>>), boundInTasklet);
        Assert.Equal(42, fromScheduler.Result);
        Assert.Equal("child", fromTasklet!.Result);
    }

    [Fact]
    public void Go_MethodGroupReturningTask_StillBindsToFuncOfTask_AndRunsOnTheRuntimesBuilder()
    {
        using var s = SchedulerExtensions.Deterministic();
        var gate = new Channel<int>();
        var bodies = new TaskBodies(gate);
        Tasklet t = s.Go(bodies.ReceiveOnce);
        Tasklet<int> withResult = s.Go(bodies.ReceiveAndReturn);
        Assert.IsType<Func<Task>>(BodyOf(t));
        Assert.IsType<Func<Task<int>>>(BodyOf(withResult));
        s.RunUntilIdle();
        // The runtime's state machine box, not the library's.
        Assert.NotNull(t._waiter.AwaiterForDebugger);
        Assert.IsNotAssignableFrom<TaskletBodyBox>(t._waiter.AwaiterForDebugger);
        s.Go(async () =>
        {
            await gate.SendAsync(1);
            await gate.SendAsync(7);
        });
        s.Run();
        Assert.Equal(7, withResult.Result);
    }

    // ---------------------------------------------------------------- outside a body

    [Fact]
    public void AsyncTaskletTaskMethod_CalledDirectly_ThrowsInvalidOperationSayingToWriteAsyncTask()
    {
        var e = Assert.Throws<InvalidOperationException>(() => HelperWrittenAsTaskletTask());
        Assert.Contains("async Task or async ValueTask", e.Message, StringComparison.Ordinal);
        Assert.Contains("TaskletTask", e.Message, StringComparison.Ordinal);

        var withResult = Assert.Throws<InvalidOperationException>(() => HelperWrittenAsTaskletTaskOfT());
        Assert.Contains("async Task or async ValueTask", withResult.Message, StringComparison.Ordinal);
        Assert.Contains("TaskletTask<T>", withResult.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AsyncTaskletTaskMethod_CalledFromInsideABody_Throws_TheStartMarkIsTheSchedulersOnly()
    {
        // Inside a tasklet the scheduler is current, but the mark was taken by this body's own start: a nested call
        // must not claim the running tasklet (it would complete that tasklet with the helper's outcome).
        using var s = SchedulerExtensions.Deterministic();
        Exception? direct = null;
        Exception? directOfT = null;
        bool ranOn = false;
        Tasklet t = s.Go(async () =>
        {
            await Tasklet.Yield();
            direct = Record.Exception(() => HelperWrittenAsTaskletTask());
            directOfT = Record.Exception(() => HelperWrittenAsTaskletTaskOfT());
            await Tasklet.Yield();
            ranOn = true;
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(direct);
        Assert.IsType<InvalidOperationException>(directOfT);
        Assert.True(ranOn);
        Assert.Null(t.Exception);
    }

    [Fact]
    public void Go_DelegateReturningDefaultTaskletTask_FailsTheTaskletWithInvalidOperation()
    {
        using var s = SchedulerExtensions.Deterministic();
        Tasklet t = s.Go(() => default(TaskletTask));
        Tasklet<int> withResult = s.Go(() => default(TaskletTask<int>));
        Exception? joined = null;
        Exception? joinedOfT = null;
        s.Go(async () =>
        {
            joined = await Record.ExceptionAsync(async () => await t);
            joinedOfT = await Record.ExceptionAsync(async () => await withResult);
        });
        s.Run();
        Assert.IsType<InvalidOperationException>(joined);
        Assert.IsType<InvalidOperationException>(joinedOfT);
        Assert.IsType<InvalidOperationException>(t.Exception);
        // Used to throw InvalidCastException: the failed start stored a plain faulted Task, and Result casts to Task<T>.
        Assert.IsType<InvalidOperationException>(Record.Exception(() => withResult.Result));
    }

    // ---------------------------------------------------------------- outcome

    [Fact]
    public void Body_ThrowingBeforeOrAfterItsFirstSuspension_FaultsTheTasklet_AndJoinRethrows()
    {
        using var s = SchedulerExtensions.Deterministic();
        bool fail = true;
        Tasklet before = s.Go(async () =>
        {
            if (fail)
            {
                throw new FormatException("before");
            }

            await Tasklet.Yield();
        });
        Tasklet after = s.Go(async () =>
        {
            await Tasklet.Yield();
            throw new FormatException("after");
        });
        Exception? joinedBefore = null;
        Exception? joinedAfter = null;
        Exception? joinAsyncAfter = null;
        s.Go(async () =>
        {
            joinedBefore = await Record.ExceptionAsync(async () => await before);
            joinedAfter = await Record.ExceptionAsync(async () => await after);
            joinAsyncAfter = await Record.ExceptionAsync(async () => await after.JoinAsync());
        });
        s.Run();
        Assert.Equal("before", Assert.IsType<FormatException>(joinedBefore).Message);
        Assert.Equal("after", Assert.IsType<FormatException>(joinedAfter).Message);
        Assert.Same(joinedAfter, joinAsyncAfter);
        Assert.Same(joinedBefore, before.Exception);
        Assert.Equal(TaskletState.Dead, after.State);
    }

    [Fact]
    public void Body_ThrowingAndNotJoined_IsReportedByRun()
    {
        using var s = SchedulerExtensions.Deterministic();
        s.Go(async () =>
        {
            await Tasklet.Yield();
            throw new FormatException("unobserved");
        });
        var e = Assert.Throws<AggregateException>(() => s.Run());
        Assert.IsType<FormatException>(Assert.Single(e.InnerExceptions));
    }

    [Fact]
    public void Kill_WhileParkedOnReceive_RunsFinally_AndTheTaskletEndsKilledWithTaskletExitException()
    {
        using var s = SchedulerExtensions.Deterministic();
        var never = new Channel<int>();
        bool finallyRan = false;
        Tasklet victim = s.Go(async () =>
        {
            try
            {
                await never.ReceiveAsync();
            }
            finally
            {
                finallyRan = true;
            }
        });
        Exception? joined = null;
        s.Go(async () =>
        {
            await Tasklet.Yield(); // the victim parks
            Assert.Equal(TaskletState.Blocked, victim.State);
            victim.Kill();
            joined = await Record.ExceptionAsync(async () => await victim);
        });
        s.Run(); // a killed tasklet is cancelled, not failed: nothing is reported
        Assert.True(finallyRan);
        Assert.Equal(TaskletState.Dead, victim.State);
        Assert.False(victim.IsAlive);
        Assert.IsType<TaskletExitException>(victim.Exception);
        Assert.IsType<TaskletExitException>(joined);
        Assert.Equal(0, never.Balance);
    }

    // ---------------------------------------------------------------- Tasklet<T>

    [Fact]
    public void TaskletOfT_OnTheBuilder_ResultAfterSuspensions()
    {
        using var s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>(1);
        Tasklet<int> t = s.Go(async () =>
        {
            int sum = 0;
            for (int i = 0; i < 3; i++)
            {
                sum += await c.ReceiveAsync();
                await Tasklet.Yield();
            }

            return sum;
        });
        int joined = 0;
        s.Go(async () =>
        {
            for (int i = 1; i <= 3; i++)
            {
                await c.SendAsync(i * 10);
            }

            joined = await t;
        });
        s.Run();
        Assert.Equal(60, joined);
        Assert.Equal(60, t.Result);
    }

    [Fact]
    public void TaskletOfT_OnTheBuilder_Exception_ResultAndJoinRethrowIt()
    {
        using var s = SchedulerExtensions.Deterministic();
        bool fail = true;
        Tasklet<int> before = s.Go(async () =>
        {
            if (fail)
            {
                throw new FormatException("before");
            }

            await Tasklet.Yield();
            return 1;
        });
        Tasklet<int> after = s.Go(async () =>
        {
            await Tasklet.Yield();
            if (fail)
            {
                throw new FormatException("after");
            }

            return 2;
        });
        Exception? joinedBefore = null;
        Exception? joinedAfter = null;
        s.Go(async () =>
        {
            joinedBefore = await Record.ExceptionAsync(async () => await before);
            joinedAfter = await Record.ExceptionAsync(async () => await after);
        });
        s.Run();
        Assert.Equal("before", Assert.IsType<FormatException>(joinedBefore).Message);
        Assert.Equal("after", Assert.IsType<FormatException>(joinedAfter).Message);
        Assert.Same(joinedBefore, Record.Exception(() => before.Result));
        Assert.Same(joinedAfter, Record.Exception(() => after.Result));
    }

    [Fact]
    public void TaskletOfT_OnTheBuilder_KilledWhileParked_ResultAndJoinThrowTaskletExit()
    {
        using var s = SchedulerExtensions.Deterministic();
        var never = new Channel<int>();
        bool finallyRan = false;
        Tasklet<int> victim = s.Go(async () =>
        {
            try
            {
                return await never.ReceiveAsync();
            }
            finally
            {
                finallyRan = true;
            }
        });
        Exception? joined = null;
        s.Go(async () =>
        {
            await Tasklet.Yield();
            victim.Kill();
            joined = await Record.ExceptionAsync(async () => await victim);
        });
        s.Run();
        Assert.True(finallyRan);
        Assert.IsType<TaskletExitException>(joined);
        Assert.IsType<TaskletExitException>(Record.Exception(() => victim.Result));
    }

    [Fact]
    public void TaskletOfT_DelegateThrowingBeforeStartingTheBody_ResultRethrowsTheFailure()
    {
        // A delegate that does work before it calls an async TaskletTask<T> method, and throws there: the failure is
        // the tasklet's, as it would be for a Func<Task<T>> body.
        using var s = SchedulerExtensions.Deterministic();
        bool fail = true;
        Tasklet<int> t = s.Go(() => fail ? throw new FormatException("in the delegate") : default(TaskletTask<int>));
        Exception? joined = null;
        s.Go(async () => joined = await Record.ExceptionAsync(async () => await t));
        s.Run();
        Assert.IsType<FormatException>(joined);
        Assert.IsType<FormatException>(Record.Exception(() => t.Result)); // used to be InvalidCastException, as above
    }

    // ---------------------------------------------------------------- ExecutionContext

    [Fact]
    public void Body_StartsInTheSpawnersContext_FromOutsideAndFromATasklet()
    {
        using var s = SchedulerExtensions.Deterministic();
        var seen = new List<string?>();
        s_value.Value = "outside";
        try
        {
            s.Go(async () =>
            {
                seen.Add(s_value.Value);
                s_value.Value = "parent";
                Tasklet child = Tasklet.Go(async () =>
                {
                    seen.Add(s_value.Value);
                    await Tasklet.Yield();
                    seen.Add(s_value.Value);
                });
                await child;
            });
        }
        finally
        {
            s_value.Value = null;
        }

        s.Run();
        Assert.Equal(["outside", "parent", "parent"], seen);
        Assert.Null(s_value.Value);
    }

    [Fact]
    public void Body_AsyncLocalSetInside_IsSeenAfterEveryLibraryAwait()
    {
        using var s = SchedulerExtensions.Deterministic();
        var seen = new List<string?>();
        var c = new Channel<int>();
        var d = new Channel<int>();
        s.Go(async () =>
        {
            s_value.Value = "body";
            await Tasklet.Yield();
            seen.Add("yield:" + s_value.Value);
            await c.ReceiveAsync(); // parks: the partner sends later
            seen.Add("receive:" + s_value.Value);
            await c.SendAsync(2); // parks: the partner receives later
            seen.Add("send:" + s_value.Value);
            await Select.WaitAsync(d.ReceiveCase(), c.ReceiveCase()); // parks
            seen.Add("select:" + s_value.Value);
            await Tasklet.Checkpoint();
            seen.Add("checkpoint:" + s_value.Value);
        });
        s.Go(async () =>
        {
            await Tasklet.Yield();
            await Tasklet.Yield();
            await c.SendAsync(1);
            await Tasklet.Yield();
            await c.ReceiveAsync();
            await Tasklet.Yield();
            await d.SendAsync(3);
        });
        s.Run();
        Assert.Equal(["yield:body", "receive:body", "send:body", "select:body", "checkpoint:body"], seen);
        Assert.Null(s_value.Value);
    }

    [Fact]
    public void Body_AsyncLocalSetInside_IsSeenAfterForeignAwaits()
    {
        using var s = new Scheduler();
        var seen = new List<string?>();
        var fromThread = new TaskCompletionSource(TaskCreationOptions.None);
        var waiting = new Channel<int>(1);
        Tasklet t = s.Go(async () =>
        {
            s_value.Value = "body";
            await Task.Delay(1);
            seen.Add("delay:" + s_value.Value);
#pragma warning disable TASKLET001 // the await under test: a body on the builder stays on its scheduler anyway
            await Task.Delay(1).ConfigureAwait(false);
#pragma warning restore TASKLET001
            seen.Add("delay-cf:" + s_value.Value);
            await Task.Run(() => { });
            seen.Add("run:" + s_value.Value);
            Assert.True(waiting.TrySend(1)); // in the same step as the await below: the partner runs after it suspended
            await fromThread.Task;
            seen.Add("tcs:" + s_value.Value);
        });

        // Once the body waits on the completion source, complete it on a thread of its own: the body's await is
        // pending when it completes, so its continuation runs on that thread.
        s.Go(() => CompleteOnAThreadWhenSignalled(waiting, fromThread));
        s.Run();
        Assert.Equal(["delay:body", "delay-cf:body", "run:body", "tcs:body"], seen);
        Assert.Null(t.Exception);
        Assert.Null(s_value.Value);
    }

    [Fact]
    public void Body_AsyncLocal_FlowsIntoANestedAsyncTaskHelper_AndTheHelpersOwnChangeStaysInIt()
    {
        using var s = SchedulerExtensions.Deterministic();
        var seen = new List<string?>();
        var c = new Channel<int>(1);
        s.Go(async () =>
        {
            s_value.Value = "body";
            await NestedHelper(c, seen);
            seen.Add("after-helper:" + s_value.Value);
            await Tasklet.Yield();
            seen.Add("after-yield:" + s_value.Value);
        });
        s.Run();
        Assert.Equal(["helper-start:body", "helper-after-awaits:helper", "after-helper:body", "after-yield:body"], seen);
        Assert.Null(s_value.Value);
    }

    [Fact]
    public void Body_AsyncLocalSetAfterAResume_IsNotSeenByAnotherTasklet_NorByTheRunCaller()
    {
        // The value is set in a resumed step (not the start step, whose context ExecutionContext.Run restores): only
        // the builder's own restore of the loop context keeps it from the next step.
        using var s = SchedulerExtensions.Deterministic();
        var seenByOther = new List<string?>();
        var seenBySetter = new List<string?>();
        s.Go(async () =>
        {
            await Tasklet.Yield();
            s_value.Value = "mine";
            await Tasklet.Yield();
            seenBySetter.Add(s_value.Value);
            s_value.Value = "mine again";
        });
        s.Go(async () =>
        {
            for (int i = 0; i < 4; i++)
            {
                await Tasklet.Yield();
                seenByOther.Add(s_value.Value);
            }
        });
        s.RunUntilIdle();
        Assert.Null(s_value.Value); // the thread that ran the steps, between host calls
        s.Run();
        Assert.Equal(["mine"], seenBySetter);
        Assert.Equal([null, null, null, null], seenByOther);
        Assert.Null(s_value.Value);
    }

    [Fact]
    public void Body_AsyncLocalSetAfterAResume_IsNotSeenByAFuncOfTaskTasklet()
    {
        using var s = SchedulerExtensions.Deterministic();
        var seenByOther = new List<string?>();
        s.Go(async () =>
        {
            await Tasklet.Yield();
            s_value.Value = "mine";
            await Tasklet.Yield();
        });
        Func<Task> onTheRuntimesBuilder = async () =>
        {
            await Tasklet.Yield();
            seenByOther.Add(s_value.Value);
            await Tasklet.Yield();
            seenByOther.Add(s_value.Value);
        };
        s.Go(onTheRuntimesBuilder);
        s.Run();
        Assert.Equal([null, null], seenByOther);
        Assert.Null(s_value.Value);
    }

    // ---------------------------------------------------------------- foreign awaits stay on the scheduler

    [Fact]
    public void Body_AfterForeignAwaits_RunsOnItsSchedulersThreadAsItsTasklet()
    {
        using var s = new Scheduler();
        int runThread = Environment.CurrentManagedThreadId;
        var where = new List<(string Await, int Thread, bool IsCurrent)>();
        var fromThread = new TaskCompletionSource(TaskCreationOptions.None);
        var fromThreadConfigured = new TaskCompletionSource(TaskCreationOptions.None);
        var waiting = new Channel<int>(1);
        Tasklet? self = null;
        self = s.Go(async () =>
        {
            where.Add(("start", Environment.CurrentManagedThreadId, ReferenceEquals(Tasklet.Current, self)));
            await Task.Run(() => { });
            where.Add(("Task.Run", Environment.CurrentManagedThreadId, ReferenceEquals(Tasklet.Current, self)));
#pragma warning disable TASKLET001 // the await under test: a body on the builder stays on its scheduler anyway
            await Task.Run(() => { }).ConfigureAwait(false);
#pragma warning restore TASKLET001
            where.Add(("Task.Run cf", Environment.CurrentManagedThreadId, ReferenceEquals(Tasklet.Current, self)));
#pragma warning disable TASKLET001 // the await under test: a body on the builder stays on its scheduler anyway
            await Task.Delay(1).ConfigureAwait(false);
#pragma warning restore TASKLET001
            where.Add(("Delay cf", Environment.CurrentManagedThreadId, ReferenceEquals(Tasklet.Current, self)));
            Assert.True(waiting.TrySend(1)); // in the same step as the await below: the partner runs after it suspended
            await fromThread.Task;
            where.Add(("tcs", Environment.CurrentManagedThreadId, ReferenceEquals(Tasklet.Current, self)));
            Assert.True(waiting.TrySend(2));
#pragma warning disable TASKLET001 // the await under test: a body on the builder stays on its scheduler anyway
            await fromThreadConfigured.Task.ConfigureAwait(false);
#pragma warning restore TASKLET001
            where.Add(("tcs cf", Environment.CurrentManagedThreadId, ReferenceEquals(Tasklet.Current, self)));
        });
        s.Go(async () =>
        {
            // Each completion source is completed on a thread of its own once the body is waiting on it.
            await CompleteOnAThreadWhenSignalled(waiting, fromThread);
            await CompleteOnAThreadWhenSignalled(waiting, fromThreadConfigured);
        });
        s.Run();
        Assert.Null(self.Exception);
        Assert.Equal(6, where.Count);
        Assert.All(where, w =>
        {
            Assert.Equal(runThread, w.Thread);
            Assert.True(w.IsCurrent, w.Await);
        });
    }

    [Fact]
    public void Body_CompletionSourceCompletedOnAnotherThreadAfterRunOnceWentIdle_ResumesOnlyWhenTheSchedulerRunsAgain()
    {
        using var s = new Scheduler();
        var tcs = new TaskCompletionSource(TaskCreationOptions.None);
        int runThread = Environment.CurrentManagedThreadId;
        int resumedOn = -1;
        bool wasCurrent = false;
        Tasklet? self = null;
        self = s.Go(async () =>
        {
#pragma warning disable TASKLET001 // the await under test: a body on the builder stays on its scheduler anyway
            await tcs.Task.ConfigureAwait(false);
#pragma warning restore TASKLET001
            resumedOn = Environment.CurrentManagedThreadId;
            wasCurrent = ReferenceEquals(Tasklet.Current, self);
        });
        s.RunUntilIdle(); // the body waits on tcs
        var completer = new Thread(() => tcs.SetResult()); // the continuation runs on this thread, which must post it
        completer.Start();
        completer.Join();
        Assert.Equal(-1, resumedOn);
        s.Run();
        Assert.Equal(runThread, resumedOn);
        Assert.True(wasCurrent);
    }

    // ---------------------------------------------------------------- the fast path

    [Fact]
    public void FastPath_ParkedOnReceiveSendAndSelect_TheWaiterHoldsTheBoxAndNoContinuationDelegateExists()
    {
        using var s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>();
        var d = new Channel<int>();
        var e = new Channel<int>();
        var f = new Channel<int>();
        Tasklet receiver = s.Go(async () => await c.ReceiveAsync());
        Tasklet sender = s.Go(async () => await d.SendAsync(1));
        Tasklet selector = s.Go(async () => await Select.WaitAsync(e.ReceiveCase(), f.SendCase(6)));
        s.RunUntilIdle();
        Assert.Equal(TaskletState.Blocked, receiver.State);
        AssertParkedOnTheFastPath(receiver);
        AssertParkedOnTheFastPath(sender);
        AssertParkedOnTheFastPath(selector);

        s.Go(async () =>
        {
            await d.ReceiveAsync(); // the sender's
            await c.SendAsync(2); // the receiver's
        });
        s.RunUntilIdle();
        Assert.False(receiver.IsAlive);
        Assert.False(sender.IsAlive);
        AssertParkedOnTheFastPath(selector); // untouched by the other waits' wake-ups
        selector.Kill();
        s.Run();
    }

    [Fact]
    public void FastPath_ParkedAgainAfterAResume_StillNoContinuationDelegate()
    {
        using var s = SchedulerExtensions.Deterministic();
        var c = new Channel<int>();
        Tasklet receiver = s.Go(async () =>
        {
            while (true)
            {
                await c.ReceiveAsync();
            }
        });
        s.Go(async () =>
        {
            for (int i = 0; i < 3; i++)
            {
                await c.SendAsync(i);
            }
        });
        s.RunUntilIdle();
        AssertParkedOnTheFastPath(receiver);
        receiver.Kill();
        s.Run();
    }

    [Fact]
    public void FastPath_Yield_TheWaiterHoldsTheBoxWhileTheTaskletIsQueued()
    {
        using var s = SchedulerExtensions.Deterministic();
        object? stored = null;
        object? foreign = "unset";
        Tasklet? yielder = null;
        yielder = s.Go(async () => await Tasklet.Yield());
        s.Go(async () =>
        {
            // FIFO: runs after the yielder's first step, before its resume.
            stored = yielder._waiter.AwaiterForDebugger;
            foreign = stored is TaskletBodyBox box ? ForeignContinuationOf(box) : "no box";
            await Tasklet.Yield();
        });
        s.Run();
        Assert.IsAssignableFrom<TaskletBodyBox>(stored);
        Assert.Null(foreign);
    }

    [Fact]
    public void FastPath_ForeignAwait_UsesTheForeignContinuation_AndALaterLibraryWaitStillStoresTheBox()
    {
        using var s = new Scheduler();
        var c = new Channel<int>();
        Tasklet t = s.Go(async () =>
        {
            await Task.Run(() => { });
            await c.ReceiveAsync();
        });
        s.Go(async () =>
        {
            while (t.State != TaskletState.Blocked || t._waiter.AwaiterForDebugger is null)
            {
                await Tasklet.Yield();
            }

            var box = Assert.IsAssignableFrom<TaskletBodyBox>(t._waiter.AwaiterForDebugger);
            Assert.NotNull(ForeignContinuationOf(box)); // made for Task.Run's awaiter
            await c.SendAsync(1);
        });
        s.Run();
        Assert.Null(t.Exception);
    }

    [Fact]
    public void PingPong_TwoBuilderBodies_AllocateNothingInSteadyState()
    {
        using var s = new Scheduler();
        long allocated = -1;
        int mismatches = 0;
        var ping = new Channel<int>();
        var pong = new Channel<int>();
        Tasklet echo = s.Go(async () =>
        {
            while (true)
            {
                await pong.SendAsync(await ping.ReceiveAsync());
            }
        });
        s.Go(async () =>
        {
            // One loop, so that no new async method (and its box) starts inside the measurement.
            long before = 0;
            for (int i = 0; i < 11_000; i++)
            {
                if (i == 1_000)
                {
                    before = GC.GetAllocatedBytesForCurrentThread(); // after warm-up: nodes cached, run queue grown
                }

                await ping.SendAsync(i); // the echo body is parked on receive: each handoff switches
                if (await pong.ReceiveAsync() != i)
                {
                    mismatches++; // not Assert.Equal: it allocates inside the measured loop
                }
            }

            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            echo.Kill();
        });
        s.Run();
        Assert.Equal(0, mismatches);
        Assert.Equal(0, allocated);
    }

    // ---------------------------------------------------------------- helpers

    private static Delegate? BodyOf(Tasklet tasklet) => (Delegate?)s_body.GetValue(tasklet);

    private static void AssertParkedOnTheFastPath(Tasklet tasklet)
    {
        var box = Assert.IsAssignableFrom<TaskletBodyBox>(tasklet._waiter.AwaiterForDebugger);
        Assert.Same(tasklet, box.Owner);
        Assert.Null(ForeignContinuationOf(box));
    }

    private static async TaskletTask HelperWrittenAsTaskletTask() => await Tasklet.Yield();

    private static async TaskletTask<int> HelperWrittenAsTaskletTaskOfT()
    {
        await Tasklet.Yield();
        return 1;
    }

    private static async Task NestedHelper(Channel<int> c, List<string?> seen)
    {
        seen.Add("helper-start:" + s_value.Value);
        s_value.Value = "helper";
        await Tasklet.Yield();
        await c.SendAsync(1);
        await c.ReceiveAsync();
        await Task.Yield(); // a foreign await inside the helper: posted through the tasklet's context
        seen.Add("helper-after-awaits:" + s_value.Value);
    }

    // From a tasklet: parks until the body signals (in the step in which it awaits the source), then completes the
    // source on a new OS thread. It parks instead of polling, so that a body gone wrong ends the run (a failure, or a
    // deadlock report) instead of leaving it spinning.
    private static async Task CompleteOnAThreadWhenSignalled(Channel<int> signal, TaskCompletionSource source)
    {
        await signal.ReceiveAsync();

        var completer = new Thread(() => source.SetResult());
        completer.Start();
    }

    /// <summary>Bodies written as ordinary Task-returning methods, for method-group binding.</summary>
    private sealed class TaskBodies(Channel<int> gate)
    {
        public async Task ReceiveOnce() => await gate.ReceiveAsync();

        public async Task<int> ReceiveAndReturn() => await gate.ReceiveAsync();
    }
}
