using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Buddy.Interop;

/// <summary>A range of address space obtained from the OS, with the values needed to give it back.</summary>
public readonly record struct Mapping(nint Base, nuint Length, nint MappedBase, nuint MappedLength);

/// <summary>Portable virtual-memory primitives over <see cref="Libc"/> and <see cref="Kernel32"/>.</summary>
public static unsafe class VirtualMemory
{
    /// <summary>The OS page size.</summary>
    public static int PageSize { get; } = Environment.SystemPageSize;

    /// <summary>
    /// Maps <paramref name="length"/> bytes of zero-filled, read-write address space aligned to
    /// <paramref name="alignment"/>. On Linux it is MAP_NORESERVE: pages cost memory only once touched.
    /// On Windows it is reserved and committed; physical pages still arrive on first touch.
    /// </summary>
    public static Mapping Map(nuint length, nuint alignment)
    {
        if (length == 0) throw new ArgumentOutOfRangeException(nameof(length), "Length must be positive.");
        if (alignment == 0 || (alignment & (alignment - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(alignment), alignment, "Alignment must be a power of two.");
        nuint mappedLength = length + (alignment > (nuint)PageSize ? alignment : 0);
        nint mapped;
        if (OperatingSystem.IsWindows())
        {
            mapped = Kernel32.VirtualAlloc(0, mappedLength, Kernel32.MemoryOperation.Reserve | Kernel32.MemoryOperation.Commit, Kernel32.PageProtection.ReadWrite);
            if (mapped == 0) throw new OutOfMemoryException($"VirtualAlloc of {mappedLength} bytes failed: {new Win32Exception(Marshal.GetLastPInvokeError()).Message}");
        }
        else
        {
            mapped = Libc.Mmap(0, mappedLength, Libc.Protection.Read | Libc.Protection.Write,
                Libc.MapFlags.Private | Libc.MapFlags.Anonymous | Libc.MapFlags.NoReserve, -1, 0);
            if (mapped == Libc.MapFailed) throw new OutOfMemoryException($"mmap of {mappedLength} bytes failed: {Marshal.GetLastPInvokeErrorMessage()}");
        }
        nint aligned = (nint)(((nuint)mapped + alignment - 1) & ~(alignment - 1));
        return new Mapping(aligned, length, mapped, mappedLength);
    }

    /// <summary>Unmaps what <see cref="Map"/> mapped, alignment slack included.</summary>
    public static void Unmap(Mapping mapping)
    {
        bool ok = OperatingSystem.IsWindows()
            ? Kernel32.VirtualFree(mapping.MappedBase, 0, Kernel32.MemoryOperation.Release)
            : Libc.Munmap(mapping.MappedBase, mapping.MappedLength) == 0;
        if (!ok) throw new InvalidOperationException($"Releasing the mapping at 0x{mapping.MappedBase:x} failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>
    /// Drops the pages of a page-aligned range of a <see cref="Map"/> mapping, which stays mapped and
    /// reads back as zero: madvise(MADV_DONTNEED) on Linux, decommit and commit again on Windows.
    /// </summary>
    public static void Reset(nint address, nuint length)
    {
        if (length == 0) return;
        bool ok = OperatingSystem.IsWindows()
            ? Kernel32.VirtualFree(address, length, Kernel32.MemoryOperation.Decommit)
              && Kernel32.VirtualAlloc(address, length, Kernel32.MemoryOperation.Commit, Kernel32.PageProtection.ReadWrite) != 0
            : DontNeed(address, length);
        if (!ok) throw new InvalidOperationException($"Resetting {length} bytes at 0x{address:x} failed: {Marshal.GetLastPInvokeErrorMessage()}");
    }

    /// <summary>madvise(MADV_DONTNEED): private anonymous pages are dropped and read back as zero.</summary>
    public static bool DontNeed(nint address, nuint length) => Libc.Madvise(address, length, Libc.Advice.DontNeed) == 0;

    /// <summary>madvise(MADV_FREE): pages are freed lazily, under memory pressure; contents undefined until then.</summary>
    public static bool FreeLazily(nint address, nuint length) => Libc.Madvise(address, length, Libc.Advice.Free) == 0;

    /// <summary>VirtualAlloc(MEM_RESET): the pages stay until memory is short, then go; contents undefined until rewritten.</summary>
    public static bool ResetLazily(nint address, nuint length)
    {
        if (!OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("MEM_RESET exists only on Windows.");
        return Kernel32.VirtualAlloc(address, length, Kernel32.MemoryOperation.Reset, Kernel32.PageProtection.ReadWrite) != 0;
    }

    /// <summary>madvise(MADV_HUGEPAGE): back the range with transparent huge pages where the kernel can. False if refused.</summary>
    public static bool AdviseHugePages(nint address, nuint length) => OperatingSystem.IsLinux() && Libc.Madvise(address, length, Libc.Advice.HugePage) == 0;

    /// <summary>madvise(MADV_POPULATE_WRITE): fault the range in now, writable, in one call (Linux 5.14). False if refused.</summary>
    public static bool PopulateWrite(nint address, nuint length) => OperatingSystem.IsLinux() && Libc.Madvise(address, length, Libc.Advice.PopulateWrite) == 0;

    /// <summary>DiscardVirtualMemory: pages leave the working set; contents become undefined.</summary>
    public static bool Discard(nint address, nuint length)
    {
        if (!OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("DiscardVirtualMemory exists only on Windows.");
        return Kernel32.DiscardVirtualMemory(address, length) == 0;
    }

    /// <summary>How many pages of the range are resident (mincore on Linux, QueryWorkingSetEx on Windows).</summary>
    public static long CountResidentPages(nint address, nuint length)
    {
        if (((nuint)address & (nuint)(PageSize - 1)) != 0)
            throw new ArgumentException($"Address 0x{address:x} is not page aligned.", nameof(address));
        long pages = (long)((length + (nuint)PageSize - 1) / (nuint)PageSize);
        return OperatingSystem.IsWindows() ? CountResidentWindows(address, pages) : CountResidentLinux(address, pages);
    }

    private static long CountResidentLinux(nint address, long pages)
    {
        const int Chunk = 4096;
        byte* vector = stackalloc byte[Chunk];
        long resident = 0;
        for (long done = 0; done < pages; done += Chunk)
        {
            int count = (int)Math.Min(Chunk, pages - done);
            nint start = address + (nint)(done * PageSize);
            if (Libc.Mincore(start, (nuint)count * (nuint)PageSize, vector) != 0)
                throw new InvalidOperationException($"mincore at 0x{start:x} failed: {Marshal.GetLastPInvokeErrorMessage()}");
            for (int i = 0; i < count; i++) resident += vector[i] & 1;
        }
        return resident;
    }

    private static long CountResidentWindows(nint address, long pages)
    {
        if (!OperatingSystem.IsWindows()) throw new PlatformNotSupportedException();
        const int Chunk = 512;
        var info = stackalloc Kernel32.WorkingSetExInformation[Chunk];
        long resident = 0;
        for (long done = 0; done < pages; done += Chunk)
        {
            int count = (int)Math.Min(Chunk, pages - done);
            for (int i = 0; i < count; i++)
                info[i] = new Kernel32.WorkingSetExInformation { VirtualAddress = address + (nint)((done + i) * PageSize) };
            if (!Kernel32.QueryWorkingSetEx(Kernel32.GetCurrentProcess(), info, (uint)(count * sizeof(Kernel32.WorkingSetExInformation))))
                throw new InvalidOperationException($"QueryWorkingSetEx failed: {Marshal.GetLastPInvokeErrorMessage()}");
            for (int i = 0; i < count; i++) resident += (long)(info[i].VirtualAttributes & 1);
        }
        return resident;
    }
}
