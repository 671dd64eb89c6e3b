using System.Reflection;
using System.Text.RegularExpressions;
using System.Xml.Linq;
using Xunit;

namespace Tasklets.Analyzers.Tests;

/// <summary>
/// The analyzers' knowledge of the library, checked against the library itself: a blocking form added to src/Tasklets
/// (documented "blocking the calling OS thread", as every one is) without an entry in BlockingMembers fails here.
/// </summary>
public sealed partial class LibraryContractTests
{
    [Fact]
    public void BlockingMembers_AreExactlyTheMethodsDocumentedAsBlocking()
    {
        string xml = Path.ChangeExtension(typeof(Tasklet).Assembly.Location, ".xml");
        Assert.True(File.Exists(xml), $"{xml} is missing: the library's XML docs are copied beside Tasklets.dll");
        var documented = XDocument.Load(xml).Descendants("member")
            .Where(member => Regex.Replace(member.Element("summary")?.Value ?? "", @"\s+", " ").Contains("blocking the calling OS thread", StringComparison.Ordinal))
            .Select(member => MemberName().Match(member.Attribute("name")!.Value))
            .Where(match => match.Success)
            .Select(match => match.Groups["type"].Value + "." + match.Groups["method"].Value)
            .Order(StringComparer.Ordinal)
            .ToArray();
        string[] known = BlockingMembers.All.Select(m => m.Type + "." + m.Method).Order(StringComparer.Ordinal).ToArray();
        Assert.NotEmpty(documented);
        Assert.Equal(documented, known);
    }

    [Fact]
    public void BlockingMembers_EachTwinAcceptsTheSameArgumentsAndReturnsAnAwaitable()
    {
        foreach ((string typeName, string blocking, string twin) in BlockingMembers.All)
        {
            Type type = typeof(Tasklet).Assembly.GetType("Tasklets." + typeName, throwOnError: true)!;
            foreach (MethodInfo method in type.GetMethods(BindingFlags.Public | BindingFlags.Instance).Where(m => m.Name == blocking))
            {
                Type[] parameters = method.GetParameters().Select(p => p.ParameterType).ToArray();
                // The blocking form's parameters, then only optional ones (SendAsync(item, cancellationToken = default)).
                MethodInfo? async = type.GetMethods(BindingFlags.Public | BindingFlags.Instance).FirstOrDefault(m =>
                    m.Name == twin
                    && m.GetParameters().Length >= parameters.Length
                    && m.GetParameters().Take(parameters.Length).Select(p => p.ParameterType).SequenceEqual(parameters)
                    && m.GetParameters().Skip(parameters.Length).All(p => p.IsOptional));
                Assert.True(async is not null, $"{typeName}.{twin} does not take the arguments of {blocking}: the fix would not compile");
                // A ValueTask, or the library's own TaskletOp (send and receive), which the fix's await accepts as well.
                Type returned = async.ReturnType.IsGenericType ? async.ReturnType.GetGenericTypeDefinition() : async.ReturnType;
                Assert.True(
                    returned == typeof(ValueTask) || returned == typeof(ValueTask<>) || returned == typeof(TaskletOp) || returned == typeof(TaskletOp<>),
                    $"{typeName}.{twin} returns {async.ReturnType}, not a ValueTask or TaskletOp");
            }
        }
    }

    [Fact]
    public void BodyParameters_AreTheOnesDocsAnalyzersMdNames()
    {
        // Every public parameter the rule treats as a tasklet body (a delegate returning Task or Task<T>, declared on
        // a library type), so that a new one is a deliberate addition to docs/analyzers.md.
        string[] bodies = typeof(Tasklet).Assembly.GetExportedTypes()
            .SelectMany(type => type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly)
                .Where(method => method.GetParameters().Any(IsBody))
                .Select(method => type.Name.Split('`')[0] + "." + method.Name))
            .Distinct()
            .Order(StringComparer.Ordinal)
            .ToArray();
        Assert.Equal(["Explore.Replay", "Explore.Run", "Scheduler.Go", "Scheduler.Run", "Tasklet.Go", "TaskletGroup.Go"], bodies);
    }

    // As the analyzer judges it: the parameter's declared delegate type returns Task or Task<T> (RunInThread's
    // Func<CancellationToken, T> returns a type parameter, however T is inferred).
    private static bool IsBody(ParameterInfo parameter)
    {
        Type? returns = parameter.ParameterType.IsSubclassOf(typeof(Delegate)) ? parameter.ParameterType.GetMethod("Invoke")!.ReturnType : null;
        return returns == typeof(Task) || returns is { IsGenericType: true } && returns.GetGenericTypeDefinition() == typeof(Task<>);
    }

    // M:Tasklets.Channel`1.Send(`0) -> type Channel`1, method Send.
    [GeneratedRegex(@"^M:Tasklets\.(?<type>[A-Za-z]+(`\d+)?)\.(?<method>[A-Za-z]+)(\(|$)")]
    private static partial Regex MemberName();
}
