using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Buddy.Interop;

/// <summary>P/Invokes into kernel32 on Windows. No policy: every caller checks results.</summary>
[SupportedOSPlatform("windows")]
internal static unsafe partial class Kernel32
{
    private const string Library = "kernel32";

    /// <summary>VirtualAlloc's and VirtualFree's MEM_* bits.</summary>
    [Flags]
    public enum MemoryOperation : uint
    {
        Commit = 0x1000,
        Reserve = 0x2000,
        Release = 0x8000,
    }

    /// <summary>PAGE_* protection.</summary>
    public enum PageProtection : uint
    {
        ReadWrite = 0x04,
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct WorkingSetExInformation
    {
        public nint VirtualAddress;
        /// <summary>Bit 0 is Valid: the page is in the working set.</summary>
        public nuint VirtualAttributes;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct ProcessMemoryCounters
    {
        public uint Cb;
        public uint PageFaultCount;
        public nuint PeakWorkingSetSize;
        public nuint WorkingSetSize;
        public nuint QuotaPeakPagedPoolUsage;
        public nuint QuotaPagedPoolUsage;
        public nuint QuotaPeakNonPagedPoolUsage;
        public nuint QuotaNonPagedPoolUsage;
        public nuint PagefileUsage;
        public nuint PeakPagefileUsage;
    }

    [LibraryImport(Library, SetLastError = true)]
    public static partial nint VirtualAlloc(nint address, nuint size, MemoryOperation allocationType, PageProtection protect);

    [LibraryImport(Library, SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    public static partial bool VirtualFree(nint address, nuint size, MemoryOperation freeType);

    /// <summary>Returns a Win32 error code; 0 is success.</summary>
    [LibraryImport(Library)]
    public static partial uint DiscardVirtualMemory(nint address, nuint size);

    [LibraryImport(Library)]
    public static partial nint GetCurrentProcess();

    [LibraryImport(Library, EntryPoint = "K32QueryWorkingSetEx", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    public static partial bool QueryWorkingSetEx(nint process, WorkingSetExInformation* info, uint size);

    [LibraryImport(Library, EntryPoint = "K32GetProcessMemoryInfo", SetLastError = true)]
    [return: MarshalAs(UnmanagedType.Bool)]
    public static partial bool GetProcessMemoryInfo(nint process, ProcessMemoryCounters* counters, uint size);
}
