using System.Globalization;
using System.Runtime.InteropServices;

namespace Tasklets.Benchmarks;

/// <summary>
/// The machine the quick table ran on, for its header: OS, CPU model (from /proc/cpuinfo where there is one), cores,
/// .NET, the load average (Linux, /proc/loadavg) and the date. Each part that cannot be read says so.
/// </summary>
internal static class MachineInfo
{
    /// <summary>The header lines; the last is a warning when the 1-minute load average exceeds the core count.</summary>
    public static IEnumerable<string> Describe(DateTimeOffset now)
    {
        int cores = Environment.ProcessorCount;
        yield return $"- OS: {OperatingSystemName()}, {RuntimeInformation.ProcessArchitecture}";
        yield return $"- CPU: {CpuModel() ?? "model unknown (no /proc/cpuinfo)"}, {cores} cores";
        yield return $"- .NET: {RuntimeInformation.FrameworkDescription}";
        double[]? load = LoadAverage();
        yield return load is null
            ? "- Load average at start: unknown (no /proc/loadavg)"
            : string.Create(CultureInfo.InvariantCulture, $"- Load average at start: {load[0]:0.00}, {load[1]:0.00}, {load[2]:0.00} (1, 5, 15 min)");
        yield return $"- Date: {now.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture)}";
        if (load is not null && load[0] > cores)
        {
            yield return string.Empty;
            yield return string.Create(CultureInfo.InvariantCulture, $"**Warning: the load average ({load[0]:0.00}) exceeds the core count ({cores}): other processes compete for the CPU and the figures below are unreliable (slower and more spread than on an idle machine).**");
        }
    }

    /// <summary>The 1, 5 and 15-minute load averages, or null off Linux.</summary>
    public static double[]? LoadAverage()
    {
        string? line = ReadOrNull("/proc/loadavg");
        string[]? fields = line?.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields is null || fields.Length < 3)
        {
            return null;
        }

        var load = new double[3];
        for (int i = 0; i < 3; i++)
        {
            if (!double.TryParse(fields[i], NumberStyles.Float, CultureInfo.InvariantCulture, out load[i]))
            {
                return null;
            }
        }

        return load;
    }

    private static string OperatingSystemName()
    {
        // /etc/os-release names the distribution ("Debian GNU/Linux 12 (bookworm)"); OSDescription adds the kernel.
        string? osRelease = ReadOrNull("/etc/os-release");
        string? pretty = osRelease?.Split('\n').FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal))?["PRETTY_NAME=".Length..].Trim('"');
        string description = RuntimeInformation.OSDescription;
        string os = pretty is null || description.Contains(pretty, StringComparison.Ordinal) ? description : $"{pretty} ({description})";
        return OperatingSystem.IsLinux() ? $"{os}, kernel {Environment.OSVersion.Version}" : os;
    }

    private static string? CpuModel()
    {
        string? cpuinfo = ReadOrNull("/proc/cpuinfo");
        string? line = cpuinfo?.Split('\n').FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal));
        int colon = line?.IndexOf(':', StringComparison.Ordinal) ?? -1;
        return colon < 0 ? null : line![(colon + 1)..].Trim();
    }

    private static string? ReadOrNull(string path)
    {
        try
        {
            return File.Exists(path) ? File.ReadAllText(path) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
