using Tasklets.Analyzers.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Analyzers.Tests;

public sealed class CodeFixTests
{
    // ---------------------------------------------------------------- TASKLET001

    [Fact]
    public Task ConfigureAwaitFalse_Fix_RemovesTheCall() => Verify.FixAsync(
        """
        class C
        {
            void M(Channel<int> items) => Tasklet.Go(async () =>
            {
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|};
                int n = await items.ReceiveAsync().{|TASKLET001:ConfigureAwait(false)|} + 1;
                await foreach (int item in items.{|TASKLET001:ConfigureAwait(false)|})
                {
                }

                await foreach (int item in TaskAsyncEnumerableExtensions.{|TASKLET001:ConfigureAwait(items, false)|})
                {
                }

                await Task.Delay(2)
                    .{|TASKLET001:ConfigureAwait(false)|};
            });
        }
        """,
        """
        class C
        {
            void M(Channel<int> items) => Tasklet.Go(async () =>
            {
                await Task.Delay(1);
                int n = await items.ReceiveAsync() + 1;
                await foreach (int item in items)
                {
                }

                await foreach (int item in items)
                {
                }

                await Task.Delay(2);
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitOptions_Fix_RemovesNoneAndAddsTheFlagToOthers() => Verify.FixAsync(
        """
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(ConfigureAwaitOptions.None)|};
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing)|};
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding)|};
            });
        }
        """,
        """
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                await Task.Delay(1);
                await Task.Delay(1).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext | ConfigureAwaitOptions.SuppressThrowing);
                await Task.Delay(1).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext | (ConfigureAwaitOptions.SuppressThrowing | ConfigureAwaitOptions.ForceYielding));
            });
        }
        """);

    // ---------------------------------------------------------------- TASKLET002

    [Fact]
    public Task TaskWaitResultGetResult_Fix_Awaits() => Verify.FixAsync(
        """
        class C
        {
            void M(Task task, Task<string> text, Task<string> name, ValueTask<int> pending) => Tasklet.Go(async () =>
            {
                {|TASKLET002:task.Wait()|};
                int length = {|TASKLET002:text.Result|}.Length;
                int value = {|TASKLET002:pending.Result|} + 1;
                {|TASKLET002:Task.Delay(1).GetAwaiter().GetResult()|};
                string upper = {|TASKLET002:name.GetAwaiter().GetResult()|}.ToUpperInvariant();
            });
        }
        """,
        """
        class C
        {
            void M(Task task, Task<string> text, Task<string> name, ValueTask<int> pending) => Tasklet.Go(async () =>
            {
                await task;
                int length = (await text).Length;
                int value = await pending + 1;
                await Task.Delay(1);
                string upper = (await name).ToUpperInvariant();
            });
        }
        """);

    [Fact]
    public Task ThreadSleep_Fix_AwaitsTaskletSleep() => Verify.FixAsync(
        """
        class C
        {
            void M(TimeSpan delay) => Tasklet.Go(async () =>
            {
                {|TASKLET002:Thread.Sleep(250)|};
                {|TASKLET002:Thread.Sleep(delay)|};
                {|TASKLET002:System.Threading.Thread.Sleep(millisecondsTimeout: 5)|};
            });
        }
        """,
        """
        class C
        {
            void M(TimeSpan delay) => Tasklet.Go(async () =>
            {
                await Tasklet.Sleep(TimeSpan.FromMilliseconds(250));
                await Tasklet.Sleep(delay);
                await Tasklet.Sleep(TimeSpan.FromMilliseconds(5));
            });
        }
        """);

    [Fact]
    public Task LibraryBlockingForms_Fix_AwaitTheirTwins() => Verify.FixAsync(
        """
        class C
        {
            void M(Channel<int> ch, AsyncLock gate, AsyncSemaphore semaphore, AsyncManualResetEvent ready, WaitGroup group, AsyncBarrier barrier, CancellationToken token)
                => Tasklet.Go(async () =>
                {
                    {|TASKLET002:ch.Send(1)|};
                    int item = {|TASKLET002:ch.Receive()|};
                    using ({|TASKLET002:gate.Lock()|})
                    {
                    }

                    {|TASKLET002:semaphore.Wait(token)|};
                    {|TASKLET002:ready.Wait()|};
                    {|TASKLET002:group.Wait()|};
                    int arrival = {|TASKLET002:barrier.SignalAndWait()|};
                });
        }
        """,
        """
        class C
        {
            void M(Channel<int> ch, AsyncLock gate, AsyncSemaphore semaphore, AsyncManualResetEvent ready, WaitGroup group, AsyncBarrier barrier, CancellationToken token)
                => Tasklet.Go(async () =>
                {
                    await ch.SendAsync(1);
                    int item = await ch.ReceiveAsync();
                    using (await gate.LockAsync())
                    {
                    }

                    await semaphore.WaitAsync(token);
                    await ready.WaitAsync();
                    await group.WaitAsync();
                    int arrival = await barrier.SignalAndWaitAsync();
                });
        }
        """);

    [Fact]
    public Task BlockingCall_InMethodGroupBody_FixAwaits() => Verify.FixAsync(
        """
        class C
        {
            readonly Channel<int> _ch = new();

            void Start() => Tasklet.Go(ConsumeAsync);

            async Task ConsumeAsync()
            {
                int item = {|TASKLET002:_ch.Receive()|};
            }
        }
        """,
        """
        class C
        {
            readonly Channel<int> _ch = new();

            void Start() => Tasklet.Go(ConsumeAsync);

            async Task ConsumeAsync()
            {
                int item = await _ch.ReceiveAsync();
            }
        }
        """);

    [Fact]
    public Task BlockingCall_InNonAsyncBody_NoFix() => Verify.NoFixAsync("""
        class C
        {
            void M(Channel<int> ch, Task task) => Tasklet.Go(() =>
            {
                {|TASKLET002:ch.Send(1)|};
                {|TASKLET002:Thread.Sleep(1)|};
                {|TASKLET002:task.Wait()|};
                return Task.CompletedTask;
            });
        }
        """);

    [Fact]
    public Task BlockingCall_InLockOrWithoutAnObviousAwait_NoFix() => Verify.NoFixAsync("""
        class C
        {
            readonly object _gate = new();

            void M(Channel<int> ch, Task task, Task<int> number) => Tasklet.Go(async () =>
            {
                lock (_gate)
                {
                    {|TASKLET002:ch.Send(1)|};
                }

                bool done = {|TASKLET002:task.Wait(10)|};
                {|TASKLET002:Task.WaitAll(task, number)|};
                var awaiter = number.GetAwaiter();
                int value = {|TASKLET002:awaiter.GetResult()|};
                await Task.CompletedTask;
            });
        }
        """);

    [Fact]
    public async Task Fixes_HaveTitlesThatSayWhatTheyWrite()
    {
        IReadOnlyList<string> titles = await Verify.FixTitlesAsync("""
            class C
            {
                void M(Channel<int> ch, Task<int> number) => Tasklet.Go(async () =>
                {
                    await Task.Delay(1).ConfigureAwait(false);
                    ch.Send(1);
                    Thread.Sleep(1);
                    int value = number.Result;
                });
            }
            """);
        Assert.Equal(
            ["Remove ConfigureAwait: continue on the tasklet's scheduler", "Use 'await ch.SendAsync(...)'", "Use 'await Tasklet.Sleep(...)'", "Use 'await number'"],
            titles);
    }
}
