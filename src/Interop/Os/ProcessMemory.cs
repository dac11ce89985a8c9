using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Buddy.Interop;

/// <summary>Resident set size of the current process, read without managed allocation.</summary>
public static unsafe class ProcessMemory
{
    private static SafeFileHandle? statm;

    /// <summary>Resident bytes: /proc/self/statm on Linux, the working set on Windows.</summary>
    public static long ResidentBytes()
    {
        if (OperatingSystem.IsWindows())
        {
            Kernel32.ProcessMemoryCounters counters = default;
            counters.Cb = (uint)sizeof(Kernel32.ProcessMemoryCounters);
            if (!Kernel32.GetProcessMemoryInfo(Kernel32.GetCurrentProcess(), &counters, counters.Cb))
                throw new InvalidOperationException($"GetProcessMemoryInfo failed: {Marshal.GetLastPInvokeErrorMessage()}");
            return (long)counters.WorkingSetSize;
        }
        statm ??= File.OpenHandle("/proc/self/statm");
        Span<byte> text = stackalloc byte[128];
        int read = RandomAccess.Read(statm, text, 0);
        return ParseStatmResidentPages(text[..read]) * VirtualMemory.PageSize;
    }

    /// <summary>The second field of statm ("size resident shared ..."), in pages.</summary>
    public static long ParseStatmResidentPages(ReadOnlySpan<byte> statmText)
    {
        int space = statmText.IndexOf((byte)' ');
        if (space < 0) throw new FormatException("statm has no resident field.");
        long pages = 0;
        int i = space + 1;
        for (; i < statmText.Length && statmText[i] is >= (byte)'0' and <= (byte)'9'; i++)
            pages = pages * 10 + (statmText[i] - '0');
        if (i == space + 1) throw new FormatException("statm resident field is not a number.");
        return pages;
    }

    /// <summary>
    /// From /proc/self/smaps (Linux; 0 elsewhere): the bytes of the mappings overlapping [start, end)
    /// that the kernel backs with anonymous huge pages (AnonHugePages), and that were given MADV_FREE
    /// and are still resident (LazyFree: offered memory the kernel has not taken yet).
    /// </summary>
    public static (long AnonHugePages, long LazyFree) SmapsOf(nint start, nint end)
    {
        if (!OperatingSystem.IsLinux()) return (0, 0);
        long huge = 0, lazy = 0;
        bool inside = false;
        foreach (string line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            int space = line.IndexOf(' ');
            if (dash > 0 && space > dash
                && long.TryParse(line.AsSpan(0, dash), System.Globalization.NumberStyles.HexNumber, null, out long from)
                && long.TryParse(line.AsSpan(dash + 1, space - dash - 1), System.Globalization.NumberStyles.HexNumber, null, out long to))
            {
                inside = from < end && to > start;
                continue;
            }
            if (!inside) continue;
            if (line.StartsWith("AnonHugePages:", StringComparison.Ordinal)) huge += KiloBytes(line);
            else if (line.StartsWith("LazyFree:", StringComparison.Ordinal)) lazy += KiloBytes(line);
        }
        return (huge, lazy);
    }

    /// <summary>"Name:   1234 kB" in bytes.</summary>
    private static long KiloBytes(string line) => long.Parse(line.AsSpan(line.IndexOf(':') + 1).Trim().TrimEnd("kB").Trim(), System.Globalization.CultureInfo.InvariantCulture) * 1024;
}
