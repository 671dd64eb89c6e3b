using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Tasklets.Hosting;

/// <summary>
/// The hosted scheduler (docs/hosting.md): owns the application's <see cref="Tasklets.Scheduler"/> singleton, runs it
/// on a dedicated thread from <see cref="StartAsync"/> to <see cref="StopAsync"/>, and logs what the scheduler reports.
/// </summary>
/// <remarks>
/// <para><b>Staying up while idle without losing deadlock detection.</b> <see cref="Scheduler.Run(CancellationToken)"/>
/// returns once no tasklet is alive. <see cref="Scheduler.KeepAlive"/> would keep it inside, but a hold also means
/// "a party outside may still wake these tasklets", which turns deadlock detection (and the likely-deadlock stall
/// report) off for as long as it is held: for the host's whole life. Instead, each run starts with an <i>idle
/// keeper</i>, a tasklet that stays alive only while it is the only one: it polls, every
/// <see cref="IdlePollInterval"/>, on a foreign await (<see cref="Task.Delay(TimeSpan, CancellationToken)"/>, which a
/// deadlock check never counts as blocked), and leaves as soon as another tasklet is alive. From then on the scheduler
/// is judged exactly as a plain <c>Run</c> judges it. When every tasklet has died, <c>Run</c> returns and the loop
/// starts the next run with a new keeper; what other threads spawned meanwhile waits in the scheduler's inbox, which
/// the next run takes in first. With <see cref="TaskletSchedulerOptions.DetectDeadlocks"/> false the loop holds
/// <see cref="Scheduler.KeepAlive"/> instead, for good, and needs no keeper.</para>
/// <para><b>Threads.</b> The run loop, the keeper and the <see cref="SchedulerOptions.OnUnobservedFailure"/> callback
/// run on the dedicated thread; <see cref="OnStalled"/> on the library's stall monitor thread; StartAsync and
/// StopAsync on the host's. <see cref="_logged"/> is the dedicated thread's alone.</para>
/// </remarks>
internal sealed class HostedScheduler : IHostedService, IDisposable
{
    /// <summary>How often the idle keeper checks whether it is still the only tasklet (see the remarks).</summary>
    internal static readonly TimeSpan IdlePollInterval = TimeSpan.FromMilliseconds(100);

    /// <summary>The idle keeper's name, as <see cref="Scheduler.Dump"/> shows it while the scheduler is empty.</summary>
    internal const string IdleKeeperName = "Tasklets.Hosting idle keeper";

    /// <summary>The dedicated thread's name.</summary>
    internal const string ThreadName = "Tasklets hosted scheduler";

    private readonly ILogger _logger;
    private readonly IServiceProvider _services;
    private readonly TaskletRegistration[] _registrations;
    private readonly Action<Tasklet, Exception>? _userFailureCallback;
    private readonly bool _detectDeadlocks;

    // Cancelled by StopAsync (or Dispose): the token of every Run, so cancelling it kills every tasklet (Run waits for
    // their finally blocks). Disposed by Dispose after the cancel; a loop still inside Run then (a StopAsync that gave
    // up on the host's token) only reads its captured token, which stays cancelled.
    private readonly CancellationTokenSource _stopping = new();

    // Completed by the run loop as its last act (after the final Run returned); StopAsync waits for it.
    private readonly TaskCompletionSource _loopEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    // Failures the OnUnobservedFailure callback logged during the current Run, by reference: Run's AggregateException
    // repeats them when it returns, and only the rest (a callback's own failure, a posted continuation's) are logged
    // then. Dedicated thread only (the callback and the loop both run there). Cleared after every Run.
    private readonly HashSet<Exception> _logged = new(ReferenceEqualityComparer.Instance);

    private readonly object _stopGate = new(); // orders StopAsync's cancel and Dispose's
    private bool _disposed;                    // under _stopGate

    private int _started; // 0, then 1 once StartAsync ran (Interlocked: a second start is refused)

