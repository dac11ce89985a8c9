using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Buddy.Interop;

/// <summary>A pidfd for the current process, owned and closed by this handle.</summary>
internal sealed class PidfdHandle : SafeHandleMinusOneIsInvalid
{
    public PidfdHandle() : base(ownsHandle: true) { }

    internal PidfdHandle(int fd) : base(ownsHandle: true) => SetHandle(fd);

    protected override bool ReleaseHandle() => Libc.Close((int)handle) == 0;
}

/// <summary>process_madvise(2) on the current process: one syscall advises a whole vector of ranges.</summary>
internal static unsafe class ProcessMadvise
{
    /// <summary>Opens a pidfd for this process, or returns null where pidfd_open is unavailable.</summary>
    public static PidfdHandle? TryOpenSelf()
    {
        if (!OperatingSystem.IsLinux()) return null;
        int fd = Libc.PidfdOpen(Libc.GetPid(), 0);
        return fd < 0 ? null : new PidfdHandle(fd);
    }

    /// <summary>
    /// Advises every range in <paramref name="ranges"/> (at most <see cref="Libc.MaxIoVectors"/>).
    /// Returns the bytes advised, or -1 with the errno in <paramref name="errno"/>.
    /// </summary>
    public static long Advise(PidfdHandle pidfd, ReadOnlySpan<Libc.IoVector> ranges, Libc.Advice advice, out int errno)
    {
        if (ranges.Length > Libc.MaxIoVectors)
            throw new ArgumentOutOfRangeException(nameof(ranges), ranges.Length, $"At most {Libc.MaxIoVectors} ranges per call.");
        bool added = false;
        try
        {
            pidfd.DangerousAddRef(ref added);
            fixed (Libc.IoVector* vector = ranges)
            {
                long result = Libc.ProcessMadvise((int)pidfd.DangerousGetHandle(), vector, (nuint)ranges.Length, advice, 0);
                errno = result < 0 ? Marshal.GetLastPInvokeError() : 0;
                return result;
            }
        }
        finally
        {
            if (added) pidfd.DangerousRelease();
        }
    }
}
