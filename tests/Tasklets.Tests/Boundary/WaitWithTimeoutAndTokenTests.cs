using Tasklets.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Tests.Boundary;

/// <summary>Tasklet.Sleep(delay, token) and Select.WaitAsync(timeout, token, cases): both limits at once (issue 16).</summary>
public class WaitWithTimeoutAndTokenTests
{
    [Fact]
    public void Sleep_TokenCancelledBeforeTheDelay_ThrowsOperationCanceledAtTheCancel()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        Exception? slept = null;
        TimeSpan sleptFor = TimeSpan.Zero;
        s.Go(async () =>
        {
            DateTimeOffset start = s.Time.GetUtcNow();
            slept = await Record.ExceptionAsync(async () => await Tasklet.Sleep(TimeSpan.FromHours(1), cts.Token));
            sleptFor = s.Time.GetUtcNow() - start;
        });
        s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromSeconds(2));
            cts.Cancel();
        });
        s.Run();
        var canceled = Assert.IsAssignableFrom<OperationCanceledException>(slept);
        Assert.IsNotType<TaskletExitException>(canceled);
        Assert.Equal(cts.Token, canceled.CancellationToken);
        Assert.Equal(TimeSpan.FromSeconds(2), sleptFor); // virtual time: the cancel's instant, not the hour
    }

    [Fact]
    public void Sleep_WithTokenNotCancelled_CompletesAfterTheDelay()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        TimeSpan sleptFor = TimeSpan.Zero;
        s.Go(async () =>
        {
            DateTimeOffset start = s.Time.GetUtcNow();
            await Tasklet.Sleep(TimeSpan.FromSeconds(3), cts.Token);
            sleptFor = s.Time.GetUtcNow() - start;
        });
        s.Run();
        Assert.Equal(TimeSpan.FromSeconds(3), sleptFor);
    }

    [Fact]
    public void Sleep_TokenAlreadyCancelled_ThrowsEvenForAZeroDelay()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        Exception? zero = null;
        s.Go(async () => zero = await Record.ExceptionAsync(async () => await Tasklet.Sleep(TimeSpan.Zero, new CancellationToken(canceled: true))));
        s.Run();
        Assert.IsAssignableFrom<OperationCanceledException>(zero);
    }

    [Fact]
    public void Sleep_NegativeDelayWithToken_ThrowsArgumentOutOfRange()
        => Assert.Throws<ArgumentOutOfRangeException>(() => Tasklet.Sleep(TimeSpan.FromSeconds(-1), CancellationToken.None));

    [Fact]
    public void SelectWaitAsync_TimeoutAndToken_TimeoutFirstReturnsMinusOne()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        var ch = new Channel<int>();
        int fired = 0;
        s.Go(async () => fired = await Select.WaitAsync(TimeSpan.FromSeconds(1), cts.Token, ch.ReceiveCase()));
        // RunFor, not Run: it jumps the virtual clock to the timer and returns once nothing is ready, so a select
        // that ignored its timeout (the token keeps a party outside able to wake it) fails instead of waiting forever.
        Assert.False(s.RunFor(TimeSpan.FromSeconds(30)));
        Assert.Equal(-1, fired);
        Assert.Equal(0, ch.Balance);
    }

    [Fact]
    public void SelectWaitAsync_TimeoutAndToken_CancelFirstThrowsAndPerformsNoCase()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        Channel<int> ch = Channel<int>.CreateUnbounded("requests");
        Exception? selected = null;
        s.Go(async () => selected = await Record.ExceptionAsync(async () =>
            await Select.WaitAsync(TimeSpan.FromHours(1), cts.Token, ch.ReceiveCase())));
        s.Go(async () =>
        {
            await Tasklet.Sleep(TimeSpan.FromSeconds(1));
            cts.Cancel();
            await Tasklet.Yield();
            ch.TrySend(5); // after the cancel: stays in the buffer
        });
        s.Run();
        Assert.IsAssignableFrom<OperationCanceledException>(selected);
        Assert.Equal(1, ch.Count);
    }

    [Fact]
    public void SelectWaitAsync_TimeoutAndToken_ReadyCaseFires()
    {
        using Scheduler s = SchedulerExtensions.Deterministic();
        using var cts = new CancellationTokenSource();
        var ch = new Channel<int>(1);
        ch.TrySend(9);
        ReceiveCase<int> receive = ch.ReceiveCase();
        int fired = -2;
        s.Go(async () => fired = await Select.WaitAsync(TimeSpan.FromSeconds(1), cts.Token, receive));
        s.Run();
        Assert.Equal(0, fired);
        Assert.Equal(9, receive.Value);
    }

    [Fact]
    public void SelectWaitAsync_NegativeTimeoutWithToken_ThrowsArgumentOutOfRange()
        => Assert.Throws<ArgumentOutOfRangeException>(() => Select.WaitAsync(TimeSpan.FromSeconds(-2), CancellationToken.None, new Channel<int>().ReceiveCase()));

    [Fact]
    public void CreateUnbounded_WithName_NamesTheChannel()
    {
        Channel<int> named = Channel<int>.CreateUnbounded("jobs");
        Assert.Equal("jobs", named.Name);
        Assert.Equal(-1, named.Capacity);
        Assert.Null(Channel<int>.CreateUnbounded().Name);
    }
}
