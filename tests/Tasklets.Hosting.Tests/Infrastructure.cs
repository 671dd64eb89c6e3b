using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Xunit;

// Every test starts a host whose scheduler takes part in the process-wide deadlock detection (an open group is judged
// against every scheduler inside Run): the tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace Tasklets.Hosting.Tests;

/// <summary>One log entry, as the capturing provider saw it.</summary>
public sealed record LogEntry(string Category, LogLevel Level, EventId EventId, string Message, Exception? Exception);

/// <summary>
/// Captures every log entry of a host, and lets a test wait for one (signalled on each new entry, with a hang guard:
/// no sleep, no assertion on time).
/// </summary>
public sealed class CapturingLoggerProvider : ILoggerProvider
{
    /// <summary>How long <see cref="WaitFor"/> waits before it fails the test: a hang guard, far above any real wait.</summary>
    public static readonly TimeSpan Guard = TimeSpan.FromSeconds(30);

    private readonly List<LogEntry> _entries = [];

    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IReadOnlyList<LogEntry> Of(string eventName) => [.. Entries.Where(e => e.EventId.Name == eventName)];

    /// <summary>The first entry (already written, or the next ones) that <paramref name="match"/> accepts.</summary>
    public LogEntry WaitFor(Func<LogEntry, bool> match, string what)
    {
        var watch = Stopwatch.StartNew();
        lock (_entries)
        {
            while (true)
            {
                foreach (LogEntry entry in _entries)
                {
                    if (match(entry))
                    {
                        return entry;
                    }
                }

                TimeSpan left = Guard - watch.Elapsed;
                if (left <= TimeSpan.Zero)
                {
                    Assert.Fail($"No log entry {what} within {Guard.TotalSeconds} s. Logged:{Environment.NewLine}{string.Join(Environment.NewLine, _entries)}");
                }

                Monitor.Wait(_entries, left);
            }
        }
    }

    public LogEntry WaitFor(string eventName) => WaitFor(e => e.EventId.Name == eventName, $"'{eventName}'");

    public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        lock (_entries)
        {
            _entries.Add(entry);
            Monitor.PulseAll(_entries);
        }
    }

    private sealed class Logger(CapturingLoggerProvider provider, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            => provider.Add(new LogEntry(category, logLevel, eventId, formatter(state, exception), exception));
    }
}

/// <summary>Builds real hosts (Host.CreateApplicationBuilder) whose logs go to a capturing provider only.</summary>
public static class TestHost
{
    public static IHost Build(CapturingLoggerProvider logs, Action<IServiceCollection> configure)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Logging.ClearProviders();
        builder.Logging.AddProvider(logs);
        builder.Logging.SetMinimumLevel(LogLevel.Debug);
        configure(builder.Services);
        return builder.Build();
    }

    /// <summary>Waits for <paramref name="task"/> under the hang guard.</summary>
    public static async Task<T> Within<T>(Task<T> task) => await task.WaitAsync(CapturingLoggerProvider.Guard);

    /// <summary>Waits for <paramref name="task"/> under the hang guard.</summary>
    public static async Task Within(Task task) => await task.WaitAsync(CapturingLoggerProvider.Guard);

    /// <summary>Spins (yielding the core) until <paramref name="condition"/> holds, under the hang guard.</summary>
    public static void SpinUntil(Func<bool> condition, string what)
    {
        if (!SpinWait.SpinUntil(condition, CapturingLoggerProvider.Guard))
        {
            Assert.Fail($"Not reached within {CapturingLoggerProvider.Guard.TotalSeconds} s: {what}.");
        }
    }
}
