namespace Tasklets.Internal;

/// <summary>Every user-facing message in one place: each says what happened and what to do instead.</summary>
internal static class Strings
{
    public const string NegativeCapacity =
        "Capacity must be 0 (unbuffered) or positive (buffered). For a channel whose sends never block, use Channel<T>.CreateUnbounded().";

    public const string BadPreference = "Preference must be Neither, Receiver or Sender.";

    public const string StaleAwait =
        "This ValueTask was already awaited, or belongs to an earlier operation. Await each ValueTask returned by Tasklets exactly once.";

    public static string TaskletTaskOutsideBody(string taskType) =>
        $"An async method returning {taskType} was called, but {taskType} is only the return type of tasklet bodies: the scheduler starts them (Tasklet.Go(async () => ...), Scheduler.Go). Declare helper methods as async Task or async ValueTask and await them from the body.";

    public const string TaskletTaskNotStarted =
        "The tasklet body returned a TaskletTask without running an async method: TaskletTask values come only from async lambdas or methods. Write the body as Go(async () => ...).";

    public const string WaiterBusy =
        "Internal error: a wait began on a waiter that is still in another wait. Please report it with the stack trace.";

    public const string ResumedUnclaimed =
        "Internal error: a wait was resumed that nobody ended. Please report it with the stack trace.";

    public const string NodeAlreadyQueued =
        "Internal error: a queue node was queued twice. Please report it with the stack trace.";

    public const string NodeNotQueued =
        "Internal error: a queue node was removed from a queue it is not in. Please report it with the stack trace.";

    public const string RunOnSchedulerThread =
        "This thread is running another scheduler's tasklets: a Run that waits here would stop all of them. Run the other scheduler on its own thread (new Thread(() => other.Run()).Start()), pump it with RunOnce, or await its tasklets instead.";

    public const string OperationCanceled = "The operation was canceled; it took no effect.";

    public const string AwaitedTwice =
        "This ValueTask is already being awaited. Await each ValueTask returned by Tasklets exactly once (call AsTask() to hand it to several awaiters).";

    public const string SendToTaskletContext =
        "Synchronous Send to a tasklet's SynchronizationContext from another thread is not supported: it would block that thread on the scheduler. Use Post.";

    public const string NegativeDelay = "The delay must be zero or positive, or Timeout.InfiniteTimeSpan.";

    public const string RunReentered =
        "This scheduler is already running on another thread or further up this thread's stack. A scheduler is driven by one Run call at a time.";

    public const string NestedRun =
        "Scheduler.Run was called from inside a tasklet of the same scheduler. Await the work instead (for example await tasklet.JoinAsync()).";

    public const string YieldedAcrossThreads = "A tasklet can only be resumed by its own scheduler.";

    public const string KillSelfInFinally = "The tasklet was killed.";

    public static string NotInTasklet(string member) =>
        $"{member} can only be called inside a tasklet (Tasklet.Current is null). Start the code with scheduler.Go(...) or Scheduler.Run(...), or use the Scheduler instance methods.{LeftSchedulerHint()}";

    public static string NoCurrentScheduler(string member) =>
        $"{member} needs a current scheduler: call it inside a tasklet, or call Go on a Scheduler instance.{LeftSchedulerHint()}";

    // On a thread-pool thread, the usual cause is code of a tasklet body that left its scheduler (issue 15).
    private static string LeftSchedulerHint() => Thread.CurrentThread.IsThreadPoolThread
        ? " This runs on a thread-pool thread: if it is a tasklet's code, it has left its scheduler, most likely through ConfigureAwait(false) (or Task.Run) earlier in the body or in a method it awaits. Remove ConfigureAwait(false) from tasklet code."
        : "";

    public static string BlockingInTasklet(string method, string asyncMethod) =>
        $"{method} blocks the calling thread, which here is a scheduler's thread: every tasklet of that scheduler would stop. Use 'await {asyncMethod}(...)' inside tasklets; the blocking {method} is for OS threads that are not tasklets.";

    public static string SendOnClosed(string channel) => $"Cannot send on {channel}: it is closed. The item was not delivered.";

    public static string ReceiveOnClosed(string channel) => $"Cannot receive from {channel}: it is closed and drained.";

    public static string CloseReserved(string channel) =>
        $"Cannot close {channel}: it is a view of a System.Threading.Channels reader (AsTaskletChannel), closed by its pump when the reader completes, so that no item the pump holds is lost. To stop it early, cancel the token given to AsTaskletChannel.";

    public static string AwaitedByAnother(Tasklet tasklet) =>
        $"An operation of tasklet {tasklet.Id} '{tasklet.Name}' was awaited outside that tasklet (by another tasklet or thread). Await each library ValueTask in the tasklet that started it; to hand a result to other code, await it there and pass the value (or use AsTask() inside the tasklet).";

    public static string ThrowToDead(Tasklet tasklet) => $"Cannot throw to tasklet {tasklet.Id} '{tasklet.Name}': it is dead.";

    public static string ResultNotAvailable(Tasklet tasklet) =>
        $"Tasklet {tasklet.Id} '{tasklet.Name}' has not finished. Await it (or JoinAsync) before reading Result.";

    public const string AllCasesDisabled =
        "Every case of this select is disabled (IsEnabled is false) and it has neither a timeout nor a cancellation token: it would wait forever. Enable a case, or end the loop once no case is enabled.";
}
