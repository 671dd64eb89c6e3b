using System.Collections.Concurrent;
using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// Bounded cross-thread races on the end of a tasklet: targets on two schedulers (each on its own thread) return, fail,
/// or block until killed, while joiners on both schedulers wait for them with JoinAsync (with a token), WhenAny, a
/// select over a JoinCase and a channel nobody sends to, and WhenAll (with a token), and plain code waits with
/// AsTask; the test thread kills targets and joiners and cancels tokens at random moments meanwhile.
/// </summary>
/// <remarks>
/// Asserts: every joiner that started completed its wait exactly once (returned or threw once) and every joiner
/// ended (none hangs: the schedulers' Run returns; the thread joins are hang guards, never timing assertions); every
/// outcome agrees with the target's end (a join that returned saw a dead target that did not fail; a join that threw
/// the target's exception saw it dead; WhenAny and the join case fired only for a dead target; the never-sent channel
/// never fired); the only unobserved failures Run reports are targets' failures.
/// </remarks>
[Trait("Category", "Stress")]
public class JoinStressTests
{
    private const int Rounds = 400;
    private const int JoinersPerRound = 4;
    private static readonly TimeSpan s_hangGuard = TimeSpan.FromSeconds(60);

    private sealed class TargetFailure(string message) : Exception(message);

