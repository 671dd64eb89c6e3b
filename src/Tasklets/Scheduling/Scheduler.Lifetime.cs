using Tasklets.Internal;

namespace Tasklets;

// Facet: the scheduler's lifetime at the boundary with the rest of .NET: stopping every tasklet (KillAll, the stop of
// Run(CancellationToken)) and Dispose, which stops a scheduler that another thread is running.
// Relies on: the owner (the thread inside a Run method, _ownerThreadId, written under _inboxLock) is the only thread
// that touches the alive list, so every stop made from another thread is an inbox request that the owner applies
// between steps; Enter (Scheduler.cs) takes ownership under _inboxLock, and Exit gives it back under that lock and then
// calls NotifyDisposeWaiters; _stopping makes the loop ignore KeepAlive holds and kills every tasklet spawned later.

public sealed partial class Scheduler
{
    // Dispose's state, written under _inboxLock (read lock-free only where a comment says why that is enough).
    // Order: _disposeRequested, then _disposing (one thread claims the final shutdown), then _disposed, then
    // _disposeDone. Invariant: _disposed implies _disposing, which implies _disposeRequested.
    private bool _disposeRequested; // Dispose was called: no Run method enters any more (Enter checks it under the lock)
    private bool _disposing;        // a thread, never while another owns the scheduler, claimed the final shutdown
    private volatile bool _disposed; // spawns and invocations are refused from here on (checked under the lock)
    private bool _disposeDone;      // the final shutdown is over: Dispose returns on every thread
    private bool _disposeOnExit;    // owner thread: a step of this scheduler called Dispose; the Run method completes it

    // Dispose callers on other threads wait on this monitor, never on _inboxLock, on which the owner sleeps: a pulse
    // meant for the owner must not be taken by a disposer. Lock order: _disposeWaitLock, then _inboxLock; the notifier
    // takes it only after releasing _inboxLock.
    private readonly object _disposeWaitLock = new();

    /// <summary>
    /// Kills every alive tasklet (<see cref="Tasklet.Kill"/> on each): <see cref="TaskletExitException"/> at their
    /// blocking points, their <c>finally</c> blocks run. Never blocks; any thread may call it.
    /// </summary>
    /// <remarks>
    /// From a tasklet of this scheduler it kills the others at once and the caller itself at its next library
    /// operation. From another thread it is applied by the thread that runs the scheduler before that runs another
    /// step (while no thread runs it, by the next Run method), to the tasklets alive then; a tasklet spawned after
    /// the call is not killed.
    /// </remarks>
    public void KillAll()
    {
        if (IsOwnerThread)
        {
            KillAlive();
        }
        else
        {
            PostToInbox(new Entry(null!, s_killAll, null), front: false);
        }
    }

    // The token of Run(CancellationToken) was cancelled. Any thread (the token's callback).
    private void PostStop(RunStop stop) => PostToInbox(new Entry(null!, s_stop, stop), front: false);

    // A stop request of Run(CancellationToken) taken in from the inbox. Owner thread.
    private void ApplyStop(RunStop stop)
    {
        if (!ReferenceEquals(stop, _runStop) || stop.Applied)
        {
            return; // a late request of a run that has returned, or a repeat
        }

        stop.Applied = true;
        _stopping = true;
        KillAlive();
    }

    /// <summary>The stop of one Run(CancellationToken) call, created per call; <see cref="Applied"/> is the owner thread's.</summary>
    private sealed class RunStop(Scheduler scheduler)
    {
        public Scheduler Scheduler { get; } = scheduler;

        public bool Applied;
    }

    /// <summary>
    /// Stops the scheduler and releases it: kills every alive tasklet and waits until they are dead (their
    /// <c>finally</c> blocks ran), as far as they can get without waiting on anything outside the library; from then
    /// on, spawning, <see cref="InvokeAsync(Action)"/> and every Run method throw <see cref="ObjectDisposedException"/>.
    /// Thread-safe and idempotent: a second call, from any thread, returns when the first one's work is done.
    /// </summary>
    /// <remarks>
    /// <para><b>While another thread runs the scheduler</b> (inside <see cref="Run()"/>, <see cref="RunAsync"/>,
    /// <see cref="RunFor"/>...): Dispose asks that thread to kill every tasklet, as a cancelled
    /// <see cref="Run(CancellationToken)"/> does (<see cref="KeepAlive"/> holds stop counting, a tasklet spawned from
    /// then on is killed before it runs), blocks until that thread has left its Run method, and then finishes what is
    /// left itself. The Run method in progress returns as it would have returned had its tasklets ended: normally, or
    /// with the failures nobody observed; the next Run method throws <see cref="ObjectDisposedException"/>.</para>
    /// <para><b>From a step of this scheduler</b> (a tasklet disposing its own scheduler): every tasklet is killed, the
    /// caller at its next library operation, and Dispose returns at once, since it cannot wait for its own caller; the
    /// Run method in progress returns once they are dead and completes the dispose.</para>
    /// <para>Dispose blocks its thread. A tasklet that never reaches a switch point (a loop without an await) keeps it
    /// waiting, as it keeps every other tasklet of the scheduler waiting. A tasklet left awaiting something foreign (a
    /// kill cannot end another library's await) is abandoned once its <see cref="Tasklet.CancellationToken"/>
    /// callbacks ran, as by a cancelled Run.</para>
    /// </remarks>
    public void Dispose()
    {
        if (Volatile.Read(ref _disposeDone))
        {
            return; // a plain read would do: a stale false only takes the locked path below
        }

        if (IsOwnerThread)
        {
            DisposeFromOwnStep();
            return;
        }

        if (AwaitTurnToDispose())
        {
            CompleteDispose();
        }
    }

