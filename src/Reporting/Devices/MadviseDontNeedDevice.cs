using Buddy.Interop;

namespace Buddy.Reporting.Devices;

/// <summary>
/// madvise(MADV_DONTNEED): pages leave the process at once and read back as zero. One
/// process_madvise call per scatterlist where the kernel allows it, else one madvise per range.
/// </summary>
public sealed class MadviseDontNeedDevice : IReportingDevice, IDisposable
{
    private readonly PidfdHandle? pidfd;
    private volatile bool vectored;
    private long syscalls;

    /// <param name="useProcessMadvise">False forces one madvise call per range.</param>
    public MadviseDontNeedDevice(bool useProcessMadvise = true)
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("MADV_DONTNEED reporting needs Linux.");
        pidfd = useProcessMadvise ? ProcessMadvise.TryOpenSelf() : null;
        vectored = pidfd is not null;
    }

    /// <inheritdoc/>
    public string Name => vectored ? "madvise-dontneed (process_madvise)" : "madvise-dontneed";

    /// <inheritdoc/>
    public bool ZeroesMemory => true;

    /// <summary>True while scatterlists go down in one process_madvise call.</summary>
    public bool UsesProcessMadvise => vectored;

    /// <summary>System calls made so far.</summary>
    public long Syscalls => Interlocked.Read(ref syscalls);

    /// <inheritdoc/>
    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        int done = vectored ? ReportVectored(ranges) : 0;
        for (int i = done; i < ranges.Length; i++)
        {
            Interlocked.Increment(ref syscalls);
            if (!VirtualMemory.DontNeed(ranges[i].Address, (nuint)ranges[i].Length)) return false;
        }
        return true;
    }

    /// <summary>Returns how many leading ranges were advised; the caller advises the rest one by one.</summary>
    private int ReportVectored(ReadOnlySpan<FreeBlock> ranges)
    {
        int done = 0;
        Span<Libc.IoVector> vector = stackalloc Libc.IoVector[Math.Min(ranges.Length, 256)];
        while (done < ranges.Length)
        {
            int count = Math.Min(vector.Length, ranges.Length - done);
            long expected = 0;
            for (int i = 0; i < count; i++)
            {
                vector[i] = new Libc.IoVector { Base = ranges[done + i].Address, Length = (nuint)ranges[done + i].Length };
                expected += ranges[done + i].Length;
            }
            Interlocked.Increment(ref syscalls);
            long advised = ProcessMadvise.Advise(pidfd!, vector[..count], Libc.Advice.DontNeed, out _);
            if (advised < 0)
            {
                // The kernel refuses this advice through process_madvise: use madvise from now on.
                vectored = false;
                return done;
            }
            if (advised < expected) return done + CountWhole(ranges.Slice(done, count), advised);
            done += count;
        }
        return done;
    }

    private static int CountWhole(ReadOnlySpan<FreeBlock> ranges, long bytes)
    {
        int whole = 0;
        while (whole < ranges.Length && bytes >= ranges[whole].Length) bytes -= ranges[whole++].Length;
        return whole;
    }

    /// <inheritdoc/>
    public void Dispose() => pidfd?.Dispose();
}
