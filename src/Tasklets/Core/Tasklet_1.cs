using System.Runtime.CompilerServices;
using Tasklets.Internal;

namespace Tasklets;

/// <summary>A tasklet that produces a result: <c>T r = await tasklet;</c>.</summary>
/// <typeparam name="T">The result type.</typeparam>
public sealed partial class Tasklet<T> : Tasklet
{
    internal Tasklet(Scheduler scheduler, Func<Task<T>> body, string? name)
        : base(scheduler, body, name)
    {
    }

    /// <summary>The result, once the tasklet finished successfully.</summary>
    /// <exception cref="InvalidOperationException">The tasklet has not finished.</exception>
    /// <exception cref="Exception">The tasklet's failure (or <see cref="TaskletExitException"/> if it was killed) is rethrown.</exception>
    public T Result
    {
        get
        {
            if (IsAlive || _task is null)
            {
                if (Exception is { } killed)
                {
                    throw killed;
                }

                ThrowHelper.ThrowInvalidOperation(Strings.ResultNotAvailable(this));
            }

            _observed = true;
            return ((Task<T>)_task).GetAwaiter().GetResult();
        }
    }

    /// <summary>Waits until the tasklet is dead and returns its result; rethrows its failure.</summary>
    /// <param name="cancellationToken">Cancels the wait (not the tasklet).</param>
    /// <returns>The result.</returns>
    public new async ValueTask<T> JoinAsync(CancellationToken cancellationToken = default)
    {
        await base.JoinAsync(cancellationToken);
        return Result;
    }

    /// <summary>Awaiting the tasklet joins it and gives its result.</summary>
    /// <returns>The awaiter.</returns>
    public new ValueTaskAwaiter<T> GetAwaiter() => JoinAsync().GetAwaiter();

    internal Tasklet(Scheduler scheduler, Func<TaskletTask<T>> body, string? name)
        : base(scheduler, body, name)
    {
    }

    /// <inheritdoc/>
    private protected override Task FailedOutcome(Exception exception) => Task.FromException<T>(exception);

    internal override Task InvokeBody()
    {
        Delegate start = TakeBody();
        if (start is Func<TaskletTask<T>> own)
        {
            return StartOwnBody(own);
        }

        var body = (Func<Task<T>>)start;
        try
        {
            return body() ?? Task.FromException<T>(new InvalidOperationException("The tasklet body returned a null Task."));
        }
        catch (Exception e)
        {
            return Task.FromException<T>(e);
        }
    }
}
