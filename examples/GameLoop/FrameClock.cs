using Tasklets;

namespace GameLoop;

/// <summary>
/// The frame counter the host advances and the NPCs wait on. Each frame has an event of its own, set when the frame
/// begins: an NPC that waits for frame n + 1 cannot be released by a set meant for frame n, so a late NPC never spins.
/// The host advances it between RunFor calls on the scheduler's own thread, so no field needs synchronisation.
/// </summary>
internal sealed class FrameClock
{
    private AsyncManualResetEvent _next = new() { Name = "frame 1" };

    /// <summary>The frame in progress; 0 before the first.</summary>
    public long Frame { get; private set; }

    /// <summary>Begins the next frame: wakes every tasklet waiting for it.</summary>
    public void Advance()
    {
        AsyncManualResetEvent begun = _next;
        Frame++;
        _next = new AsyncManualResetEvent { Name = $"frame {Frame + 1}" };   // installed before the set: a woken NPC waits on it
        begun.Set();
    }

    /// <summary>Completes once a frame after <paramref name="seen"/> has begun.</summary>
    public ValueTask NextFrameAsync(long seen) => Frame > seen ? default : _next.WaitAsync();
}

/// <summary>An NPC's state; its tasklet is the only writer.</summary>
internal sealed class Npc(int id, FrameClock clock)
{
    private readonly List<string> _violations = [];

    public int Id { get; } = id;

    public long Velocity { get; } = (id % 7) - 3;

    public long Position { get; private set; }

    /// <summary>The last frame this NPC updated for.</summary>
    public long Frame { get; private set; }

    public int Updates { get; private set; }

    public bool Stopped { get; set; }

    public IReadOnlyList<string> Violations => _violations;

    /// <summary>The update for frame <see cref="Frame"/> + 1, which must have begun.</summary>
    public void Update()
    {
        if (Frame + 1 > clock.Frame)
        {
            _violations.Add($"npc {Id} updated for frame {Frame + 1} while the clock was at {clock.Frame}");
        }

        Frame++;
        Position += Velocity;
        Updates++;
    }
}
