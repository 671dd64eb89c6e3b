using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// The lock of one wait source (Go's <c>hchan.lock</c>): a test-and-test-and-set spin lock whose word is also a
/// sequence number, so that lock-free readers can tell whether they read a quiescent state (a seqlock).
/// </summary>
/// <remarks>
/// <para>The word is even while the gate is free and odd while it is held; every enter and every exit adds one. So
/// two reads of <see cref="Sequence"/> that return the same even value prove that no thread held the gate at any
/// moment in between: every field written only under the gate had, throughout, the value read in between (given
/// that those reads are volatile, so they cannot move outside the pair). That is the snapshot
/// <see cref="Select.Try(ReadOnlySpan{SelectCase})"/> needs to answer "nothing is ready" without the lock (docs/semantics.md, "The claim
/// protocol"). The counter wraps after 2^32 acquisitions; a reader would have to be descheduled across exactly
/// that many acquisitions of one gate to be fooled.</para>
/// <para>Why not <see cref="Lock"/>: a source's critical sections are a few dozen instructions that never run user
/// code, never block and never wake anyone (wake-ups happen after the gate is released). For such sections a
/// <see cref="Lock"/> pair costs about 7.4 ns on the reference machine against 2.2 ns for one CAS (the GateCost
/// benchmark).</para>
/// <para>Contention backs off with <see cref="SpinWait"/>, which yields and then sleeps, so a holder preempted by the
/// OS is not starved by spinners. Not reentrant. In Debug builds the holder's thread is recorded for assertions.</para>
/// </remarks>
internal struct SpinGate
{
    private int _sequence; // even: free; odd: held

#if DEBUG
    private int _holderThreadId;
#endif

    /// <summary>True when the calling thread holds the gate (Release builds only know that some thread holds it).</summary>
    public readonly bool IsHeldByCurrentThread
    {
        get
        {
#if DEBUG
            return (Volatile.Read(in _sequence) & 1) != 0 && _holderThreadId == Environment.CurrentManagedThreadId;
#else
            return (Volatile.Read(in _sequence) & 1) != 0;
#endif
        }
    }

    /// <summary>The sequence word (acquire read): even while the gate is free. See the type's remarks.</summary>
    public readonly int Sequence
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Volatile.Read(in _sequence);
    }

    /// <summary>Takes the gate, spinning (then yielding) while another thread holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        // Guess the gate is free at the value last seen: one load and one CAS when uncontended.
        int free = Volatile.Read(ref _sequence) & ~1;
        if (Interlocked.CompareExchange(ref _sequence, free + 1, free) != free)
        {
            EnterContended();
        }

#if DEBUG
        _holderThreadId = Environment.CurrentManagedThreadId;
#endif
    }

    /// <summary>Releases the gate. Precondition: the caller holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
#if DEBUG
        Debug.Assert(IsHeldByCurrentThread, "a gate was released by a thread that does not hold it");
        _holderThreadId = 0;
#endif
        // Release store of the next even value: every write of the critical section is visible before the gate
        // reads as free, and a seqlock reader that saw the old value sees a change.
        Volatile.Write(ref _sequence, _sequence + 1);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var spinner = default(SpinWait);
        while (true)
        {
            int seen = Volatile.Read(ref _sequence);
            if ((seen & 1) == 0 && Interlocked.CompareExchange(ref _sequence, seen + 1, seen) == seen)
            {
                return;
            }

            spinner.SpinOnce();
        }
    }
}

/// <summary>
/// Holds a <see cref="SpinGate"/> for the extent of a <c>using</c> block: <c>using (new GateScope(ref _gate)) { ... }</c>
/// is the gate's counterpart of the <c>lock</c> statement (the gate is released on every exit, including throws and
/// jumps out of the block).
/// </summary>
internal ref struct GateScope
{
    private readonly ref SpinGate _gate;

    /// <summary>Takes <paramref name="gate"/>.</summary>
    public GateScope(ref SpinGate gate)
    {
        _gate = ref gate;
        gate.Enter();
    }

    /// <summary>Releases the gate.</summary>
    public readonly void Dispose() => _gate.Exit();
}
