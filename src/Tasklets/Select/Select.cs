using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
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
    public static TaskletOp<int> WaitAsync(params ReadOnlySpan<SelectCase> cases)
        => Core(cases, blocking: true, Timeout.InfiniteTimeSpan, default);

    /// <summary>Like <see cref="WaitAsync(ReadOnlySpan{SelectCase})"/>, with a timeout case: returns -1 if nothing fired in time.</summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cases">The cases.</param>
    /// <returns>The index of the case that fired, or -1 on timeout.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    public static TaskletOp<int> WaitAsync(TimeSpan timeout, params ReadOnlySpan<SelectCase> cases)
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
    public static TaskletOp<int> WaitAsync(CancellationToken cancellationToken, params ReadOnlySpan<SelectCase> cases)
        => Core(cases, blocking: true, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>
    /// Like <see cref="WaitAsync(ReadOnlySpan{SelectCase})"/>, with both a timeout case and a cancellation token: returns
    /// -1 if nothing fired in time; a cancelled select performed no case.
    /// </summary>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Cancels the wait.</param>
    /// <param name="cases">The cases.</param>
    /// <returns>The index of the case that fired, or -1 on timeout.</returns>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public static TaskletOp<int> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken, params ReadOnlySpan<SelectCase> cases)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            ThrowHelper.ThrowArgumentOutOfRange(nameof(timeout), timeout, Strings.NegativeDelay);
        }

        return Core(cases, blocking: true, timeout, cancellationToken);
    }

    /// <summary>
    /// Like <see cref="WaitAsync(ReadOnlySpan{SelectCase})"/>, over a case list built once and kept (a
    /// <see cref="List{T}"/>, an array, any read-only list): a loop that switches cases off and on
    /// (<see cref="SelectCase.IsEnabled"/>, Go's nil channel) selects over the same list each time.
    /// </summary>
    /// <param name="cases">The cases; the list is read during the call only, so it may change between selects.</param>
    /// <param name="cancellationToken">Cancels the wait; a cancelled select performed no case.</param>
    /// <returns>The index in <paramref name="cases"/> of the case that fired.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="cases"/> is null.</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public static TaskletOp<int> WaitAsync(IReadOnlyList<SelectCase> cases, CancellationToken cancellationToken = default)
        => WaitAsync(cases, Timeout.InfiniteTimeSpan, cancellationToken);

    /// <summary>Like <see cref="WaitAsync(IReadOnlyList{SelectCase}, CancellationToken)"/>, with a timeout case: returns -1 if nothing fired in time.</summary>
    /// <param name="cases">The cases; read during the call only.</param>
    /// <param name="timeout">How long to wait; <see cref="Timeout.InfiniteTimeSpan"/> for no limit.</param>
    /// <param name="cancellationToken">Cancels the wait; a cancelled select performed no case.</param>
    /// <returns>The index in <paramref name="cases"/> of the case that fired, or -1 on timeout.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="cases"/> is null.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="timeout"/> is negative (other than infinite).</exception>
    /// <exception cref="OperationCanceledException"><paramref name="cancellationToken"/> was cancelled first.</exception>
    public static TaskletOp<int> WaitAsync(IReadOnlyList<SelectCase> cases, TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(cases);
        switch (cases)
        {
            case SelectCase[] array:
                return WaitAsync(timeout, cancellationToken, array);
            case List<SelectCase> list:
                return WaitAsync(timeout, cancellationToken, CollectionsMarshal.AsSpan(list));
            default:
                // Another list type: copied into a pooled array, which the select reads during the call only (a parked
                // select keeps its cases in its waiter's registrations), so it goes back to the pool before this returns.
                SelectCase[] copy = CopyCases(cases, out int n);
                try
                {
                    return WaitAsync(timeout, cancellationToken, copy.AsSpan(0, n));
                }
                finally
                {
                    ArrayPool<SelectCase>.Shared.Return(copy, clearArray: true);
                }
        }
    }

    /// <summary>The select with a default case over a kept case list: see <see cref="Try(ReadOnlySpan{SelectCase})"/>.</summary>
    /// <param name="cases">The cases; read during the call only.</param>
    /// <returns>The index in <paramref name="cases"/> of the case that fired, or -1.</returns>
    /// <exception cref="ArgumentNullException"><paramref name="cases"/> is null.</exception>
    public static int Try(IReadOnlyList<SelectCase> cases)
    {
        ArgumentNullException.ThrowIfNull(cases);
        switch (cases)
        {
            case SelectCase[] array:
                return Try(array);
            case List<SelectCase> list:
                return Try(CollectionsMarshal.AsSpan(list));
            default:
                SelectCase[] copy = CopyCases(cases, out int n);
                try
                {
                    return Try(copy.AsSpan(0, n));
                }
                finally
                {
                    ArrayPool<SelectCase>.Shared.Return(copy, clearArray: true);
                }
        }
    }

    private static SelectCase[] CopyCases(IReadOnlyList<SelectCase> cases, out int count)
    {
        count = cases.Count;
        SelectCase[] copy = ArrayPool<SelectCase>.Shared.Rent(count);
        for (int i = 0; i < count; i++)
        {
            copy[i] = cases[i];
        }

        return copy;
    }

    /// <summary>The select with a default case: performs a ready case, or returns -1 at once if none is ready.</summary>
    /// <param name="cases">The cases.</param>
    /// <returns>The index of the case that fired, or -1.</returns>
    /// <remarks>
    /// Never switches to another tasklet: a partner it wakes is queued, whatever the channel's
    /// <see cref="Channel{T}.Preference"/> says (a synchronous call has no await to switch at).
    /// </remarks>
    public static int Try(params ReadOnlySpan<SelectCase> cases)
    {
        if (cases.Length <= StackLimit && NothingReadyUnlocked(cases))
        {
            Tasklet? current = Tasklet.CurrentOrNull;
            current?.ThrowIfInterrupted();

            // A poll is a use: a party outside the tracked tasklets makes the sources reachable from outside, and a
            // tasklet's scheduler joins their deadlock group (it polls a channel it will receive from once ready: a
            // sender waiting on it is not deadlocked while the poller runs).
            // A case polled again by the same scheduler (a poll loop) was recorded by its first poll: skip the
            // interface call. The field is the polling tasklet's case, written and read by its own thread; a stale
            // value from another thread only costs one more (idempotent) record.
            Scheduler? poller = current?.Scheduler;
            foreach (SelectCase c in cases)
            {
                if (poller is null || !ReferenceEquals(c._polledBy, poller))
                {
                    c.Source.MarkUsedBy(current);
                    c._polledBy = poller;
                }
            }

            return -1;
        }

        TaskletOp<int> result = Core(cases, blocking: false, Timeout.InfiniteTimeSpan, default);
        return result.GetAwaiter().GetResult(); // a non-blocking Core never returns a pending op
    }

    /// <summary>
    /// True only if no case was ready at one instant during this call, found without taking any lock.
    /// </summary>
    /// <remarks>
    /// Go's non-blocking receive reads a single channel's state lock-free; reading several cases one after another
    /// is not a snapshot (Go's TestNonblockSelectRace: a case can turn ready behind the reader while the one read
    /// next turns not ready). So each source's gate sequence is read before its fields and again after all of them:
    /// if every source's sequence is even and unchanged, no source was locked (so none changed) between its two
    /// reads, and the instant between the two loops lies inside every such interval; the fields read describe the
    /// state of every case at that instant. Any doubt (a held gate, a change, a case that may be ready, a null case)
    /// answers false, and the locked path decides.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool NothingReadyUnlocked(ReadOnlySpan<SelectCase> cases)
    {
        if (cases.IsEmpty)
        {
            return true;
        }

        // Anything Core would refuse (a null case, the same case twice, a case in use) goes there, so that the
        // answer does not depend on whether something is ready.
        SelectCase? first = cases[0];
        if (first is null || first.IsInUse)
        {
            return false;
        }

        // Cases on one source (the usual shape): one sequence read before and one after all of them.
        IWaitSource source = first.Source;
        bool single = true;
        for (int i = 1; i < cases.Length; i++)
        {
            SelectCase? c = cases[i];
            if (c is null || c.IsInUse)
            {
                return false;
            }

            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(cases[j], c))
                {
                    return false;
                }
            }

            single &= ReferenceEquals(c.Source, source);
        }

        if (single)
        {
            int sequence = first.GateSequenceUnlocked();
            if ((sequence & 1) != 0)
            {
                return false; // held now: the locked path waits for it
            }

            foreach (SelectCase c in cases)
            {
                if (!c._disabled && c.MaybeReadyUnlocked())
                {
                    return false;
                }
            }

            return first.GateSequenceUnlocked() == sequence;
        }

        return NothingReadyUnlockedAcrossSources(cases);
    }

    // Cases on several sources: each source's sequence around the reads of all cases (a method of its own: its
    // stackalloc would give the single-source path a heavier frame).
    private static bool NothingReadyUnlockedAcrossSources(ReadOnlySpan<SelectCase> cases)
    {
        Span<int> sequences = stackalloc int[cases.Length];
        for (int i = 0; i < cases.Length; i++)
        {
            int sequence = cases[i].GateSequenceUnlocked();
            if ((sequence & 1) != 0 || (!cases[i]._disabled && cases[i].MaybeReadyUnlocked()))
            {
                return false;
            }

            sequences[i] = sequence;
        }

        for (int i = 0; i < cases.Length; i++)
        {
            if (cases[i].GateSequenceUnlocked() != sequences[i])
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Per-case flags of one select (enabled, ready) for up to <see cref="StackLimit"/> cases: an inline array in
    /// the frame of <see cref="Passes"/> instead of a stackalloc. A method with a stackalloc and a loop is compiled
    /// straight to full optimisation ("Tier-0 switched to FullOpts"), without tiering and so without the profile; an
    /// inline array keeps the select's methods tiered.
    /// </summary>
    [InlineArray(StackLimit)]
    private struct CaseFlags
    {
        private bool _element;
    }

    /// <summary>The lock order of a select over several sources (<see cref="SortBySource"/>): see <see cref="CaseFlags"/>.</summary>
    [InlineArray(StackLimit)]
    private struct CaseOrder
    {
        private int _element;
    }

    private static TaskletOp<int> Core(ReadOnlySpan<SelectCase> cases, bool blocking, TimeSpan timeout, CancellationToken cancellationToken)
    {
        Tasklet? current = Tasklet.CurrentOrNull;
        current?.ThrowIfInterrupted();
        // The source every case shares (the common shape of goless's benchmark, and of a send-or-receive loop), or
        // null: such a select locks one gate and needs no sorting.
        IWaitSource? single = Validate(cases, blocking, timeout);
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
            return TaskletOp<int>.FromCanceled(cancellationToken);
        }

        // The locked part is in methods of its own, so that this one has no exception handler: a method with one keeps
        // the locals that live across it in memory, and the struct returned here was assembled in its stack slot field
        // by field and read back whole (a store-forwarding stall on every select, 8% of Core's samples; measured when
        // it was a ValueTask<int>, which TaskletOp<int> resembles: a source, the result and a token).
        var run = new Run(current, blocking, timeout, cancellationToken);
        int fired = single is not null ? LockedOnOneSource(cases, single, ref run) : LockedAcrossSources(cases, ref run);
        if (fired >= 0)
        {
            // run.Partner is read only for a case that fired: the one TryExecuteLocked that returned true wrote it.
            if (run.Partner is not null && Waiter.WakePartner(run.Partner, current, blocking && cases[fired].PartnerPreferred))
            {
                return SwitchToPartner(cases[fired], fired, current!);
            }

            return new TaskletOp<int>(fired);
        }

        if (run.Waiter is not { } waiter)
        {
            return new TaskletOp<int>(-1); // the default case, or a zero timeout
        }

        // Pass 3 (withdrawing the losing registrations) happens when the wait ends, in Waiter.EndWait.
        waiter.Commit(run.Generation, current, timeout, -1, cancellationToken);
        return new TaskletOp<int>(waiter, (short)run.Generation);
    }

    /// <summary>One select's parameters and what its locked part leaves for the rest of <see cref="Core"/>.</summary>
    private ref struct Run
    {
        public readonly Tasklet? Current;
        public readonly bool Blocking;
        public readonly TimeSpan Timeout;
        public readonly CancellationToken CancellationToken;

        /// <summary>The partner the fired case claimed, to wake once the locks are released; or null.</summary>
        public Waiter? Partner;

        /// <summary>The waiter of the wait begun in pass 2, or null when the select did not park.</summary>
        public Waiter? Waiter;

        /// <summary>The generation of that wait.</summary>
        public long Generation;

        public Run(Tasklet? current, bool blocking, TimeSpan timeout, CancellationToken cancellationToken)
        {
            Current = current;
            Blocking = blocking;
            Timeout = timeout;
            CancellationToken = cancellationToken;
        }
    }

    // Locks the one source of every case and runs the passes under it.
    private static int LockedOnOneSource(ReadOnlySpan<SelectCase> cases, IWaitSource source, ref Run run)
    {
        source.MarkUsedBy(run.Current);
        source.EnterGate();
        try
        {
            return Passes(cases, ref run);
        }
        finally
        {
            source.ExitGate();
        }
    }

    // Locks the distinct sources in one global order (source id), as Go's sellock does, and runs the passes under them.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static int LockedAcrossSources(ReadOnlySpan<SelectCase> cases, ref Run run)
    {
        CaseOrder slots = default;
        Span<int> order = cases.Length <= StackLimit ? ((Span<int>)slots)[..cases.Length] : new int[cases.Length];
        SortBySource(cases, order, run.Current);
        LockAll(cases, order);
        try
        {
            return Passes(cases, ref run);
        }
        finally
        {
            UnlockAll(cases, order);
        }
    }

    /// <summary>
    /// The passes of a select, under the locks of all its sources: returns the index of the case that fired (with
    /// <see cref="Run.Partner"/> to wake), or -1 with <see cref="Run.Waiter"/> set if it parked on every case, or -1
    /// alone (nothing ready and no wait: the default case, a zero timeout). No wait is begun if it throws.
    /// </summary>
    private static int Passes(ReadOnlySpan<SelectCase> cases, ref Run run)
    {
        Tasklet? current = run.Current;
        bool small = cases.Length <= StackLimit;
        CaseFlags enabledFlags = default;
        CaseFlags readyFlags = default;
        Span<bool> enabledAt = small ? ((Span<bool>)enabledFlags)[..cases.Length] : new bool[cases.Length];
        Span<bool> isReady = small ? ((Span<bool>)readyFlags)[..cases.Length] : new bool[cases.Length];

        // Each case's IsEnabled, read once: the passes below, the registrations' count and the enqueue agree on it
        // even if a user flips it from another thread meanwhile (misuse, documented; it must not corrupt a queue).
        // In use: exact under the locks (a case is registered, and unlinked, only under its source's lock). A case
        // whose select was ended but has not consumed its outcome is still in use: a partner may have written its Value.
        int enabled = 0;
        for (int i = 0; i < cases.Length; i++)
        {
            SelectCase c = cases[i];
            if (!c._disabled)
            {
                if (c.IsInUse)
                {
                    ThrowCaseInUse(i);
                }

                enabledAt[i] = true;
                enabled++;
            }
        }

        // Pass 1: count the ready cases, pick one uniformly at random, and execute it. Under the locks, buffers,
        // errors and close cannot change, but a partner node counted as live can be claimed at any moment by a
        // kill, a timeout, a cancellation or a partner on another source of its select (none of them holds our
        // locks). Then the case does not take effect (TryExecuteLocked returns false, having dropped the claimed
        // nodes), and the count is taken again. Each failure drops at least one node, so this ends.
        while (enabled != 0)
        {
            int ready = 0;
            for (int i = 0; i < cases.Length; i++)
            {
                bool r = enabledAt[i] && cases[i].IsReadyLocked(); // a disabled case is never ready
                isReady[i] = r;
                ready += r ? 1 : 0;
            }

            if (ready == 0)
            {
                break;
            }

            int pick = ready == 1 ? 0 : current is not null ? current.Scheduler.NextRandom(ready) : Random.Shared.Next(ready);
            int chosen = 0;
            for (int i = 0; i < cases.Length; i++)
            {
                if (isReady[i] && pick-- == 0)
                {
                    chosen = i;
                    break;
                }
            }

            if (cases[chosen].TryExecuteLocked(out run.Partner))
            {
                return chosen;
            }
        }

        if (!run.Blocking || run.Timeout == TimeSpan.Zero)
        {
            return -1; // the default case, or a zero timeout: no wait
        }

        if (enabled == 0 && run.Timeout == Timeout.InfiniteTimeSpan && !run.CancellationToken.CanBeCanceled)
        {
            // Go blocks such a select forever; nothing could ever end it here, so it is refused, as a select with no
            // case is. No wait was begun: the caller leaves the locks.
            ThrowHelper.ThrowInvalidOperation(Strings.AllCasesDisabled);
        }

        // Everything that can fail (renting a waiter, room for the registrations) before BeginWait: a throw here
        // leaves the locks by the caller's finally with no wait begun.
        Waiter waiter = RentWaiter(current, enabled);

        // Pass 2: park on every case. Nothing from BeginWait on can throw: the waiter was rented and sized, and no
        // case is queued (checked above under the same locks).
        // Cases are queued from a random start: the order decides which of two cases on one channel a partner meets
        // first, and a fixed order would always hand it the same one (Go's TestPseudoRandomSend).
        int start = cases.Length == 1 ? 0 : current is not null ? current.Scheduler.NextRandom(cases.Length) : Random.Shared.Next(cases.Length);
        long generation = waiter.BeginWait(WaitKind.Select);
        for (int k = 0, i = start; k < cases.Length; k++, i = i + 1 == cases.Length ? 0 : i + 1)
        {
            if (!enabledAt[i])
            {
                continue; // never waits: Go's nil channel
            }

            cases[i].EnqueueLocked(waiter, generation, i);
            waiter.AddRegistration(cases[i]);
        }

        run.Waiter = waiter;
        run.Generation = generation;
        return -1;
    }

    /// <summary>The waiter to park on, with room for <paramref name="registrations"/>; nothing rented is kept if sizing fails.</summary>
    private static Waiter RentWaiter(Tasklet? current, int registrations)
    {
        Waiter waiter = Waiter.ForParty(current);
        try
        {
            waiter.ReserveRegistrations(registrations);
        }
        catch
        {
            waiter.ReleaseUnused(); // no wait was begun
            throw;
        }

        return waiter;
    }

    /// <summary>
    /// The end of a select whose partner the source's preference switches to (woken to the front of the run queue):
    /// the caller yields, and its select completes with <paramref name="fired"/> when it runs again.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private static TaskletOp<int> SwitchToPartner(SelectCase firedCase, int fired, Tasklet current)
    {
        Waiter self = current.YieldCore(WaitKind.Yield);
        self.SetOutcome(fired, null);
        // The fired case belongs to this select until the yield's result is consumed: a select that runs meanwhile
        // (the partner, switched to first) must find it in use, or it would overwrite its Value.
        IWaitSource source = firedCase.Source;
        source.EnterGate();
        firedCase._waiter = self;
        firedCase._generation = self.Generation;
        source.ExitGate();
        return new TaskletOp<int>(self, (short)self.Generation);
    }

    [DoesNotReturn]
    private static void ThrowCaseInUse(int index)
        => throw new InvalidOperationException($"Case {index} is in use by another select that has not finished. A case object can take part in one select at a time.");

    /// <summary>
    /// Checks the cases (at least one unless a timeout ends the wait, at most <see cref="Waiter.MaxRegistrations"/>,
    /// none null, none twice) and returns the source they all share, or null if they do not share one or there is no case.
    /// </summary>
    private static IWaitSource? Validate(ReadOnlySpan<SelectCase> cases, bool blocking, TimeSpan timeout)
    {
        if (cases.IsEmpty)
        {
            if (blocking && timeout == Timeout.InfiniteTimeSpan)
            {
                throw new ArgumentException("A select needs at least one case; with no case and no timeout it would wait forever.", nameof(cases));
            }

            return null;
        }

        if (cases.Length > Waiter.MaxRegistrations)
        {
            throw new ArgumentException($"A select takes at most {Waiter.MaxRegistrations} cases (Go's limit too); it got {cases.Length}. Split the channels over several tasklets.", nameof(cases));
        }

        IWaitSource? single = (cases[0] ?? throw new ArgumentException("Case 0 is null.", nameof(cases))).Source;
        for (int i = 1; i < cases.Length; i++)
        {
            SelectCase c = cases[i] ?? throw new ArgumentException($"Case {i} is null.", nameof(cases));
            for (int j = 0; j < i; j++)
            {
                if (ReferenceEquals(cases[j], c))
                {
                    throw new ArgumentException($"Cases {j} and {i} are the same object; create one case per operation.", nameof(cases));
                }
            }

            if (!ReferenceEquals(c.Source, single))
            {
                single = null;
            }
        }

        return single;
    }

    /// <summary>
    /// Fills <paramref name="order"/> with the case indexes sorted by source id (stable), and marks each source used
    /// by <paramref name="current"/>: one interface call per case for its id, none in the sort itself.
    /// </summary>
    private static void SortBySource(ReadOnlySpan<SelectCase> cases, Span<int> order, Tasklet? current)
    {
        Span<long> ids = cases.Length <= StackLimit ? stackalloc long[cases.Length] : new long[cases.Length];
        for (int i = 0; i < cases.Length; i++)
        {
            IWaitSource channel = cases[i].Source;
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
        IWaitSource? previous = null;
        foreach (int i in order)
        {
            IWaitSource channel = cases[i].Source;
            if (!ReferenceEquals(channel, previous))
            {
                channel.EnterGate();
                previous = channel;
            }
        }
    }

    private static void UnlockAll(ReadOnlySpan<SelectCase> cases, ReadOnlySpan<int> order)
    {
        IWaitSource? previous = null;
        for (int k = order.Length - 1; k >= 0; k--)
        {
            IWaitSource channel = cases[order[k]].Source;
            if (!ReferenceEquals(channel, previous))
            {
                channel.ExitGate();
                previous = channel;
            }
        }
    }
}
