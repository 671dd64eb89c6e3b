using System.Diagnostics;
using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>
/// A case for <see cref="Select"/> that is ready once a tasklet is dead (created by <see cref="Tasklet.JoinCase"/>),
/// reusable: a tasklet can wait for a channel and for the end of another tasklet at once.
/// </summary>
/// <remarks>
/// <para>Firing takes nothing and throws nothing: the tasklet may have returned, failed or been killed; read
/// <see cref="Tasklet"/>'s <see cref="Tasklets.Tasklet.Exception"/>. The case does not observe a failure: join the
/// tasklet (<c>await joinCase.Tasklet</c>, which completes at once and rethrows it) to observe it; otherwise
/// <see cref="Scheduler.Run()"/> reports it as unobserved.</para>
/// <para>Once the tasklet is dead the case is ready in every select. Like every case it takes part in one select at a
/// time. A blocked select registers it with the tasklet's joiners, so deadlock detection and
/// <see cref="Scheduler.Dump"/> see the wait ("join of tasklet 5 'worker'").</para>
/// </remarks>
/// <example><code>
/// var done = worker.JoinCase();
/// var next = jobs.ReceiveCase();
/// while (await Select.WaitAsync(done, next) == 1) Handle(next.Value);
/// </code></example>
[DebuggerDisplay("join of tasklet {Tasklet.Id} '{Tasklet.Name}'")]
public sealed class JoinCase : SelectCase
{
    internal JoinCase(Tasklet tasklet, JoinSource source)
    {
        Tasklet = tasklet;
        _source = source;
    }

    /// <summary>The tasklet whose end this case waits for.</summary>
    public Tasklet Tasklet { get; }

    // Set only to the tasklet's JoinSource (constructor), so no type check is needed.
    private JoinSource Typed => Unsafe.As<JoinSource>(_source!);

    internal override string DescribeWait() => "join of " + Typed.Describe();

    // "Maybe": a tasklet's death is not written under its join source's gate, so the seqlock snapshot of Select.Try
    // cannot vouch for a "not ready" read here; the locked path decides (as for JoinNode).
    internal override bool MaybeReadyUnlocked() => true;

    internal override int GateSequenceUnlocked() => Typed.Gate.Sequence;

    // Under the gate. The ender writes Ending (a full fence) before it takes this gate to wake the joiners, so a case
    // that reads "alive" here is queued before the ender looks (Tasklet.Join.cs's argument), and one that reads
    // "dead" fires without being queued. Death is final: a true here stays true.
    internal override bool IsReadyLocked() => !Tasklet.IsAlive;

    internal override bool TryExecuteLocked(out Waiter? partner)
    {
        partner = null;
        return !Tasklet.IsAlive;
    }

    internal override void EnqueueLocked(Waiter waiter, long generation, int caseIndex)
        => Typed.EnqueueLocked(this, waiter, generation, caseIndex);

    internal override bool PartnerPreferred => false;
}
