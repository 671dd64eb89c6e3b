namespace Tasklets.Internal;

/// <summary>The non-generic face of a channel that select, waiters and diagnostics need.</summary>
internal interface IChannel
{
    /// <summary>Process-unique, increasing id: select locks channels in this order.</summary>
    long Id { get; }

    /// <summary>Takes the channel's one lock (Go's <c>hchan.lock</c>, a <see cref="SpinGate"/>).</summary>
    void EnterGate();

    /// <summary>Releases the channel's lock.</summary>
    void ExitGate();

    /// <summary>True once a party that is not a tasklet of a <c>Run()</c> scheduler used the channel, or it was created outside a tasklet.</summary>
    bool IsExternal { get; }

    /// <summary>Marks the channel externally reachable if <paramref name="current"/> is not a tasklet of a Run() scheduler.</summary>
    void MarkUsedBy(Tasklet? current);

    /// <summary>
    /// Removes <paramref name="node"/> and those of <paramref name="others"/> that belong to this channel, where still
    /// queued, under one acquisition of the gate. Nodes of other channels are left alone.
    /// </summary>
    void WithdrawAll(SelectCase node, ReadOnlySpan<RegistrationSlot> others);

    /// <summary>"channel 'results' (unbuffered, 0 buffered)": for Dump and deadlock reports.</summary>
    string Describe();
}
