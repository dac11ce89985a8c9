using System.Runtime.InteropServices;

namespace Buddy.Native;

/// <summary>buddy_status in buddy.h.</summary>
internal enum Status
{
    Ok = 0,
    InvalidArgument = 1,
    OutOfMemory = 2,
    InvalidPointer = 3,
    Disposed = 4,
    Timeout = 5,
    Corruption = 6,
    Internal = 7,
    DeviceFailed = 8,
}

/// <summary>buddy_options in buddy.h, versioned by StructSize.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeOptions
{
    public uint StructSize;
    public uint ZoneCount;
    public ulong Size;
    public uint Backing;
    public uint Flags;
    public uint ReportDelayMs;
    public uint Device;
    public uint DeviceDelayMs;
    public uint ReportWaitTimeoutMs;
    /// <summary>0: never grows. Otherwise the arena grows in sections of Size up to this many MiB.</summary>
    public uint MaximumSizeMiB;
    public uint FloorKiB;
    public uint IdleMs;
    public uint Pressure;
    /// <summary>The hint tier's delay; 0: no hint tier.</summary>
    public uint HintDelayMs;
    /// <summary>Names the 4 bytes the 8-byte alignment pads to, so a later field cannot hide in padding: must be 0.</summary>
    public uint Reserved;

    public const uint Poison = 1, Validate = 2, InPlace = 4, HugePages = 8, Populate = 16;
    public const uint KnownFlags = Poison | Validate | InPlace | HugePages | Populate;
    public const uint PressureCgroup = 1, PressurePsi = 2, PressureGc = 4, PressureOff = 8;
    public const uint KnownPressure = PressureCgroup | PressurePsi | PressureGc | PressureOff;

    /// <summary>The layout before floor_kib, the first one with a size (BUDDY_OPTIONS_SIZE_V1).</summary>
    public const uint SizeV1 = 44;

    /// <summary>
    /// Reads the caller's struct by its size (Linux's copy_struct_from_user): fields past a smaller
    /// struct stay zero, their defaults; a larger one is accepted only if its extra bytes are zero.
    /// </summary>
    public static unsafe NativeOptions Read(NativeOptions* source)
    {
        uint size = source->StructSize;
        if (size < SizeV1 || size > 4096)
            throw new ArgumentOutOfRangeException("struct_size", size, $"struct_size must be sizeof(buddy_options) ({sizeof(NativeOptions)} in this version; at least {SizeV1}).");
        var options = default(NativeOptions);
        uint known = (uint)sizeof(NativeOptions);
        Buffer.MemoryCopy(source, &options, known, Math.Min(size, known));
        for (uint i = known; i < size; i++)
            if (((byte*)source)[i] != 0)
                throw new ArgumentOutOfRangeException("struct_size", size, $"buddy_options has fields this library does not know (byte {i} is not zero): it understands {known} bytes.");
        return options;
    }
}

/// <summary>buddy_stats in buddy.h, versioned by StructSize.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeStats
{
    public uint StructSize;
    public uint PageSize;
    public ulong TotalBytes;
    public ulong FreeBytes;
    public ulong AllocatedBytes;
    public ulong ReportedBytes;
    public ulong ReportingBytes;
    public ulong HintedBytes;
    public ulong CachedBytes;
    public ulong Allocations;
    public ulong Frees;
    public ulong FailedAllocations;
    public ulong SpinWaits;
    public ulong ZeroSkippedBytes;
    public ulong ReporterPasses;
    public ulong ReporterDeviceCalls;
    public ulong ReporterFailedReports;
    public uint MaxOrder;
    public uint Reserved;
    public fixed ulong FreeBlocksByOrder[21];

    /// <summary>The first versioned layout (BUDDY_STATS_SIZE_V1); a caller passes at least this.</summary>
    public const uint SizeV1 = 304;

    /// <summary>
    /// Writes these statistics into the caller's struct by its size (Linux's copy_struct_to_user): a
    /// smaller struct gets the prefix it knows, a larger one zeroes past this layout.
    /// </summary>
    public void WriteTo(NativeStats* target)
    {
        uint size = target->StructSize;
        if (size < SizeV1 || size > 4096)
            throw new ArgumentOutOfRangeException("struct_size", size, $"stats->struct_size must be sizeof(buddy_stats) ({sizeof(NativeStats)} in this version; at least {SizeV1}).");
        StructSize = size;
        uint known = (uint)sizeof(NativeStats);
        fixed (NativeStats* source = &this) Buffer.MemoryCopy(source, target, size, Math.Min(size, known));
        if (size > known) NativeMemory.Clear((byte*)target + known, size - known);
    }
}
