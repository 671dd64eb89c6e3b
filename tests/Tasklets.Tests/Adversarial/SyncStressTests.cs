using Xunit;

namespace Tasklets.Tests.Adversarial;

/// <summary>
/// Adversarial, bounded, cross-thread checks of the coordination primitives: tasklets of two schedulers on two
/// threads, an OS thread using the blocking forms, plain async code on the thread pool, and a disturber thread that
/// kills tasklets and cancels tokens while tiny timeout scopes expire.
/// </summary>
/// <remarks>
/// Invariants, never timings: a semaphore's permits are conserved (acquired - released = permits - final count, and
/// never more holders than permits at once); a wait group's waiter never wakes before the count of its round reached
/// zero; every event waiter wakes (a waiter left parked would stop the round's barrier, and the hang guard reports
/// it). Loops are bounded by counts; the waits for threads are hang guards. Rounds are driven by an
/// <see cref="AsyncBarrier"/> shared by tasklets and an OS thread, which stresses the barrier too.
/// </remarks>
[Trait("Category", "Stress")]
[Collection(NonParallel.Name)]
public class SyncStressTests
{
    private static readonly TimeSpan s_hangGuard = TimeSpan.FromSeconds(60);

    // ------------------------------------------------------------------ semaphore

    [Fact]
    public void Semaphore_KillsTimeoutsCancellations_PermitsConserved_NeverMoreHoldersThanPermits()
    {
        const int permits = 3;
        const int attempts = 30_000;
        var sem = new AsyncSemaphore(permits, permits) { Name = "pool" };
        var ledger = new PermitLedger(permits, attempts);
        var stop = new Flag();
        using var cancel = new CancelBox();
        using var a = new Scheduler();
        using var b = new Scheduler();
        var slots = new List<Slot>();
        int seed = 0;
        foreach (Scheduler s in new[] { a, b })
        {
            for (int k = 0; k < 3; k++)
            {
                var slot = new Slot();
                slots.Add(slot);
                int mySeed = ++seed;
                Supervise(s, slot, () => ledger.IsDone, () => SemaphoreWorkerAsync(sem, ledger, cancel, new Random(mySeed)), "worker");
            }
        }

        Task pool = Task.Run(async () =>
        {
            var r = new Random(100);
            while (!ledger.IsDone)
            {
                await AcquireOnceAsync(sem, ledger, cancel, r, inTasklet: false);
            }
        });
        var failures = new Failures();
        var threads = new List<Thread>
        {
            RunThread(a, failures, "scheduler A"),
            RunThread(b, failures, "scheduler B"),
            new(() => failures.Guard("OS thread", () => SemaphoreOsThread(sem, ledger, cancel))) { IsBackground = true },
            DisturberThread(slots, cancel, stop, failures),
        };
        threads.ForEach(t => t.Start());
        for (int i = 0; i < 2; i++)
        {
            Assert.True(threads[i].Join(s_hangGuard), $"hang guard: {threads[i].Name} did not return");
        }

        Assert.True(threads[2].Join(s_hangGuard), "hang guard: the OS thread did not finish");
        WaitGuarded(pool, "the pool worker");
        stop.Set();
        Assert.True(threads[3].Join(s_hangGuard), "hang guard: the disturber did not finish");
        failures.AssertNone();
        Assert.Equal(0, ledger.Violations);
        Assert.Equal(ledger.Acquired, ledger.Released);
        Assert.Equal(permits, sem.CurrentCount);
        Assert.True(ledger.Acquired > 0);
    }

    private static async Task SemaphoreWorkerAsync(AsyncSemaphore sem, PermitLedger ledger, CancelBox cancel, Random r)
    {
        while (!ledger.IsDone)
        {
            await AcquireOnceAsync(sem, ledger, cancel, r, inTasklet: true);
        }
    }

