using Tasklets;

namespace RestartOnUpdate;

/// <summary>An absolute update: the position of every object, so applying it needs nothing from earlier updates.</summary>
internal sealed record SceneUpdate(int Version, int[] Positions)
{
    /// <summary>Version <paramref name="version"/>'s state: object i at <c>version * 1000 + i</c>.</summary>
    public static SceneUpdate Absolute(int version, int objects)
        => new(version, Enumerable.Range(0, objects).Select(i => (version * 1000) + i).ToArray());
}

/// <summary>
/// The server's scene. Updates write it through a <see cref="Lease"/>; the scene counts the leases alive, so an
/// update that never released its lease, or two updates applied at once, show up in the checks. One scheduler, one
/// thread: no locking needed.
/// </summary>
internal sealed class Scene(int objects)
{
    private readonly int[] _positions = new int[objects];

    /// <summary>The version of the update that wrote the scene last (0 before any).</summary>
    public int Version { get; private set; }

    /// <summary>Leases taken and not yet released.</summary>
    public int ActiveLeases { get; private set; }

    public Lease BeginApply(int version, UpdateLog log)
    {
        if (ActiveLeases != 0)
        {
            log.Violation($"update {version} began while {ActiveLeases} other update(s) held the scene");
        }

        ActiveLeases++;
        return new Lease(this, version, log);
    }

    public bool Holds(SceneUpdate update) => Version == update.Version && _positions.AsSpan().SequenceEqual(update.Positions);

    public override string ToString() => $"version {Version}, objects [{string.Join(", ", _positions.Take(4))}, ...]";

    /// <summary>An update's right to write the scene; disposing it (once) releases it.</summary>
    internal sealed class Lease(Scene scene, int version, UpdateLog log) : IDisposable
    {
        private bool _released;

        public void Write(int index, int position)
        {
            scene._positions[index] = position;
            scene.Version = version;
            log.Wrote(version);
        }

        public void Dispose()
        {
            if (_released)
            {
                return;
            }

            _released = true;
            scene.ActiveLeases--;
            log.Released(version);
        }
    }
}

internal enum UpdateOutcome
{
    Pending,
    Completed,
    Killed,
}

/// <summary>What happened to each update, as the server, the updates and their leases saw it.</summary>
internal sealed class UpdateLog(int updates)
{
    private readonly UpdateOutcome[] _outcomes = new UpdateOutcome[updates + 1];
    private readonly int[] _releases = new int[updates + 1];
    private readonly bool[] _wrote = new bool[updates + 1];
    private readonly List<string> _violations = [];

    public IReadOnlyList<string> Violations => _violations;

    public int PartiallyWritten => Enumerable.Range(1, updates).Count(v => _wrote[v] && _outcomes[v] == UpdateOutcome.Killed);

    public UpdateOutcome Outcome(int version) => _outcomes[version];

    public int Releases(int version) => _releases[version];

    public int Count(UpdateOutcome outcome) => _outcomes.Count(o => o == outcome);

    public void Wrote(int version) => _wrote[version] = true;

    public void Released(int version) => _releases[version]++;

    public void Violation(string message) => _violations.Add(message);

    public void Completed(int version) => Record(version, UpdateOutcome.Completed);

    /// <summary>The server killed <paramref name="tasklet"/> (named "apply N") and joined it.</summary>
    public void Killed(Tasklet tasklet)
    {
        int version = int.Parse(tasklet.Name.AsSpan("apply ".Length), System.Globalization.CultureInfo.InvariantCulture);
        if (tasklet.State != TaskletState.Dead)
        {
            _violations.Add($"update {version} is {tasklet.State} after KillAndJoinAsync returned");
        }

        if (_releases[version] != 1)
        {
            _violations.Add($"update {version} was killed and joined, but its finally block had not released the scene");
        }

        Record(version, UpdateOutcome.Killed);
    }

    private void Record(int version, UpdateOutcome outcome)
    {
        if (_outcomes[version] != UpdateOutcome.Pending)
        {
            _violations.Add($"update {version} {outcome} after it had already {_outcomes[version]}");
        }

        _outcomes[version] = outcome;
    }
}
