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
}
