using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

// Facet: the end of a tasklet's life and the waits for it (join, await t).
// Relies on: _lifecycle moves Created -> Started -> Ending -> Dead, or Created -> Dying -> Ending -> Dead, each
// step by one party (the scheduler starts and finishes; a kill or throw before the start ends it); the exception is
// written before _lifecycle reads Ending; joiners register under the JoinSource's gate unless they see Ending or
// Dead there, and the ender takes that gate after it wrote Ending, then writes Dead once every joiner is woken.
public partial class Tasklet
{
    /// <summary>Waits until the tasklet is dead; rethrows its failure (a <see cref="TaskletExitException"/> if it was killed).</summary>
    /// <param name="cancellationToken">Cancels the wait (not the tasklet).</param>
    /// <returns>Completes when the tasklet is dead.</returns>
    /// <remarks>
    /// A library wait: deadlock detection sees a tasklet joining a blocked tasklet. A join ended by cancellation,
    /// timeout or kill leaves nothing behind in the joined tasklet. Any thread may join.
    /// </remarks>
    /// <exception cref="InvalidOperationException">A tasklet joins itself.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public ValueTask JoinAsync(CancellationToken cancellationToken = default)
    {
        Tasklet? current = CurrentOrNull;
        current?.ThrowIfInterrupted();
        if (ReferenceEquals(current, this))
        {
            ThrowHelper.ThrowInvalidOperation($"Tasklet {Id} '{Name}' cannot join itself: it would wait forever.");
        }

        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (Volatile.Read(ref _lifecycle) >= LifeEnding)
        {
            return ObserveEnd();
        }

        return JoinCore(Waiter.ForParty(current), current, cancellationToken);
    }

    /// <summary>
    /// Parks <paramref name="waiter"/> (of <paramref name="current"/>, or of no tasklet) on this tasklet's end, or
    /// returns the end at once if it came first. JoinAsync and JoinDetached differ only in the waiter and the token.
    /// </summary>
    private ValueTask JoinCore(Waiter waiter, Tasklet? current, CancellationToken cancellationToken)
    {
        JoinSource source = Cold.JoinSource ?? CreateJoinSource();
        source.MarkUsedBy(CurrentOrNull);
        JoinNode node = waiter.RentNode<JoinNode>();
        long generation;
        using (new GateScope(ref source.Gate))
        {
            // Under the gate: the ender writes Ending (a full fence) before it reads Cold.JoinSource and takes this
            // gate, and this thread created the source (a full fence) before it read the life cycle here. So either
            // this read sees Ending or Dead, or the ender finds the source and, behind this gate, the node queued below.
            if (Volatile.Read(ref _lifecycle) >= LifeEnding)
            {
                goto Dead;
            }

            generation = waiter.BeginWait(WaitKind.Join);
            node.Bind(source);
            source.EnqueueLocked(node, waiter, generation, 0);
            waiter.AddRegistration(node);
        }

        waiter.Commit(generation, current, System.Threading.Timeout.InfiniteTimeSpan, 0, cancellationToken);
        return waiter.AsValueTask();

    Dead:
        waiter.ReleaseUnused();
        return ObserveEnd();
    }

    /// <summary>Awaiting a tasklet joins it: <c>await t</c> is <c>await t.JoinAsync()</c>.</summary>
    /// <returns>The awaiter.</returns>
    public ValueTaskAwaiter GetAwaiter() => JoinAsync().GetAwaiter();

    // The outcome of a join of a dead tasklet: its failure, or success. Whoever sees it has observed the failure.
    private ValueTask ObserveEnd()
    {
        _observed = true;
        return _cold?.Exception is { } failure ? ValueTask.FromException(failure) : default;
    }

    private JoinSource CreateJoinSource()
    {
        var source = new JoinSource(this);
        return Interlocked.CompareExchange(ref Cold.JoinSource, source, null) ?? source;
    }

