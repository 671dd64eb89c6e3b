using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// Go's <c>select</c>: waits until one of several channel operations can proceed and performs exactly that one.
/// </summary>
/// <remarks>
/// <para>Among the cases ready at the call, one is chosen uniformly at random (seeded in deterministic mode). If
/// none is ready, the caller parks on all of them; the first partner to claim the wait wins and the other
/// registrations are withdrawn, so no other case takes effect and no item is lost. A closed channel's receive case
/// is ready (it fires with <see cref="ReceiveCase{T}.IsClosed"/>); a send case on a closed channel throws
/// <see cref="ChannelClosedException"/>.</para>
/// <para>Cases are reusable objects (<see cref="Channel{T}.ReceiveCase"/>, <see cref="Channel{T}.SendCase(T)"/>):
/// a select over reused cases allocates nothing.</para>
/// </remarks>
/// <example><code>
/// var fromA = a.ReceiveCase();
/// var fromB = b.ReceiveCase();
/// switch (await Select.WaitAsync(fromA, fromB))
/// {
///     case 0: Handle(fromA.Value); break;
///     case 1: Handle(fromB.Value); break;
/// }
/// </code></example>
public static class Select
{
    private const int StackLimit = 16;

    /// <summary>Waits until one case can proceed, performs it, and returns its index.</summary>
    /// <param name="cases">The cases; at least one.</param>
    /// <returns>The index of the case that fired.</returns>
    /// <exception cref="ArgumentException">No case, a null case, the same case twice, or more than 65,535 cases.</exception>
    /// <exception cref="InvalidOperationException">A case is in use by another select that has not finished.</exception>
    /// <exception cref="ChannelClosedException">The chosen send case's channel is closed.</exception>
    /// <exception cref="TaskletExitException">The calling tasklet was killed.</exception>
    /// <exception cref="TaskletTimeoutException">The calling tasklet's timeout expired.</exception>
    public static ValueTask<int> WaitAsync(params ReadOnlySpan<SelectCase> cases)
        => Core(cases, blocking: true, Timeout.InfiniteTimeSpan, default);

