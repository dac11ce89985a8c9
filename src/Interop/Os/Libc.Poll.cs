using System.Runtime.InteropServices;

namespace Buddy.Interop;

internal static unsafe partial class Libc
{
    /// <summary>poll's struct pollfd.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    /// <summary>POLLPRI: what a pressure stall trigger raises.</summary>
    public const short PollPriority = 0x2;

    /// <summary>POLLERR: the trigger's file went away (its cgroup was removed).</summary>
    public const short PollError = 0x8;

    /// <summary>EINTR: a signal interrupted the call, which may simply be retried.</summary>
    public const int Interrupted = 4;

    [LibraryImport(Library, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);
}