    /// <summary>
    /// Ends a tasklet that never started (kill or throw before its first step): it dies without running. The
    /// scheduler drops its start entry later, and reports the exception if it is a failure nobody observed.
    /// Returns false if the tasklet had started (or another party ended it first). Any thread.
    /// </summary>
    private bool TryEndBeforeStart(Exception exception)
    {
        // Dying is claimed by CAS: of a kill, a throw and the scheduler's start, exactly one wins.
        if (Volatile.Read(ref _lifecycle) != LifeCreated
            || Interlocked.CompareExchange(ref _lifecycle, LifeDying, LifeCreated) != LifeCreated)
        {
            return false;
        }

        Cold.Exception = exception; // before Dead: readers of Dead read the exception after it
        _body = null;
        EndLife(exception);
        if (exception is TaskletExitException)
        {
            CancelOnKill();
        }

        return true;
    }

    /// <summary>Records the end of a started tasklet and wakes its joiners. Scheduler thread only. Returns true if a joiner observed it.</summary>
    internal bool Finish(Exception? exception)
    {
        if (exception is not null)
        {
            Cold.Exception = exception; // before Dead: readers of Dead read the exception after it
        }

        _body = null;
        return EndLife(exception);
    }

    // Ending, then the joiners, then Dead: the exchange is a full fence, so the read of the join source below cannot
    // move before it (the other half of the argument in JoinAsync). Dead comes last so that the scheduler, which
    // waits for it when the end came from another thread (WaitUntilDead), never goes idle while that thread has
    // claimed a joiner's wait and not yet queued the wake-up: deadlock detection would take the joiner for stuck.
    private bool EndLife(Exception? exception)
    {
        Interlocked.Exchange(ref _lifecycle, LifeEnding);
        bool observed = _cold?.JoinSource is { } source && source.WakeAll(exception);
        if (observed)
        {
            _observed = true;
        }

        Volatile.Write(ref _lifecycle, LifeDead);
        return observed;
    }

    // ---------------------------------------------------------------- holds on the report of a failure (issue 15)

    /// <summary>
    /// True while a party that will rethrow this tasklet's failure is still to do so: a WhenAll in progress over it, or
    /// its group, which recorded the failure, while it may still be waited. The scheduler does not report such a
    /// failure as unobserved meanwhile. Scheduler thread of this tasklet.
    /// </summary>
    /// <remarks>
    /// The holds are read before <see cref="_observed"/> (see Scheduler.ReportDeferredFailures): a WhenAll marks the
    /// failure observed before it releases its hold (an interlocked operation, a full fence), and a group's wait joins
    /// every child before it closes the group, so a read that finds no hold then finds the observation.
    /// </remarks>
    internal bool IsFailureHeld
        => _cold is { } cold && (Volatile.Read(ref cold.FailureHolds) > 0 || cold.FailureGroup?.HoldsChildFailures == true);

    /// <summary>A WhenAll begins over this tasklet: it will rethrow the failure. Any thread.</summary>
    internal void HoldFailure() => Interlocked.Increment(ref Cold.FailureHolds);

    /// <summary>
    /// A WhenAll over this tasklet ended. If it was the last hold and the failure is still unobserved (the WhenAll was
    /// interrupted before it looked), the scheduler reports it at its next report point; from another thread this
    /// wakes the scheduler, which may be idle, to get there. Any thread.
    /// </summary>
    internal void ReleaseFailureHold()
    {
        if (Interlocked.Decrement(ref Cold.FailureHolds) == 0
            && Exception is not null and not TaskletExitException
            && !Volatile.Read(ref _observed)
            && !_scheduler.IsOwnerThread)
        {
            _scheduler.Signal();
        }
    }

    /// <summary>The failure of this tasklet, a child of <paramref name="group"/>, is the group's to throw. The child's own step.</summary>
    internal void HoldFailureFor(TaskletGroup group) => Cold.FailureGroup = group;

    /// <summary>Waits until a kill or throw before the start has recorded the end and woken the joiners (a few stores away).</summary>
    internal void WaitUntilDead()
    {
        var spinner = default(SpinWait);
        while (Volatile.Read(ref _lifecycle) != LifeDead)
        {
            spinner.SpinOnce();
        }
    }
}
