using System.Runtime.ExceptionServices;
using Tasklets.Internal;

namespace Tasklets;

// Facet: joins as .NET users expect them: WhenAll, WhenAny, AsTask (Task interop), JoinCase (select), and the detached
// join that TaskletGroup and AsTask build on.
// Relies on: Tasklet.Join.cs's protocol (a join registers under the JoinSource's gate unless it sees Ending there; the
// exception is written before Ending; a join of a dead tasklet observes it) and JoinSource's rule that a JoinNode takes
// and observes the failure while a JoinCase only learns of the death.
public partial class Tasklet
{
    /// <summary>
    /// Waits until every tasklet in <paramref name="tasklets"/> is dead, then rethrows their failures, as
    /// <see cref="Task.WhenAll(Task[])"/> does: one failure is rethrown as it is; several as an
    /// <see cref="AggregateException"/> of all of them (in array order); if none failed but some were killed, the
    /// <see cref="TaskletExitException"/> of the first killed one.
    /// </summary>
    /// <param name="tasklets">The tasklets; of any scheduler; duplicates are allowed; empty completes at once. Do not
    /// change the array while the wait is in progress.</param>
    /// <returns>Completes when all are dead.</returns>
    /// <remarks>
    /// A library wait (it joins the tasklets in turn): deadlock detection sees it and <see cref="Scheduler.Dump"/>
    /// names the tasklet it waits for; a kill, a timeout scope or <see cref="Tasklet.Throw"/> of the caller ends the
    /// wait (the tasklets go on). Every failure it rethrows counts as observed, so <see cref="Scheduler.Run()"/> does
    /// not report it again, and none is reported as unobserved while the wait is in progress (it will rethrow it).
    /// Costs nothing when all are dead already; otherwise one allocation (the async state) and, per tasklet, two
    /// interlocked operations (the hold on its failure's report).
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="tasklets"/> is null.</exception>
    /// <exception cref="ArgumentException">An element is null.</exception>
    /// <exception cref="InvalidOperationException">The calling tasklet is in the list: it would wait for itself.</exception>
    public static ValueTask WhenAll(params Tasklet[] tasklets) => WhenAll(default, tasklets);

    /// <summary>
    /// <see cref="WhenAll(Tasklet[])"/>, cancellable: cancelling the token ends the wait with an
    /// <see cref="OperationCanceledException"/> and leaves the tasklets running.
    /// </summary>
    /// <param name="cancellationToken">Cancels the wait (not the tasklets).</param>
    /// <param name="tasklets">The tasklets.</param>
    /// <returns>Completes when all are dead.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="tasklets"/> is null.</exception>
    /// <exception cref="ArgumentException">An element is null.</exception>
    /// <exception cref="InvalidOperationException">The calling tasklet is in the list.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public static ValueTask WhenAll(CancellationToken cancellationToken, params Tasklet[] tasklets)
    {
        Tasklet? current = CurrentOrNull;
        ValidateJoinList(tasklets, current, allowEmpty: true, nameof(WhenAll));
        current?.ThrowIfInterrupted();
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        // Lock-free reads of the life cycle: "dead" is final, so a tasklet read dead stays dead and its exception was
        // written before (WhenAllFailure); "alive" is a hint only, and the join decides under the join source's gate.
        for (int i = 0; i < tasklets.Length; i++)
        {
            if (tasklets[i].IsAlive)
            {
                return WhenAllCore(tasklets, i, cancellationToken);
            }
        }

        return WhenAllFailure(tasklets) is { } failure ? ValueTask.FromException(failure) : default;
    }

    // Joins the tasklets from the first alive one on; a tasklet that dies meanwhile is skipped at once (its join
    // completes synchronously). A join's exception that is the tasklet's own outcome is collected at the end; any
    // other is the caller's (kill, timeout, throw, cancellation) and ends the wait.
    // While it waits, it holds the report of every failure it will rethrow (issue 15): a tasklet that fails while the
    // wait is on a slower one is not reported as unobserved by its scheduler meanwhile. A wait ended by the caller's
    // interrupt releases the holds without observing, and the failures are reported then.
    private static async ValueTask WhenAllCore(Tasklet[] tasklets, int firstAlive, CancellationToken cancellationToken)
    {
        foreach (Tasklet tasklet in tasklets)
        {
            tasklet.HoldFailure();
        }

        try
        {
            for (int i = firstAlive; i < tasklets.Length; i++)
            {
                Tasklet tasklet = tasklets[i];
                try
                {
                    await tasklet.JoinAsync(cancellationToken);
                }
                catch (Exception e) when (ReferenceEquals(e, tasklet.Exception))
                {
                    // The tasklet's failure or kill: the join rethrows the very object it died with, and Exception is
                    // null while it is alive, so an interrupt of the caller (always a new object) never matches.
                    // Reported below, once every tasklet is dead, as Task.WhenAll does.
                }
            }

            if (WhenAllFailure(tasklets) is { } failure)
            {
                ExceptionDispatchInfo.Throw(failure);
            }
        }
        finally
        {
            // After WhenAllFailure marked the failures observed: a scheduler that sees a hold gone sees that too.
            foreach (Tasklet tasklet in tasklets)
            {
                tasklet.ReleaseFailureHold();
            }
        }
    }