    /// <summary>Creates the hosted scheduler and its <see cref="Tasklets.Scheduler"/>.</summary>
    /// <param name="options">The options; <see cref="TaskletSchedulerOptions.Scheduler"/> must not be null.</param>
    /// <param name="services">The application's root provider: the logger factory, the lifetime, the tasklets' bodies.</param>
    /// <exception cref="InvalidOperationException"><see cref="TaskletSchedulerOptions.Scheduler"/> is null.</exception>
    public HostedScheduler(IOptions<TaskletSchedulerOptions> options, IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(services);
        SchedulerOptions schedulerOptions = options.Value.Scheduler
            ?? throw new InvalidOperationException(
                "TaskletSchedulerOptions.Scheduler is null: leave the default, or set it to a SchedulerOptions (o.Scheduler = new SchedulerOptions { ... }).");

        _services = services;
        _logger = (services.GetService<ILoggerFactory>() ?? NullLoggerFactory.Instance).CreateLogger(TaskletSchedulerOptions.LoggerCategory);
        _registrations = [.. services.GetServices<TaskletRegistration>()];
        _userFailureCallback = schedulerOptions.OnUnobservedFailure;
        _detectDeadlocks = options.Value.DetectDeadlocks;
        Scheduler = new Scheduler(schedulerOptions with { OnUnobservedFailure = OnUnobservedFailure });
    }

    /// <summary>The hosted scheduler: the application's <see cref="Tasklets.Scheduler"/> singleton.</summary>
    public Scheduler Scheduler { get; }

    /// <summary>
    /// Spawns the registered tasklets (they wait in the scheduler's inbox) and starts the dedicated thread that runs
    /// the scheduler. Returns at once.
    /// </summary>
    /// <param name="cancellationToken">The host's start token; already cancelled, nothing is started.</param>
    /// <returns>A completed task.</returns>
    /// <exception cref="InvalidOperationException">Started twice.</exception>
    public Task StartAsync(CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        if (Interlocked.Exchange(ref _started, 1) != 0)
        {
            throw new InvalidOperationException("The hosted tasklet scheduler was already started: a host starts its hosted services once.");
        }

        Scheduler.Stalled += OnStalled;
        foreach (TaskletRegistration registration in _registrations)
        {
            // Here, on the host's thread: services resolved now are made outside any tasklet (docs/hosting.md).
            Func<CancellationToken, Task> body = registration.Prepare(_services);

            // Tasklet.Current is the new tasklet once its body runs: its token is cancelled when it is killed. No token
            // of its own: Run's token kills it with every other tasklet.
            _ = Scheduler.Go(() => body(Tasklet.Current!.CancellationToken), registration.Name, CancellationToken.None);
        }

        var thread = new Thread(RunLoop) { IsBackground = true, Name = ThreadName };
        thread.Start();
        return Task.CompletedTask;
    }

    /// <summary>
    /// Kills every tasklet and waits until they are dead (their <c>finally</c> blocks ran) and the dedicated thread has
    /// left the scheduler, or until <paramref name="cancellationToken"/> (the host's shutdown timeout) fires: then it
    /// logs a warning with the <see cref="Scheduler.Dump"/> of what is still alive and returns. Never throws for the
    /// timeout, never hangs the host.
    /// </summary>
    /// <param name="cancellationToken">The host's shutdown token.</param>
    /// <returns>Completes when the scheduler stopped, or when the token fired.</returns>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _started) == 0)
        {
            return; // never started: nothing runs
        }