    /// <summary>
    /// Not the owner thread. Marks the dispose requested, then waits until no thread owns the scheduler; returns true
    /// when this thread claimed the final shutdown, false once another thread completed it.
    /// </summary>
    private bool AwaitTurnToDispose()
    {
        bool posted = false;
        lock (_disposeWaitLock)
        {
            while (true)
            {
                lock (_inboxLock)
                {
                    _disposeRequested = true; // from here on Enter refuses every Run method but the shutdown's
                    if (_disposeDone)
                    {
                        return false;
                    }

                    if (_ownerThreadId == 0)
                    {
                        if (!_disposing)
                        {
                            _disposing = true; // nobody can own it again (Enter), so this thread shuts it down alone
                            return true;
                        }

                        // Another disposer (or the owner leaving a run its step disposed) finishes: wait for its pulse.
                    }
                    else if (!posted)
                    {
                        // The owner applies the stop between two steps (DrainInbox). Posted once: a repeat would only
                        // kill what the first one killed.
                        posted = true;
                        AddToInboxLocked(new Entry(null!, s_dispose, null), front: false);
                    }
                }

                // No lost wakeup: the state read above changes only under _inboxLock, and whoever changes it pulses
                // under _disposeWaitLock afterwards, which it can take only once this thread waits (or before the
                // read above, which then saw the change).
                Monitor.Wait(_disposeWaitLock);
            }
        }
    }

    /// <summary>
    /// This thread claimed the final shutdown and no thread owns the scheduler (nor can: Enter refuses). Refuses new
    /// work, kills and runs what is left (Shutdown), leaves the deadlock group, and releases the waiting disposers.
    /// </summary>
    private void CompleteDispose()
    {
        lock (_inboxLock)
        {
            // Under the lock that spawns and invocations post under (PostWork): none can land after the shutdown's
            // last drain, where nobody would ever take it in (its joiner, its awaiter would wait forever).
            _disposed = true;
        }

        try
        {
            // The run queue too: an invocation a step made is queued there, and a RunOnce or RunFor may have returned
            // before it ran, with nothing alive; its awaiter waits for it.
            if (_aliveCount > 0 || _inboxCount > 0 || _runQueue.Count > 0)
            {
                try
                {
                    RunCore(RunMode.Shutdown, null, 0);
                }
                catch (DeadlockException)
                {
                    // Shutting down: the tasklets were killed anyway.
                }
            }
        }
        finally
        {
            lock (_inboxLock)
            {
                _disposeDone = true;
            }

            LeaveDeadlockGroupOnDispose();
            NotifyDisposeWaiters();
        }
    }

    // A step of this scheduler disposes it. Owner thread.
    private void DisposeFromOwnStep()
    {
        lock (_inboxLock)
        {
            _disposeRequested = true;
        }

        _disposeOnExit = true; // RunCore, once its thread has left, completes the dispose (CompleteDisposeAfterRun)
        ApplyDisposeStop();
    }

    // RunCore's last act, owner gone: a step of the run disposed the scheduler. Completes the dispose unless a disposer
    // on another thread claimed it meanwhile (it saw the owner leave first).
    private void CompleteDisposeAfterRun()
    {
        _disposeOnExit = false; // before the shutdown's own RunCore, which ends here too
        lock (_inboxLock)
        {
            if (_disposing)
            {
                return;
            }

            _disposing = true;
        }

        CompleteDispose();
    }

    // A dispose's stop, taken in from the inbox (or made by the disposing step itself). Owner thread.
    private void ApplyDisposeStop()
    {
        _stopping = true;
        KillAlive();
    }

    // The owner left (Exit), or a dispose completed: wake the disposers waiting for either. Never under _inboxLock.
    private void NotifyDisposeWaiters()
    {
        // Read after the owner's release of _inboxLock: a disposer that set it before that section is seen here; one
        // that sets it after saw the owner gone and does not wait for this pulse.
        if (Volatile.Read(ref _disposeRequested))
        {
            lock (_disposeWaitLock)
            {
                Monitor.PulseAll(_disposeWaitLock);
            }
        }
    }

    /// <summary>
    /// Posts a spawn or an invocation, which someone waits for, unless the scheduler is disposed. The check is made
    /// under the inbox lock, the lock <see cref="CompleteDispose"/> sets <see cref="_disposed"/> under, so nothing is
    /// posted after the final shutdown's last look at the inbox. Any thread but the owner.
    /// </summary>
    private void PostWork(Entry entry)
    {
        lock (_inboxLock)
        {
            if (_disposed)
            {
                ThrowHelper.ThrowObjectDisposed(this);
            }

            AddToInboxLocked(entry, front: false); // one critical section with the check
        }
    }
}
