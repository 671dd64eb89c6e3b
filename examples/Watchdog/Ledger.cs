using System.Globalization;
using Tasklets;

namespace Watchdog;

/// <summary>Every incarnation and every alarm, and the checks over them. One scheduler, one thread.</summary>
internal sealed class Ledger(int seed)
{
    private readonly List<Incarnation> _incarnations = [];
    private readonly List<AlarmRecord> _alarms = [];
    private readonly List<string> _failures = [];

    /// <summary>When the run ended (the kills of Scheduler.Run came after).</summary>
    public TimeSpan EndedAt { get; set; }

    public Incarnation Begin(int worker, int incarnation, TimeSpan now)
    {
        var state = new Incarnation(seed, worker, incarnation, now);
        _incarnations.Add(state);
        return state;
    }

    /// <summary>
    /// The watchdog of <paramref name="worker"/> missed a beat at <paramref name="detected"/>, killed and joined the
    /// incarnation: record what it found, with the state of the tasklet right after the join.
    /// </summary>
    public void Alarm(int worker, int incarnation, TimeSpan detected, TimeSpan lastBeat, Tasklet killed)
    {
        Incarnation state = Find(worker, incarnation);
        _alarms.Add(new AlarmRecord(state, detected, lastBeat));
        if (killed.State != TaskletState.Dead || state.FinallyBlocksRun != 1)
        {
            _failures.Add($"{state.Name}: after KillAndJoinAsync it is {killed.State} and its finally block ran {state.FinallyBlocksRun} times");
        }
    }

    public List<string> Check(TimeSpan timeout)
    {
        var failures = new List<string>(_failures);
        foreach (var group in _alarms.GroupBy(a => a.Incarnation).Where(g => g.Count() > 1))
        {
            failures.Add($"{group.Key.Name}: {group.Count()} alarms");
        }

        foreach (AlarmRecord alarm in _alarms)
        {
            Incarnation state = alarm.Incarnation;
            if (state.HungAt is not TimeSpan hungAt)
            {
                failures.Add($"false alarm: {state.Name} was beating (last beat at {Ms(alarm.LastBeat)}) and was declared dead at {Ms(alarm.Detected)}");
                continue;
            }

            if (alarm.Detected - alarm.LastBeat != timeout)
            {
                failures.Add($"{state.Name}: detected {Ms(alarm.Detected - alarm.LastBeat)} after its last beat, not the timeout {Ms(timeout)}");
            }

            if (alarm.Detected < hungAt || alarm.Detected > hungAt + timeout)
            {
                failures.Add($"{state.Name}: hung at {Ms(hungAt)}, detected at {Ms(alarm.Detected)}: not within the timeout");
            }
        }

        foreach (Incarnation state in _incarnations)
        {
            if (state.HungAt is TimeSpan hungAt && hungAt + timeout < EndedAt && !_alarms.Any(a => a.Incarnation == state))
            {
                failures.Add($"{state.Name} hung at {Ms(hungAt)} and was never detected");
            }

            if (state.FinallyBlocksRun != 1)
            {
                failures.Add($"{state.Name}: its finally block ran {state.FinallyBlocksRun} times, not once");
            }

            if (state.StartedAt + timeout < EndedAt && state.Beats == 0)
            {
                failures.Add($"{state.Name} started at {Ms(state.StartedAt)} and never beat");
            }
        }

        int hangs = _incarnations.Count(s => s.HungAt is not null);
        if (hangs == 0 || !_incarnations.Any(s => s.Number > 1))
        {
            failures.Add($"seed {seed} injected {hangs} hangs: the run checks no detection; choose another seed");
        }

        return failures;
    }

    public string Summary(int workers, TimeSpan timeout)
    {
        List<Incarnation> hung = _incarnations.Where(s => s.HungAt is not null).ToList();
        List<TimeSpan> sinceHang = _alarms.Where(a => a.Incarnation.HungAt is not null).Select(a => a.Detected - a.Incarnation.HungAt!.Value).ToList();
        List<Incarnation> slow = _incarnations.Where(s => s.Worker == Incarnation.SlowWorker).ToList();
        return string.Create(CultureInfo.InvariantCulture,
            $"""
            {workers} workers, each with a watchdog (timeout {Ms(timeout)}), {EndedAt.TotalSeconds:0} s of virtual time, seed {seed}:
              {_incarnations.Sum(s => s.Beats)} beats; {hung.Count} hangs injected ({hung.Count(s => s.Kind == HangKind.BlockedOnReply)} blocked on a reply, {hung.Count(s => s.Kind == HangKind.RetryingForever)} retrying forever),
              {_alarms.Count} alarms, each {Ms(timeout)} after the last beat and {(sinceHang.Count == 0 ? "-" : $"{Ms(sinceHang.Min())}-{Ms(sinceHang.Max())}")} after the hang; each hung incarnation killed (its finally ran) and restarted;
              the slow worker beat {slow.Sum(s => s.Beats)} times at {Ms(slow.Min(s => s.MinInterval))}-{Ms(slow.Max(s => s.MaxInterval))} intervals with {_alarms.Count(a => a.Incarnation.Worker == Incarnation.SlowWorker)} alarms.
            """);
    }

    private Incarnation Find(int worker, int incarnation) => _incarnations.Single(s => s.Worker == worker && s.Number == incarnation);

    private static string Ms(TimeSpan t) => string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0} ms");

    private sealed record AlarmRecord(Incarnation Incarnation, TimeSpan Detected, TimeSpan LastBeat);
}
