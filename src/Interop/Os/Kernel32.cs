using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Buddy.Interop;

/// <summary>
/// P/Invokes into kernel32 on Windows, one per file (Kernel32.Name.cs). No policy: every caller
/// checks results. This file holds the library name and the types they share.
/// </summary>
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
        Decommit = 0x4000,
        Release = 0x8000,
        /// <summary>MEM_RESET: the contents are of no more interest; the pages may be taken when memory is short.</summary>
        Reset = 0x80000,
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
}
