using BenchmarkDotNet.Attributes;

namespace Tasklets.Benchmarks;

/// <summary>
/// Structured joins, one op = one child: a TaskletGroup of 1,000 empty children (spawn, run, the group's wait), next to
/// Task.WhenAll of 1,000 Task.Run, Tasklet.WhenAll of 1,000 tasklets, and the same 1,000 tasklets with no join at
/// all (the spawn floor). Each tasklet row includes one scheduler per invocation, amortised over the 1,000.
/// </summary>
[MemoryDiagnoser]
[ShortRunJob]
public class StructuredJoin
{
    private const int N = 1000;
    private static readonly Func<Task> s_empty = static () => Task.CompletedTask;
    private static readonly Action s_emptyAction = static () => { };
    private readonly Task[] _tasks = new Task[N];

    [Benchmark(OperationsPerInvoke = N)]
    public void TaskletGroupOf1000() => Scheduler.Run(static async () =>
    {
        await using var group = new TaskletGroup();
        for (int i = 0; i < N; i++)
        {
            _ = group.Go(s_empty);
        }
    });

    [Benchmark(OperationsPerInvoke = N)]
    public void WhenAllOf1000() => Scheduler.Run(static async () =>
    {
        var tasklets = new Tasklet[N];
        for (int i = 0; i < N; i++)
        {
            tasklets[i] = Tasklet.Go(s_empty);
        }

        await Tasklet.WhenAll(tasklets);
    });

    [Benchmark(OperationsPerInvoke = N)]
    public void SpawnOnly1000() => Scheduler.Run(static async () =>
    {
        for (int i = 0; i < N; i++)
        {
            _ = Tasklet.Go(s_empty);
        }

        await Tasklet.Yield(); // FIFO: the children run before main resumes
    });

    [Benchmark(Baseline = true, OperationsPerInvoke = N)]
    public void TaskWhenAllOf1000TaskRun()
    {
        for (int i = 0; i < N; i++)
        {
            _tasks[i] = Task.Run(s_emptyAction);
        }

        Task.WhenAll(_tasks).GetAwaiter().GetResult();
    }
}