    /// <summary>What WhenAll throws once all are dead, or null; marks every failure observed (it is rethrown).</summary>
    private static Exception? WhenAllFailure(Tasklet[] tasklets)
    {
        Exception? first = null;
        List<Exception>? several = null;
        Exception? killed = null;
        foreach (Tasklet tasklet in tasklets)
        {
            // Dead: the exception was written before the life cycle read Ending, and Exception reads the life cycle first.
            Exception? exception = tasklet.Exception;
            if (exception is null)
            {
                continue;
            }

            tasklet._observed = true;
            if (exception is TaskletExitException)
            {
                killed ??= exception;
            }
            else if (first is null)
            {
                first = exception;
            }
            else if (!ReferenceEquals(first, exception) && (several is null || !several.Contains(exception)))
            {
                (several ??= [first]).Add(exception);
            }
        }

        if (several is not null)
        {
            return new AggregateException($"{several.Count} of the {tasklets.Length} tasklet(s) awaited by Tasklet.WhenAll failed; see InnerExceptions.", several);
        }

        return first ?? killed;
    }

    /// <summary>
    /// Waits until one of <paramref name="tasklets"/> is dead and returns it (the first in the array if several are
    /// dead already). Does not throw its failure: read <see cref="Exception"/>, or await the returned tasklet, which
    /// completes at once and rethrows it (as <see cref="Task.WhenAny(Task[])"/> returns the task).
    /// </summary>
    /// <param name="tasklets">The tasklets; at least one, of any scheduler, at most 65,535.</param>
    /// <returns>The first tasklet to end.</returns>
    /// <remarks>
    /// A select over one <see cref="JoinCase"/> per tasklet: deadlock detection sees it, a kill, a timeout scope or
    /// <see cref="Tasklet.Throw"/> of the caller ends the wait. It does not observe the failure of the tasklet it
    /// returns: a failure nobody joins is still reported by <see cref="Scheduler.Run()"/>. Costs nothing when one is
    /// dead already; otherwise one case per tasklet, the case array and the async state.
    /// </remarks>
    /// <exception cref="ArgumentNullException"><paramref name="tasklets"/> is null.</exception>
    /// <exception cref="ArgumentException">The array is empty or too long, or an element is null.</exception>
    /// <exception cref="InvalidOperationException">The calling tasklet is in the list: it would wait for itself.</exception>
    public static ValueTask<Tasklet> WhenAny(params Tasklet[] tasklets) => WhenAny(default, tasklets);

    /// <summary><see cref="WhenAny(Tasklet[])"/>, cancellable: cancelling the token ends the wait with an <see cref="OperationCanceledException"/>.</summary>
    /// <param name="cancellationToken">Cancels the wait (not the tasklets).</param>
    /// <param name="tasklets">The tasklets; at least one.</param>
    /// <returns>The first tasklet to end.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="tasklets"/> is null.</exception>
    /// <exception cref="ArgumentException">The array is empty or too long, or an element is null.</exception>
    /// <exception cref="InvalidOperationException">The calling tasklet is in the list.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public static ValueTask<Tasklet> WhenAny(CancellationToken cancellationToken, params Tasklet[] tasklets)
    {
        Tasklet? current = CurrentOrNull;
        ValidateJoinList(tasklets, current, allowEmpty: false, nameof(WhenAny));
        if (tasklets.Length > Waiter.MaxRegistrations)
        {
            throw new ArgumentException($"Tasklet.WhenAny takes at most {Waiter.MaxRegistrations} tasklets (one select case each); got {tasklets.Length}. Split the list, or use a TaskletGroup.", nameof(tasklets));
        }

        current?.ThrowIfInterrupted();

        // Lock-free reads: "dead" is final, so returning a tasklet read dead is exact; "alive" is a hint, and the
        // select below decides under the join sources' gates (a case whose tasklet died meanwhile fires at once).
        foreach (Tasklet tasklet in tasklets)
        {
            if (!tasklet.IsAlive)
            {
                return new ValueTask<Tasklet>(tasklet);
            }
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<Tasklet>(cancellationToken);
        }

        var cases = new SelectCase[tasklets.Length];
        for (int i = 0; i < tasklets.Length; i++)
        {
            cases[i] = tasklets[i].JoinCase();
        }

        // The select is the claim: exactly one case fires, the other registrations are withdrawn when it ends.
        ValueTask<int> fired = Select.WaitAsync(cancellationToken, cases);
        return fired.IsCompletedSuccessfully ? new ValueTask<Tasklet>(tasklets[fired.Result]) : WhenAnyCore(fired, tasklets);
    }

