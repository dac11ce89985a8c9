using System.Globalization;
using System.Runtime.InteropServices;

namespace Buddy.Bench;

/// <summary>The machine a benchmark ran on, as its results name it.</summary>
internal static class BenchMachine
{
    public static string Describe()
    {
        string cpu = File.Exists("/proc/cpuinfo")
            ? File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown CPU"
            : "unknown CPU";
        long memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        return string.Create(CultureInfo.InvariantCulture,
            $"{cpu}, {Environment.ProcessorCount} cores, {memory / (1L << 30)} GiB, {RuntimeInformation.OSDescription}, .NET {Environment.Version}; shared and noisy");
    }
}