    [Fact]
    public async Task Joins_WhenAny_JoinCases_RaceKillsAndCancellations_EachCompletesOnce_NoneHangs()
    {
        using var a = new Scheduler();
        using var b = new Scheduler();
        IDisposable holdA = a.KeepAlive();
        IDisposable holdB = b.KeepAlive();
        var runFailures = new ConcurrentQueue<Exception>();
        Thread threadA = StartRunner(a, runFailures);
        Thread threadB = StartRunner(b, runFailures);

        var violations = new ConcurrentQueue<string>();
        var started = new int[Rounds * JoinersPerRound];
        var completed = new int[Rounds * JoinersPerRound];
        var joiners = new Tasklet[Rounds * JoinersPerRound];
        var targets = new Tasklet[Rounds];
        var asTasks = new List<Task>(Rounds);
        var neverSent = new Channel<int> { Name = "never sent" };
        var random = new Random(20261202);
        var tokens = new List<CancellationTokenSource>();

        for (int r = 0; r < Rounds; r++)
        {
            Scheduler home = r % 2 == 0 ? a : b;
            Scheduler away = r % 2 == 0 ? b : a;
            int mode = random.Next(3); // 0: returns, 1: fails, 2: blocks until killed
            int yields = random.Next(4);
            var block = new Channel<int>();
            int round = r;
            Tasklet target = home.Go(async () =>
            {
                for (int i = 0; i < yields; i++)
                {
                    await Tasklet.Yield();
                }

                if (mode == 1)
                {
                    throw new TargetFailure($"target {round} failed");
                }

                if (mode == 2)
                {
                    await block.ReceiveAsync();
                }
            }, $"target-{r}");
            targets[r] = target;

            var cts = new CancellationTokenSource();
            tokens.Add(cts);
            CancellationToken token = cts.Token;
            int slot = r * JoinersPerRound;
            joiners[slot] = away.Go(() => JoinAsync(slot, target, token), "join");
            joiners[slot + 1] = home.Go(() => WhenAnyAsync(slot + 1, target), "when-any");
            joiners[slot + 2] = away.Go(() => SelectAsync(slot + 2, target), "select");
            joiners[slot + 3] = away.Go(() => WhenAllAsync(slot + 3, target, token), "when-all");
            asTasks.Add(AsTaskAsync(target));

            // The disturbances, at random moments relative to the joiners' registrations on the other threads.
            Thread.SpinWait(random.Next(2000));
            if (random.Next(3) == 0)
            {
                target.Kill();
            }

            if (random.Next(4) == 0)
            {
                cts.Cancel();
            }

            if (random.Next(4) == 0)
            {
                joiners[slot + random.Next(JoinersPerRound)].Kill();
            }

            if (mode == 2)
            {
                Thread.SpinWait(random.Next(2000));
                target.Kill(); // every blocking target ends
            }
        }

        holdA.Dispose();
        holdB.Dispose();
        Assert.True(threadA.Join(s_hangGuard), "scheduler A did not finish: a join hangs");
        Assert.True(threadB.Join(s_hangGuard), "scheduler B did not finish: a join hangs");
        await Task.WhenAll(asTasks).WaitAsync(s_hangGuard);
        foreach (CancellationTokenSource cts in tokens)
        {
            cts.Dispose();
        }

        for (int i = 0; i < joiners.Length; i++)
        {
            Assert.False(joiners[i].IsAlive, $"joiner {i} is alive");
            if (started[i] == 1)
            {
                Assert.True(completed[i] == 1, $"joiner {i} ({joiners[i].Name}) completed its wait {completed[i]} times");
            }
            else
            {
                Assert.IsType<TaskletExitException>(joiners[i].Exception); // killed before it started
            }
        }

        Assert.All(targets, t => Assert.False(t.IsAlive));
        Assert.True(violations.IsEmpty, string.Join(Environment.NewLine, violations));
        foreach (Exception failure in runFailures)
        {
            var aggregate = Assert.IsType<AggregateException>(failure);
            Assert.All(aggregate.InnerExceptions, e => Assert.IsType<TargetFailure>(e));
        }

        // ---- the joiners: each records its start, and its completion right after the wait returns or throws

        async Task JoinAsync(int slot, Tasklet target, CancellationToken token)
        {
            started[slot] = 1;
            Exception? thrown = null;
            try
            {
                await target.JoinAsync(token);
            }
            catch (Exception e)
            {
                thrown = e;
            }

            Interlocked.Increment(ref completed[slot]);
            CheckJoinOutcome("JoinAsync", target, thrown);
        }

        async Task WhenAllAsync(int slot, Tasklet target, CancellationToken token)
        {
            started[slot] = 1;
            Exception? thrown = null;
            try
            {
                await Tasklet.WhenAll(token, target);
            }
            catch (Exception e)
            {
                thrown = e;
            }

            Interlocked.Increment(ref completed[slot]);
            CheckJoinOutcome("WhenAll", target, thrown);
        }

        async Task WhenAnyAsync(int slot, Tasklet target)
        {
            started[slot] = 1;
            Tasklet? winner = null;
            try
            {
                winner = await Tasklet.WhenAny(target);
            }
            catch (TaskletExitException)
            {
                // this joiner was killed: the wait ended without a winner
            }

            Interlocked.Increment(ref completed[slot]);
            if (winner is not null && (!ReferenceEquals(winner, target) || winner.IsAlive))
            {
                violations.Enqueue($"WhenAny returned {winner.Name}, alive: {winner.IsAlive}");
            }
        }

        async Task SelectAsync(int slot, Tasklet target)
        {
            started[slot] = 1;
            int fired = -2;
            try
            {
                fired = await Select.WaitAsync(target.JoinCase(), neverSent.ReceiveCase());
            }
            catch (TaskletExitException)
            {
                // killed
            }

            Interlocked.Increment(ref completed[slot]);
            if (fired == 1 || (fired == 0 && target.IsAlive))
            {
                violations.Enqueue($"select fired case {fired}, target alive: {target.IsAlive}");
            }
        }

        async Task AsTaskAsync(Tasklet target)
        {
            Exception? thrown = null;
            try
            {
                await target.AsTask();
            }
            catch (Exception e)
            {
                thrown = e;
            }

            if (target.IsAlive || !ReferenceEquals(thrown, target.Exception))
            {
                violations.Enqueue($"AsTask of {target.Name} ended with {thrown?.GetType().Name}, target alive: {target.IsAlive}");
            }
        }

        void CheckJoinOutcome(string kind, Tasklet target, Exception? thrown)
        {
            if (thrown is null)
            {
                if (target.IsAlive || target.Exception is not null)
                {
                    violations.Enqueue($"{kind} returned but {target.Name} is alive: {target.IsAlive}, failed with {target.Exception?.GetType().Name}");
                }
            }
            else if (ReferenceEquals(thrown, target.Exception))
            {
                // the target's own end, rethrown: it is dead (Exception is null while alive)
            }
            else if (thrown is not (TaskletExitException or OperationCanceledException))
            {
                violations.Enqueue($"{kind} threw {thrown.GetType().Name}: {thrown.Message}");
            }
        }
    }