    /// <summary>Like <see cref="WaitAsync(ReadOnlySpan{SelectCase})"/>, with a timeout case: returns -1 if nothing fired in time.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cases">The cases.</param>
    /// <returns>The index of the case that fired, or -1 on timeout.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    public static ValueTask<int> WaitAsync(TimeSpan timeout, params ReadOnlySpan<SelectCase> cases)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(timeout), timeout, Strings.NegativeDelay);
        }

        return Core(cases, blocking: true, timeout, default);
    }

    /// <summary>Like <see cref="WaitAsync(ReadOnlySpan{SelectCase})"/>, cancellable: a cancelled select performed no case.</summary>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="cases">The cases.</param>
    /// <returns>The index of the case that fired.</returns>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public static ValueTask<int> WaitAsync(CancellationToken cancellationToken, params ReadOnlySpan<SelectCase> cases)
        => Core(cases, blocking: true, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>The select with a default case: performs a ready case, or returns -1 at once if none is ready.</summary>
    /// <param name="cases">The cases.</param>
    /// <returns>The index of the case that fired, or -1.</returns>
    public static int Try(params ReadOnlySpan<SelectCase> cases)
    {
        // Fast path (Go's non-blocking select does the same): if no case even looks ready, nothing is, as of a moment
        // during this call; answering -1 then is linearizable without taking any lock. A case that looks ready is
        // checked again under the locks.
        bool anyMaybeReady = false;
        foreach (SelectCase c in cases)
        {
            if (c is null || c.MaybeReadyUnlocked())
            {
                anyMaybeReady = true;
                break;
            }
        }

        if (!anyMaybeReady)
        {
            Tasklet.CurrentOrNull?.ThrowIfInterrupted();
            return -1;
        }

        ValueTask<int> result = Core(cases, blocking: false, Timeout.InfiniteTimeSpan, default);
        return result.Result;
    }

    private static ValueTask<int> Core(ReadOnlySpan<SelectCase> cases, bool blocking, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        Validate(cases, blocking, timeout, current);
        if (current is null)
        {
            TaskletsMetrics.ExternalChannelOperation();
        }
        else
        {
            current.Scheduler.CountChannelOperation();
        }
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<int>(cancellationToken);
        }

        // Lock the distinct channels in one global order (channel id), as Go's sellock does. Cases on one channel
        // (the common shape of goless's benchmark, and of a send-or-receive loop) need no sorting.
        Span<bool> isReady = cases.Length <= StackLimit ? stackalloc bool[cases.Length] : new bool[cases.Length];
        IChannel? single = SingleChannel(cases);
        Span<int> order = single is not null ? default : cases.Length <= StackLimit ? stackalloc int[cases.Length] : new int[cases.Length];
        int fired = -1;
        Waiter? partner = null;
        Waiter? waiter = null;
        long generation = 0;
        if (single is not null)
        {
            single.MarkUsedBy(current);
            single.EnterGate();
        }
        else
        {
            SortByChannel(cases, order, current);
            LockAll(cases, order);
        }

        try
        {
            // Pass 1: count the ready cases and pick one uniformly at random.
            int ready = 0;
            for (int i = 0; i < cases.Length; i++)
            {
                if (cases[i].IsReadyLocked())
                {
                    isReady[i] = true;
                    ready++;
                }
            }

            if (ready > 0)
            {
                int pick = ready == 1 ? 0 : current is not null ? current.Scheduler.NextRandom(ready) : Random.Shared.Next(ready);
                for (int i = 0; i < cases.Length; i++)
                {
                    if (isReady[i] && pick-- == 0)
                    {
                        fired = i;
                        break;
                    }
                }

                partner = cases[fired].ExecuteLocked();
            }
            else if (blocking && timeout != TimeSpan.Zero)
            {
                // Pass 2: park on every case.
                waiter = current?.IdleWaiterOrNull() ?? ExternalWaiter.Rent();
                generation = waiter.BeginWait(WaitKind.Select, null);
                for (int i = 0; i < cases.Length; i++)
                {
                    cases[i].EnqueueLocked(waiter, generation, i);
                    waiter.AddRegistration(cases[i]);
                }
            }
        }
        finally
        {
            if (single is not null)
            {
                single.ExitGate();
            }
            else
            {
                UnlockAll(cases, order);
            }
        }

        if (fired >= 0)
        {
            if (partner is not null)
            {
                if (current is not null && cases[fired].PartnerPreferred(partner) && partner.Owner is { } other
                    && ReferenceEquals(other.Scheduler, current.Scheduler) && current.Waiter.IsIdle)
                {
                    partner.WakeFrom(current, front: true);
                    Waiter self = current.YieldCore(WaitKind.Yield);
                    self.SetOutcome(fired, null);
                    return self.AsValueTaskOfInt();
                }

                partner.WakeFrom(current, front: false);
            }

            return new ValueTask<int>(fired);
        }

        if (waiter is null)
        {
            return new ValueTask<int>(-1); // the default case, or a zero timeout
        }

        // Pass 3 (withdrawing the losing registrations) happens when the wait ends, in Waiter.EndWait.
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            if (current is not null && ReferenceEquals(waiter, current.Waiter))
            {
                current.Scheduler.AddTimer(timeout, waiter, generation, -1, null);
            }
            else
            {
                waiter.RegisterTimeout(generation, timeout);
            }
        }

        if (cancellationToken.CanBeCanceled)
        {
            waiter.RegisterCancellation(generation, cancellationToken);
        }

        current?.OnParked();
        return waiter.AsValueTaskOfInt();
    }

    private static void Validate(ReadOnlySpan<SelectCase> cases, bool blocking, TimeSpan timeout, Tasklet? current)
    {
        if (cases.IsEmpty && blocking && timeout == Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentException("A select needs at least one case; with no case and no timeout it would wait forever.", nameof(cases));
        }

        if (cases.Length > Waiter.MaxRegistrations)
        {
            throw new ArgumentException($"A select takes at most {Waiter.MaxRegistrations} cases (Go's limit too); it got {cases.Length}. Split the channels over several tasklets.", nameof(cases));
        }

        for (int i = 0; i < cases.Length; i++)
        {
            SelectCase c = cases[i] ?? throw new ArgumentException($"Case {i} is null.", nameof(cases));
            if (c._queued)
            {
                ThrowHelper.ThrowInvalidOperation($"Case {i} is in use by another select that has not finished. A case object can take part in one select at a time.");
            }

            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(cases[j], c))
                {
                    throw new ArgumentException($"Cases {j} and {i} are the same object; create one case per operation.", nameof(cases));
                }
            }
        }
    }

    /// <summary>The channel of every case if they all share one; null if they do not, or if there is no case.</summary>
    private static IChannel? SingleChannel(ReadOnlySpan<SelectCase> cases)
    {
        if (cases.IsEmpty)
        {
            return null;
        }

        IChannel first = cases[0].ChannelCore;
        for (int i = 1; i < cases.Length; i++)
        {
            if (!ReferenceEquals(cases[i].ChannelCore, first))
            {
                return null;
            }
        }

        return first;
    }

    /// <summary>
    /// Fills <paramref name="order"/> with the case indexes sorted by channel id (stable), and marks each channel used
    /// by <paramref name="current"/>: one interface call per case for its id, none in the sort itself.
    /// </summary>
    private static void SortByChannel(ReadOnlySpan<SelectCase> cases, Span<int> order, Tasklet? current)
    {
        Span<long> ids = cases.Length <= StackLimit ? stackalloc long[cases.Length] : new long[cases.Length];
        for (int i = 0; i < cases.Length; i++)
        {
            IChannel channel = cases[i].ChannelCore;
            channel.MarkUsedBy(current);
            long id = channel.Id;
            ids[i] = id;
            int j = i - 1;
            while (j >= 0 && ids[order[j]] > id)
            {
                order[j + 1] = order[j];
                j--;
            }

            order[j + 1] = i;
        }
    }

    private static void LockAll(ReadOnlySpan<SelectCase> cases, ReadOnlySpan<int> order)
    {
        IChannel? previous = null;
        foreach (int i in order)
        {
            IChannel channel = cases[i].ChannelCore;
            if (!ReferenceEquals(channel, previous))
            {
                channel.EnterGate();
                previous = channel;
            }
        }
    }

    private static void UnlockAll(ReadOnlySpan<SelectCase> cases, ReadOnlySpan<int> order)
    {
        IChannel? previous = null;
        for (int k = order.Length - 1; k >= 0; k--)
        {
            IChannel channel = cases[order[k]].ChannelCore;
            if (!ReferenceEquals(channel, previous))
            {
                channel.ExitGate();
                previous = channel;
            }
        }
    }
}
