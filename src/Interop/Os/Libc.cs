using System.Runtime.InteropServices;

namespace Buddy.Interop;

/// <summary>
/// P/Invokes into the C library on Linux, one per file (Libc.Name.cs). No policy: every caller
/// checks results. This file holds the library name and the constants they share.
/// </summary>
internal static unsafe partial class Libc
{
    private const string Library = "libc";

    /// <summary>mmap's PROT_* bits.</summary>
    [Flags]
    public enum Protection
    {
        Read = 0x1,
        Write = 0x2,
    }

    /// <summary>mmap's MAP_* bits (Linux values).</summary>
    [Flags]
    public enum MapFlags
    {
        Private = 0x02,
        Anonymous = 0x20,
        NoReserve = 0x4000,
    }

    /// <summary>madvise's MADV_* advice.</summary>
    public enum Advice
    {
        DontNeed = 4,
        Free = 8,
        HugePage = 14,
        PopulateWrite = 23,
    }

    /// <summary>The largest vector process_madvise accepts (UIO_MAXIOV).</summary>
    public const int MaxIoVectors = 1024;

    public static readonly nint MapFailed = -1;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public nint Base;
        public nuint Length;
    }
}