    [Fact]
    public void TaskletGroup_CancelAndKillFromAnotherThread_WaitEndsWithEveryChildDead()
    {
        // Groups on a scheduler thread whose children finish, fail or block; the test thread starts children in them,
        // cancels groups and kills parents meanwhile. Every group wait must end (no hang), with every child of its group
        // dead, and throw only child failures or the parent's own kill.
        const int Groups = 300;
        using var s = new Scheduler();
        IDisposable hold = s.KeepAlive();
        var runFailures = new ConcurrentQueue<Exception>();
        Thread thread = StartRunner(s, runFailures);
        var violations = new ConcurrentQueue<string>();
        var groups = new TaskletGroup?[Groups];
        var parents = new Tasklet[Groups];
        var children = new ConcurrentQueue<Tasklet>();
        var random = new Random(7);
        for (int g = 0; g < Groups; g++)
        {
            int index = g;
            int shape = random.Next(4);
            var block = new Channel<int>();
            parents[g] = s.Go(async () =>
            {
                var group = new TaskletGroup($"g{index}");
                Volatile.Write(ref groups[index], group);
                var mine = new List<Tasklet>();
                for (int c = 0; c < 3; c++)
                {
                    int kind = (shape + c) % 3;
                    mine.Add(group.Go(async () =>
                    {
                        await Tasklet.Yield();
                        if (kind == 1 && shape == 0)
                        {
                            throw new TargetFailure("child failed");
                        }

                        if (kind == 2)
                        {
                            await block.ReceiveAsync();
                        }
                    }));
                }

                foreach (Tasklet child in mine)
                {
                    children.Enqueue(child);
                }

                try
                {
                    await group.DisposeAsync();
                }
                catch (Exception e) when (e is TargetFailure or TaskletExitException)
                {
                }
                finally
                {
                    // Children started from the test thread are listed too: none may be alive once the wait ended.
                    if (group.Children.Count != 0 || mine.Exists(static c => c.IsAlive))
                    {
                        violations.Enqueue($"group {index}: a child outlived the wait");
                    }
                }
            }, $"parent-{g}");

            Thread.SpinWait(random.Next(3000));
            try
            {
                // A child started from another thread, racing the wait that closes the group.
                if (Volatile.Read(ref groups[g]) is { } open)
                {
                    children.Enqueue(open.Go(async () => await Tasklet.Yield(), "from the test thread"));
                }
            }
            catch (InvalidOperationException e) when (e.Message.Contains("is closed", StringComparison.Ordinal))
            {
            }

            switch (random.Next(3))
            {
                case 0:
                    Volatile.Read(ref groups[g])?.Cancel();
                    break;
                case 1:
                    parents[g].Kill();
                    break;
            }
        }

        // Whatever was not cancelled or killed: end the blocked children so that every wait can end.
        foreach (Tasklet parent in parents)
        {
            parent.Kill();
        }

        hold.Dispose();
        Assert.True(thread.Join(s_hangGuard), "the scheduler did not finish: a group wait hangs");
        Assert.True(violations.IsEmpty, string.Join(Environment.NewLine, violations));
        Assert.All(children, c => Assert.False(c.IsAlive));
        Assert.All(parents, p => Assert.False(p.IsAlive));
        Assert.Empty(runFailures); // every child failure was thrown by its group's wait (observed), none is Run's
    }

    private static Thread StartRunner(Scheduler scheduler, ConcurrentQueue<Exception> failures)
    {
        var thread = new Thread(() =>
        {
            try
            {
                scheduler.Run();
            }
            catch (Exception e)
            {
                failures.Enqueue(e);
            }
        })
        { IsBackground = true };
        thread.Start();
        return thread;
    }
}
