using System.Runtime.InteropServices;

namespace Buddy.Interop;

/// <summary>P/Invokes into the C library on Linux. No policy: every caller checks results.</summary>
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
    }

    /// <summary>The largest vector process_madvise accepts (UIO_MAXIOV).</summary>
    public const int MaxIoVectors = 1024;

    // Generic syscall numbers, shared by x86_64 and arm64.
    private const long SysPidfdOpen = 434;
    private const long SysProcessMadvise = 440;

    public static readonly nint MapFailed = -1;

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVector
    {
        public nint Base;
        public nuint Length;
    }

    [LibraryImport(Library, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nuint length, Protection protection, MapFlags flags, int fd, nint offset);

    [LibraryImport(Library, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nuint length);

    [LibraryImport(Library, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nuint length, Advice advice);

    [LibraryImport(Library, EntryPoint = "mincore", SetLastError = true)]
    public static partial int Mincore(nint address, nuint length, byte* vector);

    [LibraryImport(Library, EntryPoint = "getpid")]
    public static partial int GetPid();

    [LibraryImport(Library, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial nint Syscall2(long number, nint a, nint b);

    [LibraryImport(Library, EntryPoint = "syscall", SetLastError = true)]
    private static partial nint Syscall5(long number, nint a, nint b, nint c, nint d, nint e);

    /// <summary>pidfd_open(2): a file descriptor for a process, or -1.</summary>
    public static int PidfdOpen(int pid, uint flags) => (int)Syscall2(SysPidfdOpen, pid, (nint)flags);

    /// <summary>process_madvise(2): bytes advised, or -1.</summary>
    public static nint ProcessMadvise(int pidfd, IoVector* vectors, nuint count, Advice advice, uint flags)
        => Syscall5(SysProcessMadvise, pidfd, (nint)vectors, (nint)count, (nint)advice, (nint)flags);
}
