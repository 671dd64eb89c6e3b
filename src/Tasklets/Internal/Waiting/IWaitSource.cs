namespace Tasklets.Internal;

/// <summary>
/// What the waiter layer, select, deadlock detection and <see cref="Scheduler.Dump"/> know of a primitive a wait can
/// be registered on: a channel, a tasklet being joined, and later the coordination primitives. None of them switches
/// on the kind of source; each source describes itself.
/// </summary>
/// <remarks>
/// A source owns one lock (<see cref="EnterGate"/>/<see cref="ExitGate"/>, a <see cref="SpinGate"/>) under which its
/// queues of registrations (<see cref="SelectCase"/> nodes) change. Sources are locked in <see cref="Id"/> order when a
/// select takes several at once.
/// </remarks>
internal interface IWaitSource
{
    /// <summary>Process-unique, increasing id: select locks sources in this order.</summary>
    long Id { get; }

    /// <summary>Takes the source's one lock.</summary>
    void EnterGate();

    /// <summary>Releases the source's lock.</summary>
    void ExitGate();

    /// <summary>True once a party that the deadlock detector cannot see may end a wait on this source.</summary>
    bool IsExternal { get; }

    /// <summary>
    /// Records a use by <paramref name="current"/>: the source becomes externally reachable if <paramref name="current"/>
    /// is not a tasklet of a Run() scheduler, and its scheduler joins the deadlock group of the source's other parties
    /// (see <see cref="Parties"/>).
    /// </summary>
    void MarkUsedBy(Tasklet? current);

    /// <summary>
    /// Removes <paramref name="node"/> and those of <paramref name="others"/> that belong to this source, where still
    /// queued for the wait <paramref name="generation"/> of <paramref name="waiter"/>, under one acquisition of the
    /// gate. Nodes of other sources, and nodes registered for another wait since, are left alone. Called by the owner
    /// of the wait after it ended.
    /// </summary>
    void WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation);

    /// <summary>"channel 'results' (unbuffered, 0 buffered)": for Dump and deadlock reports.</summary>
    string Describe();

    /// <summary>Unlinks a queued registration of this source. Caller holds the gate (<see cref="WaitSources.WithdrawAll"/>).</summary>
    void RemoveLocked(SelectCase node);
}

/// <summary>What every wait source does the same way.</summary>
internal static class WaitSources
{
    [ThreadStatic]
    private static bool t_closedWorld;

    /// <summary>
    /// True while a deterministic scheduler, on this thread, asks whether its tasklets' waits may be ended from
    /// outside (DESIGN.md, "Deadlock": in deterministic mode the program is a closed world, so a primitive made outside
    /// any tasklet, a test's channels built before Run(), is not reachable from outside on that account alone).
    /// </summary>
    public static bool ClosedWorld
    {
        get => t_closedWorld;
        set => t_closedWorld = value;
    }

    /// <summary>
    /// A primitive's <see cref="IWaitSource.IsExternal"/>: true once a party outside the tracked tasklets used it
    /// (<paramref name="usedOutside"/>), or when it was made outside any tasklet (<paramref name="createdOutside"/>),
    /// except in a deterministic scheduler's closed world.
    /// </summary>
    public static bool IsExternal(bool usedOutside, bool createdOutside) => usedOutside || (createdOutside && !t_closedWorld);

    /// <summary>
    /// <see cref="IWaitSource.WithdrawAll"/> for any source: under one acquisition of its gate, unlinks
    /// <paramref name="node"/> and those of <paramref name="others"/> on this source that are still registered for
    /// the wait <paramref name="generation"/> of <paramref name="waiter"/> (a node unlinked by a partner and queued
    /// again by another wait since is left alone).
    /// </summary>
    public static void WithdrawAll(IWaitSource source, SelectCase node, ReadOnlySpan<RegistrationSlot> others, Waiter waiter, long generation)
    {
        source.EnterGate();
        try
        {
            RemoveIfRegistered(source, node, waiter, generation);
            foreach (RegistrationSlot slot in others)
            {
                if (slot.Node is { } other && ReferenceEquals(other.Source, source))
                {
                    RemoveIfRegistered(source, other, waiter, generation);
                }
            }
        }
        finally
        {
            source.ExitGate();
        }
    }

    private static void RemoveIfRegistered(IWaitSource source, SelectCase node, Waiter waiter, long generation)
    {
        if (node._queued && ReferenceEquals(node._waiter, waiter) && node._generation == generation)
        {
            source.RemoveLocked(node);
        }
    }
}

/// <summary>Ids of wait sources: one counter for every kind and item type, so that any two sources order strictly.</summary>
internal static class WaitSourceIds
{
    private static long s_last;

    /// <summary>A new id, greater than every earlier one.</summary>
    public static long Next() => Interlocked.Increment(ref s_last);
}
