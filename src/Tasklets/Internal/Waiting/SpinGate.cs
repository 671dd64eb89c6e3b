using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Tasklets.Internal;

/// <summary>
/// The lock of one channel (Go's <c>hchan.lock</c>): a test-and-test-and-set spin lock, one compare-and-swap to
/// enter and a plain release store to leave.
/// </summary>
/// <remarks>
/// <para>Why not <see cref="Lock"/>: a channel's critical sections are a few dozen instructions that never run user
/// code, never block and never wake anyone (wake-ups happen after the gate is released). For such sections a
/// <see cref="Lock"/> pair costs about 7.4 ns on the reference machine against 2.2 ns for one CAS (the GateCost benchmark), and every channel
/// operation takes the gate once or twice (docs/performance.md).</para>
/// <para>Contention backs off with <see cref="SpinWait"/>, which yields and then sleeps, so a holder preempted by the
/// OS is not starved by spinners. Not reentrant. In Debug builds the holder's thread is recorded for assertions.</para>
/// </remarks>
internal struct SpinGate
{
    private int _held; // 0 free, 1 held

#if DEBUG
    private int _holderThreadId;
#endif

    /// <summary>True when the calling thread holds the gate (Release builds only know that some thread holds it).</summary>
    public readonly bool IsHeldByCurrentThread
    {
        get
        {
#if DEBUG
            return _held != 0 && _holderThreadId == Environment.CurrentManagedThreadId;
#else
            return _held != 0;
#endif
        }
    }

    /// <summary>Takes the gate, spinning (then yielding) while another thread holds it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _held, 1, 0) != 0)
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
        Debug.Assert(IsHeldByCurrentThread, "a channel gate was released by a thread that does not hold it");
        _holderThreadId = 0;
#endif
        // Release store: every write of the critical section is visible before the gate reads as free.
        Volatile.Write(ref _held, 0);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var spinner = default(SpinWait);
        do
        {
            spinner.SpinOnce();
        }
        while (Volatile.Read(ref _held) != 0 || Interlocked.CompareExchange(ref _held, 1, 0) != 0);
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
