using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    // Generic syscall numbers, shared by x86_64 and arm64.
    private const long SysPidfdOpen = 434;
    private const long SysProcessMadvise = 440;

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