        // Run(token) takes the cancellation in between two steps: KillAll, then it runs on until every tasklet is dead.
        RequestStop();
        try
        {
            await _loopEnded.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The dedicated thread is a background thread: left inside Run, it cannot keep the process alive.
            HostingLog.StopTimedOut(_logger, Scheduler.Dump());
        }
    }

    /// <summary>
    /// The container is disposed (the host is): stops the scheduler as StopAsync does, without waiting. After a
    /// graceful StopAsync this changes nothing.
    /// </summary>
    public void Dispose()
    {
        // The container calls it twice: once for this registration and once for the IHostedService that forwards to it.
        lock (_stopGate)
        {
            if (!_disposed)
            {
                _disposed = true;
                _stopping.Cancel();
                _stopping.Dispose();
            }
        }
    }

    /// <summary>Cancels <see cref="_stopping"/> unless Dispose did (then it is cancelled already). Any thread.</summary>
    private void RequestStop()
    {
        lock (_stopGate)
        {
            if (!_disposed)
            {
                _stopping.Cancel(); // runs Run's registration: a post to the scheduler's inbox, nothing that takes _stopGate
            }
        }
    }

    /// <summary>The dedicated thread: one Run after another until StopAsync, logging what each Run throws.</summary>
    private void RunLoop()
    {
        HostingLog.SchedulerStarted(_logger, ThreadName);
        CancellationToken stopping = _stopping.Token;
        // Held for the whole run: when deadlock detection is off, or once a deadlock left tasklets alive (LogDeadlock).
        // While it is held, Run stays inside on an empty scheduler by itself and no keeper is spawned.
        IDisposable? hold = _detectDeadlocks ? null : Scheduler.KeepAlive();
        try
        {
            while (!stopping.IsCancellationRequested)
            {
                if (hold is null)
                {
                    SpawnIdleKeeper();
                }

                try
                {
                    // Returns once no tasklet is alive (the keeper left, and every other tasklet died); the next turn
                    // starts a new keeper.
                    Scheduler.Run(stopping);
                }
                catch (OperationCanceledException) when (stopping.IsCancellationRequested)
                {
                    // StopAsync: every tasklet was killed and is dead.
                }
                catch (DeadlockException e)
                {
                    hold ??= LogDeadlock(e);
                }
                catch (AggregateException e)
                {
                    // Failures nobody observed: the callback logged them at their report points; the rest here.
                    LogUnlogged(e);
                }

                _logged.Clear();
            }

            HostingLog.SchedulerStopped(_logger);
        }
        catch (Exception e)
        {
            // Run refused (another thread runs this scheduler; it was disposed) or a keeper could not be spawned:
            // tasklets would wait in the inbox for good, and requests with them. Say so, and stop the application.
            HostingLog.SchedulerCrashed(_logger, e);
            if (!stopping.IsCancellationRequested)
            {
                _services.GetService<IHostApplicationLifetime>()?.StopApplication();
            }
        }
        finally
        {
            hold?.Dispose();
            Scheduler.Stalled -= OnStalled;
            _loopEnded.TrySetResult();
        }
    }

    /// <summary>
    /// Spawns the idle keeper: alive only while no other tasklet is, so that Run stays inside on an empty scheduler
    /// and judges a busy one as it is (see the class remarks). Dedicated thread, before Run.
    /// </summary>
    private void SpawnIdleKeeper()
    {
        Scheduler scheduler = Scheduler;
        _ = scheduler.Go(async () =>
        {
            CancellationToken killed = Tasklet.Current!.CancellationToken;
            try
            {
                // Read on the scheduler's thread, between steps of other tasklets: the exact alive set, keeper included.
                while (scheduler.Tasklets.Count <= 1)
                {
                    await Task.Delay(IdlePollInterval, killed);
                }
            }
            catch (OperationCanceledException) when (killed.IsCancellationRequested)
            {
                // Killed (StopAsync): the kill cancelled the delay; the keeper ends as a killed tasklet would.
            }
        }, IdleKeeperName);
    }

    /// <summary>
    /// Logs a deadlock. Returns a keep-alive hold when some of its tasklets are still alive (KillOnDeadlock is false,
    /// or their kills could not end them): the next Run would find the same deadlock at once, again and again, so
    /// detection is turned off instead. Dedicated thread.
    /// </summary>
    private IDisposable? LogDeadlock(DeadlockException deadlock)
    {
        HostingLog.Deadlock(_logger, deadlock, Describe(deadlock.Blocked));
        if (deadlock.InnerException is AggregateException failures)
        {
            LogUnlogged(failures); // the failures it carries went through the callback; a callback's own did not
        }

        List<Tasklet> survivors = [.. deadlock.Blocked.Where(static t => t.IsAlive)];
        if (survivors.Count == 0)
        {
            return null;
        }

        HostingLog.DeadlockSurvivors(_logger, Describe(survivors));
        return Scheduler.KeepAlive();
    }

    private void LogUnlogged(AggregateException failures)
    {
        foreach (Exception failure in failures.InnerExceptions)
        {
            if (!_logged.Contains(failure))
            {
                HostingLog.RunFailure(_logger, failure);
            }
        }
    }

    /// <summary>SchedulerOptions.OnUnobservedFailure: on the dedicated thread, at the failure's report point.</summary>
    private void OnUnobservedFailure(Tasklet tasklet, Exception exception)
    {
        HostingLog.UnobservedFailure(_logger, exception, tasklet.Id, tasklet.Name);
        _logged.Add(exception);
        _userFailureCallback?.Invoke(tasklet, exception); // its exception is Run's to report (then logged by LogUnlogged)
    }

    /// <summary>Scheduler.Stalled: on the stall monitor's thread; the report already holds the dump.</summary>
    private void OnStalled(object? sender, SchedulerStalledEventArgs e) => HostingLog.Stalled(_logger, e.LongStep, e.Dump);

    private static string Describe(IEnumerable<Tasklet> tasklets)
        => string.Join(", ", tasklets.Select(static t => $"tasklet {t.Id} '{t.Name}'"));
}
