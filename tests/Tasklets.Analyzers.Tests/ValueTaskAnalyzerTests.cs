using Tasklets.Analyzers.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Analyzers.Tests;

public sealed class ValueTaskAnalyzerTests
{
    [Fact]
    public Task LibraryValueTask_StoredInFieldOrProperty_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            static readonly Channel<int> s_ch = new();
            ValueTask<int> _pending;
            ValueTask _sending = {|TASKLET003:s_ch.SendAsync(1)|};
            object _boxed;

            ValueTask<int> Pending { get; set; }

            void M(AsyncLock gate)
            {
                _pending = {|TASKLET003:s_ch.ReceiveAsync()|};
                Pending = {|TASKLET003:s_ch.ReceiveAsync()|};
                _boxed = {|TASKLET003:Tasklet.Sleep(TimeSpan.Zero)|};
                this._boxed = {|TASKLET003:gate.LockAsync()|};
            }
        }
        """);

    [Fact]
    public Task OtherValueTasksOrTheirTasks_StoredInFields_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            static readonly Channel<int> s_ch = new();
            ValueTask<int> _own = OwnAsync();
            Task<int> _task;
            int _value;

            static async ValueTask<int> OwnAsync() => await Task.FromResult(1);

            async Task M()
            {
                _task = s_ch.ReceiveAsync().AsTask();
                _value = await s_ch.ReceiveAsync();
                var local = s_ch.ReceiveAsync();
                _value += await local;
            }
        }
        """);

    [Fact]
    public Task LocalAwaitedTwice_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch)
            {
                var received = ch.ReceiveAsync();
                int a = await received;
                int b = await {|TASKLET004:received|};
            }
        }
        """);

    [Fact]
    public Task LocalConsumedInOtherWays_SecondConsumptionReported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch)
            {
                ValueTask<int> a = ch.ReceiveAsync();
                Task<int> task = a.AsTask();
                int value = {|TASKLET004:a|}.Result;

                ValueTask b = ch.SendAsync(1);
                await b;
                {|TASKLET004:b|}.AsTask().Wait();

                ValueTask<int> c = ch.ReceiveAsync();
                _ = c.GetAwaiter();
                await {|TASKLET004:c|}.ConfigureAwait(true);
            }
        }
        """);

    [Fact]
    public Task SingleConsumption_OnEachPath_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch, bool which)
            {
                var t = ch.ReceiveAsync();
                int before = ch.Count;
                int item = await t;

                var u = ch.ReceiveAsync();
                if (which)
                {
                    item += await u;
                }
                else
                {
                    item -= await u;
                }

                var v = ch.ReceiveAsync();
                if (v.IsCompleted)
                {
                    item += v.GetAwaiter().GetResult();
                }
                else
                {
                    item += await v;
                }

                for (int i = 0; i < 3; i++)
                {
                    var w = ch.ReceiveAsync(); // a new ValueTask each iteration
                    item += await w;
                }

                var x = ch.ReceiveAsync();
                item += await x;
                x = ch.ReceiveAsync(); // assigned again: a new one
                item += await x;
            }
        }
        """);

    [Fact]
    public Task ConsumedOnOnePath_ThenAgainAfterTheJoin_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch, bool early)
            {
                var t = ch.ReceiveAsync();
                if (early)
                {
                    await t;
                }

                await {|TASKLET004:t|}; // consumed twice when 'early' is true
            }
        }
        """);

    [Fact]
    public Task AwaitInALoopWithoutReassignment_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch)
            {
                var t = ch.ReceiveAsync();
                for (int i = 0; i < 3; i++)
                {
                    await {|TASKLET004:t|};
                }
            }
        }
        """);

    [Fact]
    public Task ConsumedTwice_InATaskletLambdaAndALocalFunction_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Channel<int> ch)
            {
                Tasklet.Go(async () =>
                {
                    var t = ch.SendAsync(1);
                    await t;
                    await {|TASKLET004:t|};
                });

                async Task LocalAsync()
                {
                    var j = Tasklet.Current!.JoinAsync();
                    await j;
                    await {|TASKLET004:j|};
                }
            }
        }
        """);

    [Fact]
    public Task OwnValueTask_AwaitedTwice_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            static async ValueTask<int> OwnAsync() => await Task.FromResult(1);

            async Task M()
            {
                var own = OwnAsync();
                await own;
                await own; // CA2012's business, not this rule's: the ValueTask is not the library's
            }
        }
        """);

    [Fact]
    public Task TaskletOp_StoredInFieldOrProperty_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            static readonly Channel<int> s_ch = new();
            TaskletOp<int> _pending;
            TaskletOp _sending = {|TASKLET003:s_ch.SendAsync(1)|};
            ValueTask _converted;
            TaskletOp<int> _selecting;

            TaskletOp<int> Pending { get; set; }

            void M()
            {
                _pending = {|TASKLET003:s_ch.ReceiveAsync()|};
                Pending = {|TASKLET003:s_ch.ReceiveAsync()|};
                _selecting = {|TASKLET003:Select.WaitAsync(s_ch.ReceiveCase())|};
                _converted = {|TASKLET003:Tasklet.Yield()|};
            }
        }
        """);

    [Fact]
    public Task TaskletOp_AwaitedTwice_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch)
            {
                var received = ch.ReceiveAsync();
                int a = await received;
                int b = await {|TASKLET004:received|};

                TaskletOp yielded = Tasklet.Yield();
                await yielded;
                await {|TASKLET004:yielded|};
            }
        }
        """);

    [Fact]
    public Task TaskletOp_ConsumedInOtherWays_SecondConsumptionReported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Channel<int> ch)
            {
                TaskletOp<int> a = ch.ReceiveAsync();
                await a;
                Task<int> task = {|TASKLET004:a|}.AsTask();

                TaskletOp b = ch.SendAsync(1);
                ValueTask converted = b.AsValueTask();
                await {|TASKLET004:b|};

                var c = Select.WaitAsync(ch.ReceiveCase());
                _ = c.Preserve();
                await {|TASKLET004:c|}.ConfigureAwait(false);
            }
        }
        """);

    [Fact]
    public Task TaskletOp_AwaitedOnce_OrConvertedOnce_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            Task _kept;

            async Task M(Channel<int> ch)
            {
                var received = ch.ReceiveAsync();
                int a = await received;
                _kept = ch.SendAsync(a).AsTask();
                ValueTask<int> v = ch.ReceiveAsync();
                a += await v;
                await Tasklet.Checkpoint();
            }
        }
        """);
}