    // One attempt. The acquisition is recorded right after the wait returns, before anything can throw: a kill that
    // comes after the handoff is raised at the next blocking point, inside the try, and the finally gives it back.
    private static async Task AcquireOnceAsync(AsyncSemaphore sem, PermitLedger ledger, CancelBox cancel, Random r, bool inTasklet)
    {
        ledger.CountAttempt();
        int mode = r.Next(inTasklet ? 4 : 3);
        try
        {
            switch (mode)
            {
                case 0:
                    await sem.WaitAsync();
                    break;
                case 1:
                    await sem.WaitAsync(cancel.Token);
                    break;
                case 2:
                    if (!sem.TryWait())
                    {
                        return;
                    }

                    break;
                default:
                    using (Tasklet.Timeout(TimeSpan.FromTicks(r.Next(1, 300))))
                    {
                        await sem.WaitAsync();
                    }

                    break;
            }
        }
        catch (OperationCanceledException e) when (e is not TaskletExitException)
        {
            return; // cancelled: took nothing
        }
        catch (TaskletTimeoutException)
        {
            return; // timed out: took nothing
        }

        ledger.Acquire();
        try
        {
            if (inTasklet && r.Next(2) == 0)
            {
                await Tasklet.Yield();
            }
            else if (!inTasklet)
            {
                await Task.Yield();
            }
        }
        finally
        {
            ledger.Release(sem);
        }
    }

    private static void SemaphoreOsThread(AsyncSemaphore sem, PermitLedger ledger, CancelBox cancel)
    {
        var r = new Random(200);
        while (!ledger.IsDone)
        {
            ledger.CountAttempt();
            try
            {
                if (r.Next(3) == 0)
                {
                    if (!sem.TryWait())
                    {
                        continue;
                    }
                }
                else
                {
                    sem.Wait(r.Next(2) == 0 ? cancel.Token : default);
                }
            }
            catch (OperationCanceledException)
            {
                continue;
            }

            ledger.Acquire();
            Thread.SpinWait(r.Next(1, 50));
            ledger.Release(sem);
        }
    }

    // ------------------------------------------------------------------ wait group

