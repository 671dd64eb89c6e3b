using Tasklets.Analyzers.Tests.Infrastructure;
using Xunit;

namespace Tasklets.Analyzers.Tests;

public sealed class ConfigureAwaitAnalyzerTests
{
    [Fact]
    public Task ConfigureAwaitFalse_InTaskletGoLambda_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|};
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_InEveryKindOfBody_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task M(Scheduler scheduler, TaskletGroup group, ValueTask<int> pending)
            {
                scheduler.Go(async () => await pending.{|TASKLET001:ConfigureAwait(false)|}, "named");
                Scheduler.Run(async () => { await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|}; });
                Scheduler.Run(async () => { await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|}; return 1; }, new SchedulerOptions { Seed = 1 });
                _ = group.Go(async () => { await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|}; }, "child");
                Explore.Run(10, async seed => { await Task.Delay(seed).{|TASKLET001:ConfigureAwait(false)|}; });
                Explore.Replay(3, async delegate () { await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|}; });
                Tasklet.Go(async () => { await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|}; }, "token", CancellationToken.None);
                await Task.CompletedTask;
            }
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_OutsideTaskletBody_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            async Task LibraryCodeAsync()
            {
                await Task.Delay(1).ConfigureAwait(false);
            }

            void M()
            {
                Func<Task> notABody = async () => await Task.Delay(1).ConfigureAwait(false);
                _ = Task.Run(async () => await Task.Delay(1).ConfigureAwait(false));
            }
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_InTaskRunInsideBody_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                await Task.Run(async () => await Task.Delay(1).ConfigureAwait(false));
                await Tasklet.RunInThread(token => Task.Delay(1, token).ConfigureAwait(false).GetAwaiter().GetResult());
                Func<Task> later = async () => await Task.Delay(1).ConfigureAwait(false);
                async Task LocalAsync() => await Task.Delay(1).ConfigureAwait(false);
                await later();
                await LocalAsync();
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitTrueOrContinueOnCapturedContext_Silent() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(bool flag) => Tasklet.Go(async () =>
            {
                await Task.Delay(1).ConfigureAwait(true);
                await Task.Delay(1).ConfigureAwait(ConfigureAwaitOptions.ContinueOnCapturedContext | ConfigureAwaitOptions.ForceYielding);
                await Task.Delay(1).ConfigureAwait(flag); // not a constant: not judged
                await Task.Delay(1);
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitOptionsWithoutContinueOnCapturedContext_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(ConfigureAwaitOptions.None)|};
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing)|};
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_OnAwaitForeachAndAwaitUsing_Reported() => Verify.DiagnosticsAsync("""
        class C
        {
            void M(Channel<int> items, IAsyncDisposable resource) => Tasklet.Go(async () =>
            {
                await foreach (int item in items.{|TASKLET001:ConfigureAwait(false)|})
                {
                }

                await using (resource.{|TASKLET001:ConfigureAwait(false)|})
                {
                }

                await foreach (int item in TaskAsyncEnumerableExtensions.{|TASKLET001:ConfigureAwait(items, false)|})
                {
                }
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_InMethodGroupBodyOfSameFile_ReportedOnce() => Verify.DiagnosticsAsync("""
        class C
        {
            void Start(Scheduler scheduler)
            {
                Tasklet.Go(WorkAsync);
                scheduler.Go(WorkAsync, "again");
                Tasklet.Go(() => ForwardedAsync(1));
            }

            async Task WorkAsync()
            {
                await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|};
            }

            async Task ForwardedAsync(int delay)
            {
                await Task.Delay(delay).{|TASKLET001:ConfigureAwait(false)|};
            }
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_NestedTaskletBody_ReportedOnceInTheInnerBody() => Verify.DiagnosticsAsync("""
        class C
        {
            void M() => Tasklet.Go(async () =>
            {
                await Tasklet.Go(async () => await Task.Delay(1).{|TASKLET001:ConfigureAwait(false)|});
            });
        }
        """);

    [Fact]
    public Task ConfigureAwaitFalse_LookAlikeGoOutsideTheLibrary_Silent() => Verify.DiagnosticsAsync("""
        namespace Other
        {
            static class Tasklet
            {
                public static void Go(Func<Task> body) { }
            }

            class C
            {
                void M() => Tasklet.Go(async () => await Task.Delay(1).ConfigureAwait(false));
            }
        }
        """);

    [Fact]
    public async Task Diagnostic_Message_NamesTheCallAndLinksTheDocs()
    {
        var diagnostics = await Verify.AnalyzeAsync("""
            class C { void M() => Tasklet.Go(async () => await Task.Delay(1).ConfigureAwait(false)); }
            """);
        var diagnostic = Assert.Single(diagnostics);
        // An async lambda binds to Func<TaskletTask>: the library's builder brings the body back, so the call is useless there.
        Assert.StartsWith("'ConfigureAwait(false)' does nothing useful in this tasklet body", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
        Assert.Equal("https://github.com/tasklets/tasklets/blob/main/docs/analyzers.md#tasklet001", diagnostic.Descriptor.HelpLinkUri);
    }

    [Fact]
    public async Task Diagnostic_Message_OnTheStandardBuilder_SaysTheBodyLeavesItsScheduler()
    {
        var diagnostics = await Verify.AnalyzeAsync("""
            class C
            {
                void M() => Tasklet.Go(WorkAsync);
                static async Task WorkAsync() => await Task.Delay(1).ConfigureAwait(false);
            }
            """);
        var diagnostic = Assert.Single(diagnostics);
        Assert.StartsWith("'ConfigureAwait(false)' moves the rest of this tasklet body off its scheduler", diagnostic.GetMessage(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal);
    }
}
