using Tasklets.Analyzers.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Analyzers.Tests;

public sealed class BlockingCallAnalyzerTests
{
    [Fact]
    public Task TaskWaitResultAndGetResult_InBody_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Task task, Task<int> number, ValueTask<int> pending, ValueTask plain) => Tasklet.Go(async () =>
            {
                {|TASKLET002:task.Wait()|};
                bool done = {|TASKLET002:task.Wait(TimeSpan.FromSeconds(1))|};
                int a = {|TASKLET002:number.Result|};
                int b = {|TASKLET002:pending.Result|};
                int c = {|TASKLET002:number.GetAwaiter().GetResult()|};
                {|TASKLET002:plain.GetAwaiter().GetResult()|};
                {|TASKLET002:Task.Delay(1).ConfigureAwait(true).GetAwaiter().GetResult()|};
                {|TASKLET002:Task.WaitAll(task, number)|};
                int first = {|TASKLET002:Task.WaitAny(task, number)|};
                await Task.CompletedTask;
            });
        }
        """);

    [Fact]
    public Task ThreadSleep_InBody_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                {|TASKLET002:Thread.Sleep(10)|};
                {|TASKLET002:Thread.Sleep(TimeSpan.FromMilliseconds(10))|};
                await Task.CompletedTask;
            });
        }
        """);

    [Fact]
    public Task LibraryBlockingForms_InBody_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Channel<int> ch, AsyncLock gate, AsyncSemaphore semaphore, AsyncManualResetEvent ready, WaitGroup group, AsyncBarrier barrier)
                => Tasklet.Go(async () =>
                {
                    {|TASKLET002:ch.Send(1)|};
                    int item = {|TASKLET002:ch.Receive()|};
                    using ({|TASKLET002:gate.Lock()|})
                    {
                    }

                    {|TASKLET002:semaphore.Wait()|};
                    {|TASKLET002:ready.Wait(CancellationToken.None)|};
                    {|TASKLET002:group.Wait()|};
                    int arrival = {|TASKLET002:barrier.SignalAndWait()|};
                    await Task.CompletedTask;
                });
        }
        """);

    [Fact]
    public Task LibraryAsyncAndTryForms_InBody_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Channel<int> ch, AsyncLock gate, AsyncSemaphore semaphore, WaitGroup group, Tasklet<int> child) => Tasklet.Go(async () =>
            {
                await ch.SendAsync(1);
                int item = await ch.ReceiveAsync();
                _ = ch.TrySend(2) && ch.TryReceive(out item);
                using (await gate.LockAsync())
                {
                }

                _ = semaphore.TryWait();
                await semaphore.WaitAsync();
                await group.WaitAsync();
                await Tasklet.Sleep(TimeSpan.FromSeconds(1));
                int result = await child;
                child.Kill();
                result += child.Result; // Tasklet<T>.Result throws if unfinished; it never blocks
            });
        }
        """);

    [Fact]
    public Task BlockingSend_OnAnOsThreadOrOutsideBodies_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            static void Main()
            {
                var ch = new Channel<int>();
                var producer = new Thread(() => ch.Send(1));
                producer.Start();
                int item = ch.Receive();
                Thread.Sleep(1);
                Task.Delay(1).Wait();
            }

            void InBody(Channel<int> ch) => Tasklet.Go(async () =>
            {
                await Task.Run(() => ch.Send(1));
                await Tasklet.RunInThread(token => ch.Receive());
                await Tasklet.RunInThread(token => Thread.Sleep(1));
                Task inThread = await Tasklet.RunInThread(token => { Thread.Sleep(1); return Task.CompletedTask; }); // T is Task: still not a body
                Action later = () => ch.Send(2);
                _ = new Thread(() => Task.Delay(1).Wait());
            });
        }
        """);

    [Fact]
    public Task ResultAfterTheTaskWasAwaited_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Task<int> a, Task<int> b, Task<int> c, Task<int> d) => Tasklet.Go(async () =>
            {
                await Task.WhenAll(a, b);
                int sum = a.Result + b.GetAwaiter().GetResult();
                await c;
                sum += c.Result;
                await Task.WhenAll([d]);
                sum += d.Result;
            });
        }
        """);

    [Fact]
    public Task ResultAfterACompletionCheck_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Channel<int> ch, Task<int> task) => Tasklet.Go(async () =>
            {
                ValueTask<int> pending = ch.ReceiveAsync();
                int value = pending.IsCompletedSuccessfully ? pending.Result : await pending;
                if (task.IsCompleted)
                {
                    value += task.GetAwaiter().GetResult();
                }
            });
        }
        """);

    [Fact]
    public Task ResultBeforeTheAwait_OrOfAnotherTask_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Task<int> a, Task<int> b) => Tasklet.Go(async () =>
            {
                int early = {|TASKLET002:a.Result|};
                await Task.WhenAll(a);
                int other = {|TASKLET002:b.Result|};
                if (a.IsCompleted)
                {
                    other += {|TASKLET002:b.Result|};
                }
            });
        }
        """);

    [Fact]
    public Task BlockingCall_InMethodGroupBody_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            readonly Channel<int> _ch = new();

            void Start() => Tasklet.Go(ConsumeAsync);

            async Task ConsumeAsync()
            {
                int item = {|TASKLET002:_ch.Receive()|};
                await Task.CompletedTask;
            }

            async Task NotABodyAsync()
            {
                int item = _ch.Receive();
                await Task.CompletedTask;
            }
        }
        """);

    [Fact]
    public async Task Diagnostic_Message_SaysWhatToAwaitInstead()
    {
        var diagnostics = await Verify.AnalyzeAsync("""
            class C { void M(Channel<int> ch) => Tasklet.Go(async () => { ch.Send(1); Thread.Sleep(1); await Task.CompletedTask; }); }
            """);
        string[] messages = diagnostics.Select(d => d.GetMessage(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(
            [
                "Channel<T>.Send blocks the scheduler's thread and so stops every tasklet of that scheduler; use 'await Channel<T>.SendAsync(...)'",
                "Thread.Sleep blocks the scheduler's thread and so stops every tasklet of that scheduler; use 'await Tasklet.Sleep(...)', the scheduler's timer",
            ],
            messages);
    }
}