    private static async ValueTask<Tasklet> WhenAnyCore(ValueTask<int> fired, Tasklet[] tasklets) => tasklets[await fired];

    private static void ValidateJoinList(Tasklet[] tasklets, Tasklet? current, bool allowEmpty, string member)
    {
        ArgumentNullException.ThrowIfNull(tasklets);
        if (!allowEmpty && tasklets.Length == 0)
        {
            throw new ArgumentException($"Tasklet.{member} needs at least one tasklet: with none, nothing could end the wait.", nameof(tasklets));
        }

        for (int i = 0; i < tasklets.Length; i++)
        {
            Tasklet? tasklet = tasklets[i];
            if (tasklet is null)
            {
                throw new ArgumentException($"Element {i} of the tasklets passed to Tasklet.{member} is null; pass only tasklets.", nameof(tasklets));
            }

            if (ReferenceEquals(tasklet, current))
            {
                ThrowHelper.ThrowInvalidOperation($"Tasklet {tasklet.Id} '{tasklet.Name}' passed itself to Tasklet.{member}: it would wait for its own end forever. Leave the calling tasklet out of the list.");
            }
        }
    }

    /// <summary>A select case that is ready once this tasklet is dead; reusable (see <see cref="Tasklets.JoinCase"/>).</summary>
    /// <returns>A new case; keep it to reuse it across selects.</returns>
    /// <remarks>Firing neither throws nor observes the tasklet's failure. Any thread.</remarks>
    public JoinCase JoinCase() => new(this, Cold.JoinSource ?? CreateJoinSource());

    /// <summary>
    /// A <see cref="Task"/> that completes when the tasklet is dead: successfully, faulted with its failure, or
    /// cancelled if it was killed (awaiting it then throws the <see cref="TaskletExitException"/>), for interop with
    /// <see cref="Task.WhenAll(Task[])"/> and other Task-based code.
    /// </summary>
    /// <returns>The task; it completes on the thread pool, not on the scheduler.</returns>
    /// <remarks>
    /// The failure counts as observed (it is handed to the task). As with <c>Task.Run</c>, a failure by an
    /// <see cref="OperationCanceledException"/> (someone else's token) makes the task Canceled, not Faulted: .NET
    /// treats an OperationCanceledException leaving a task as its cancellation. Inside a tasklet, prefer <c>await t</c> or
    /// <see cref="WhenAll(Tasklet[])"/>: awaiting a Task is a foreign await, which deadlock detection cannot see
    /// through. One allocation (the task). Any thread.
    /// </remarks>
    public Task AsTask() => AsTaskCore();

    // ConfigureAwait(false): the continuation only completes this task, so it runs on the thread pool and never
    // becomes a step of the calling tasklet (which may be gone by then).
    private async Task AsTaskCore() => await JoinDetached().ConfigureAwait(false);

    /// <summary>
    /// A join that nothing but this tasklet's end can end: it parks an external waiter that belongs to no tasklet, so
    /// a kill, a timeout or a throw of the caller does not reach it, and it takes no token. Observes the failure, as
    /// <see cref="JoinAsync"/> does (same protocol, another waiter). Inside a tasklet it is a foreign await (resumed
    /// through the tasklet's context): TaskletGroup waits for its killed children this way. Any thread.
    /// </summary>
    internal ValueTask JoinDetached(Tasklet? holder = null)
    {
        if (Volatile.Read(ref _lifecycle) >= LifeEnding)
        {
            return ObserveEnd();
        }

        // A holder (the group's tasklet) has the wait recorded as its own, uninterruptible: deadlock detection and
        // Dump see a library wait ("join of tasklet 5"), not a foreign await, while its interrupts pass it by.
        return JoinCore(ExternalWaiter.RentFor(holder, uninterruptible: true), null, default);
    }
}

/// <content>Task interop for tasklets with a result.</content>
public sealed partial class Tasklet<T>
{
    /// <summary>
    /// A <see cref="Task{TResult}"/> that completes when the tasklet is dead: with its result, faulted with its
    /// failure, or cancelled if it was killed; see <see cref="Tasklet.AsTask"/>.
    /// </summary>
    /// <returns>The task; it completes on the thread pool.</returns>
    public new Task<T> AsTask() => AsTaskOfResult();

    private async Task<T> AsTaskOfResult()
    {
        await JoinDetached().ConfigureAwait(false);
        return Result;
    }
}