    [Fact]
    public void WaitGroup_RoundsAcrossThreads_NoWaiterWakesBeforeItsRoundReachedZero()
    {
        const int rounds = 300;
        const int doers = 5; // two tasklets on A, two on B, the OS thread
        var group = new WaitGroup { Name = "round" };
        var barrier = new AsyncBarrier(1 + 4 + 2 + 1) { Name = "phase" }; // leader, doers, waiters, OS thread
        var shared = new Shared<WaitGroupRound>();
        var victims = new Slot();
        var stop = new Flag();
        var failures = new Failures();
        int violations = 0, normalWakes = 0, endedWakes = 0, osWaits = 0;
        using var cancel = new CancelBox();
        using var a = new Scheduler();
        using var b = new Scheduler();

        void Check(WaitGroupRound round, string who)
        {
            int completed = Volatile.Read(ref round.Completed);
            if (completed != doers)
            {
                Interlocked.Increment(ref violations);
                failures.Add($"{who} woke in round {round.Number} after {completed} of {doers} Done calls");
            }
        }

        a.Go(async () =>
        {
            for (int i = 0; i < rounds; i++)
            {
                var round = new WaitGroupRound(i);
                shared.Value = round; // published by the barrier's gate before anyone passes phase 1
                group.Add(doers);
                victims.Current = Tasklet.Go(async () =>
                {
                    await group.WaitAsync();
                    Check(round, "a victim");
                }, "victim");
                await barrier.SignalAndWaitAsync();
                await barrier.SignalAndWaitAsync();
            }

            stop.Set();
        }, "leader");

        var r = new Random(7);
        foreach (Scheduler s in new[] { a, b })
        {
            for (int k = 0; k < 2; k++)
            {
                int yields = r.Next(1, 4);
                s.Go(async () =>
                {
                    for (int i = 0; i < rounds; i++)
                    {
                        await barrier.SignalAndWaitAsync();
                        WaitGroupRound round = shared.Value!;
                        for (int y = 0; y < (i % yields); y++)
                        {
                            await Tasklet.Yield();
                        }

                        Interlocked.Increment(ref round.Completed);
                        group.Done();
                        await barrier.SignalAndWaitAsync();
                    }
                }, "doer");
            }

            int waiterSeed = r.Next();
            s.Go(async () =>
            {
                var wr = new Random(waiterSeed);
                for (int i = 0; i < rounds; i++)
                {
                    await barrier.SignalAndWaitAsync();
                    WaitGroupRound round = shared.Value!;
                    try
                    {
                        switch (wr.Next(3))
                        {
                            case 0:
                                await group.WaitAsync();
                                break;
                            case 1:
                                await group.WaitAsync(cancel.Token);
                                break;
                            default:
                                using (Tasklet.Timeout(TimeSpan.FromTicks(wr.Next(1, 300))))
                                {
                                    await group.WaitAsync();
                                }

                                break;
                        }

                        Check(round, "a waiter");
                        Interlocked.Increment(ref normalWakes);
                    }
                    catch (Exception e) when (e is TaskletTimeoutException or OperationCanceledException)
                    {
                        Interlocked.Increment(ref endedWakes);
                    }

                    await barrier.SignalAndWaitAsync();
                }
            }, "waiter");
        }

        var threads = new List<Thread>
        {
            RunThread(a, failures, "scheduler A"),
            RunThread(b, failures, "scheduler B"),
            new(() => failures.Guard("OS thread", () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    barrier.SignalAndWait();
                    WaitGroupRound round = shared.Value!;
                    Interlocked.Increment(ref round.Completed);
                    group.Done();
                    try
                    {
                        group.Wait(i % 2 == 0 ? cancel.Token : default);
                        Check(round, "the OS thread");
                    }
                    catch (OperationCanceledException)
                    {
                        // cancelled: nothing to check
                    }

                    osWaits++;

                    barrier.SignalAndWait();
                }
            })) { IsBackground = true },
            DisturberThread([victims], cancel, stop, failures),
        };
        threads.ForEach(t => t.Start());
        JoinAll(threads);
        failures.AssertNone();
        Assert.Equal(0, violations);
        Assert.Equal(0, group.Count);
        Assert.False(barrier.IsBroken);
        Assert.Equal(2L * rounds, barrier.Phase);
        Assert.Equal(2 * rounds, normalWakes + endedWakes); // each tasklet waiter's wait ended exactly once per round
        Assert.Equal(rounds, osWaits);
    }

    // ------------------------------------------------------------------ event

    [Fact]
    public void Event_RoundsAcrossThreads_EveryWaiterWakes_NoneBeforeTheSet()
    {
        const int rounds = 300;
        var ev = new AsyncManualResetEvent { Name = "go" };
        var never = new Channel<int> { Name = "never" };
        var barrier = new AsyncBarrier(1 + 4 + 1 + 1 + 1) { Name = "phase" }; // leader, waiters, setter, OS thread, pool
        var shared = new Shared<EventRound>();
        var victims = new Slot();
        var stop = new Flag();
        var failures = new Failures();
        int early = 0, woken = 0, ended = 0;
        int victimsWoken = 0;
        using var cancel = new CancelBox();
        using var a = new Scheduler();
        using var b = new Scheduler();

        void Woke(EventRound round, string who, bool victim = false)
        {
            Interlocked.Increment(ref victim ? ref victimsWoken : ref woken);
            if (!Volatile.Read(ref round.Set))
            {
                Interlocked.Increment(ref early);
                failures.Add($"{who} woke in round {round.Number} before the event was set");
            }
        }

        a.Go(async () =>
        {
            for (int i = 0; i < rounds; i++)
            {
                var round = new EventRound(i);
                ev.Reset(); // every party is between phase 2 and phase 1: nobody waits on the event now
                shared.Value = round;
                victims.Current = Tasklet.Go(async () =>
                {
                    await ev.WaitAsync();
                    Woke(round, "a victim", victim: true);
                }, "victim");
                await barrier.SignalAndWaitAsync();
                await barrier.SignalAndWaitAsync();
            }

            stop.Set();
        }, "leader");

        b.Go(async () =>
        {
            var sr = new Random(3);
            for (int i = 0; i < rounds; i++)
            {
                await barrier.SignalAndWaitAsync();
                EventRound round = shared.Value!;
                for (int y = sr.Next(4); y > 0; y--)
                {
                    await Tasklet.Yield(); // sometimes before the waiters park, sometimes after
                }

                Volatile.Write(ref round.Set, true);
                ev.Set();
                await barrier.SignalAndWaitAsync();
            }
        }, "setter");

        int seed = 10;
        foreach (Scheduler s in new[] { a, b })
        {
            for (int k = 0; k < 2; k++)
            {
                int mySeed = ++seed;
                s.Go(async () =>
                {
                    var wr = new Random(mySeed);
                    SelectCase evCase = ev.WaitCase();
                    ReceiveCase<int> nothing = never.ReceiveCase();
                    for (int i = 0; i < rounds; i++)
                    {
                        await barrier.SignalAndWaitAsync();
                        EventRound round = shared.Value!;
                        try
                        {
                            switch (wr.Next(4))
                            {
                                case 0:
                                    await ev.WaitAsync();
                                    break;
                                case 1:
                                    Assert.Equal(1, await Select.WaitAsync(nothing, evCase));
                                    break;
                                case 2:
                                    await ev.WaitAsync(cancel.Token);
                                    break;
                                default:
                                    using (Tasklet.Timeout(TimeSpan.FromTicks(wr.Next(1, 300))))
                                    {
                                        await ev.WaitAsync();
                                    }

                                    break;
                            }

                            Woke(round, "a waiter");
                        }
                        catch (Exception e) when (e is TaskletTimeoutException or OperationCanceledException)
                        {
                            Interlocked.Increment(ref ended);
                        }

                        await barrier.SignalAndWaitAsync();
                    }
                }, "waiter");
            }
        }

        Task pool = Task.Run(async () =>
        {
            for (int i = 0; i < rounds; i++)
            {
                await barrier.SignalAndWaitAsync();
                EventRound round = shared.Value!;
                await ev.WaitAsync();
                Woke(round, "the pool waiter");
                await barrier.SignalAndWaitAsync();
            }
        });

        var threads = new List<Thread>
        {
            RunThread(a, failures, "scheduler A"),
            RunThread(b, failures, "scheduler B"),
            new(() => failures.Guard("OS thread", () =>
            {
                for (int i = 0; i < rounds; i++)
                {
                    barrier.SignalAndWait();
                    EventRound round = shared.Value!;
                    try
                    {
                        ev.Wait(i % 3 == 0 ? cancel.Token : default);
                        Woke(round, "the OS thread");
                    }
                    catch (OperationCanceledException)
                    {
                        Interlocked.Increment(ref ended);
                    }

                    barrier.SignalAndWait();
                }
            })) { IsBackground = true },
            DisturberThread([victims], cancel, stop, failures),
        };
        threads.ForEach(t => t.Start());
        JoinAll(threads);
        WaitGuarded(pool, "the pool waiter");
        failures.AssertNone();
        Assert.Equal(0, early);
        Assert.Equal(6 * rounds, woken + ended); // each of the six waiters' waits ended exactly once per round
        Assert.True(victimsWoken <= rounds);
        Assert.Equal(0, never.Balance);
        Assert.Equal(2L * rounds, barrier.Phase);
    }

    // ------------------------------------------------------------------ rig

    private static void Supervise(Scheduler s, Slot slot, Func<bool> done, Func<Task> body, string name)
    {
        s.Go(async () =>
        {
            while (!done())
            {
                Tasklet worker = Tasklet.Go(body, name);
                slot.Current = worker;
                try
                {
                    await worker;
                }
                catch (TaskletExitException)
                {
                    // Killed: replace it.
                }
            }

            slot.Current = null;
        }, name + " supervisor");
    }

    private static Thread RunThread(Scheduler s, Failures failures, string name)
        => new(() => failures.Guard(name + " Run()", s.Run)) { IsBackground = true, Name = name };

    /// <summary>Kills the tasklet in a random slot or cancels the shared token, with short random pauses; until stopped.</summary>
    private static Thread DisturberThread(IReadOnlyList<Slot> slots, CancelBox cancel, Flag stop, Failures failures)
        => new(() => failures.Guard("disturber", () =>
        {
            var r = new Random(31);
            while (!stop.IsSet)
            {
                int k = r.Next(slots.Count + 1);
                if (k < slots.Count)
                {
                    slots[k].Current?.Kill();
                }
                else
                {
                    cancel.Cancel();
                }

                // A short, random pause between disturbances (never a wait for another party).
                Thread.SpinWait(r.Next(1, 2_000));
                if (r.Next(8) == 0)
                {
                    Thread.Yield();
                }
            }
        }))
        { IsBackground = true, Name = "disturber" };

    private static void WaitGuarded(Task task, string what)
        => Assert.True(task.Wait(s_hangGuard), $"hang guard: {what} did not finish");

    private static void JoinAll(List<Thread> threads)
    {
        foreach (Thread t in threads)
        {
            Assert.True(t.Join(s_hangGuard), $"hang guard: {t.Name ?? "a thread"} did not finish");
        }
    }

    private sealed class WaitGroupRound(int number)
    {
        public readonly int Number = number;
        public int Completed;
    }

    private sealed class EventRound(int number)
    {
        public readonly int Number = number;
        public bool Set;
    }

    private sealed class Shared<T>
        where T : class
    {
        private volatile T? _value;

        public T? Value
        {
            get => _value;
            set => _value = value;
        }
    }

    private sealed class PermitLedger(int permits, int attempts)
    {
        private int _attempts;
        private int _holders;
        private long _acquired;
        private long _released;
        private int _violations;

        public bool IsDone => Volatile.Read(ref _attempts) >= attempts;

        public long Acquired => Interlocked.Read(ref _acquired);

        public long Released => Interlocked.Read(ref _released);

        public int Violations => Volatile.Read(ref _violations);

        public void CountAttempt() => Interlocked.Increment(ref _attempts);

        public void Acquire()
        {
            Interlocked.Increment(ref _acquired);
            if (Interlocked.Increment(ref _holders) > permits)
            {
                Interlocked.Increment(ref _violations); // more holders than permits: mutual exclusion broken
            }
        }

        // The holder leaves before the permit is given back, so the count of holders never runs ahead of the permits.
        public void Release(AsyncSemaphore sem)
        {
            Interlocked.Decrement(ref _holders);
            sem.Release();
            Interlocked.Increment(ref _released);
        }
    }

    private sealed class Flag
    {
        private volatile bool _set;

        public bool IsSet => _set;

        public void Set() => _set = true;
    }

    private sealed class Slot
    {
        private volatile Tasklet? _current;

        public Tasklet? Current
        {
            get => _current;
            set => _current = value;
        }
    }

    private sealed class Failures
    {
        private readonly List<string> _messages = [];

        public void Add(string message)
        {
            lock (_messages)
            {
                _messages.Add(message);
            }
        }

        public void Guard(string who, Action action)
        {
            try
            {
                action();
            }
            catch (Exception e)
            {
                Add($"{who}: {e}");
            }
        }

        public void AssertNone()
        {
            lock (_messages)
            {
                Assert.True(_messages.Count == 0, string.Join(Environment.NewLine, _messages.Take(10)));
            }
        }
    }

    /// <summary>A token source that the disturber cancels; the next reader gets a fresh one.</summary>
    private sealed class CancelBox : IDisposable
    {
        private CancellationTokenSource _source = new();

        public CancellationToken Token
        {
            get
            {
                CancellationTokenSource current = Volatile.Read(ref _source);
                if (current.IsCancellationRequested)
                {
                    // Not disposed: the disturber may still be cancelling it. It holds no timer or handle.
                    Interlocked.CompareExchange(ref _source, new CancellationTokenSource(), current);
                    current = Volatile.Read(ref _source);
                }

                return current.Token;
            }
        }

        public void Cancel() => Volatile.Read(ref _source).Cancel();

        public void Dispose() => Volatile.Read(ref _source).Dispose(); // after every party stopped
    }
}
