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

/// <summary>buddy_options in buddy.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct NativeOptions
{
    public ulong Size;
    public uint ZoneCount;
    public uint Backing;
    public uint Flags;
    public uint ReportDelayMs;
    public uint Device;
    public uint DeviceDelayMs;
    public uint ReportWaitTimeoutMs;
    /// <summary>0: never grows. Otherwise the arena grows in sections of Size up to this many MiB.</summary>
    public uint MaximumSizeMiB;

    public const uint Poison = 1, Validate = 2, InPlace = 4;
    public const uint KnownFlags = Poison | Validate | InPlace;
}

/// <summary>buddy_stats in buddy.h.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct NativeStats
{
    public ulong TotalBytes;
    public ulong FreeBytes;
    public ulong AllocatedBytes;
    public ulong ReportedBytes;
    public ulong ReportingBytes;
    public ulong Allocations;
    public ulong Frees;
    public ulong FailedAllocations;
    public ulong SpinWaits;
    public ulong ZeroSkippedBytes;
    public ulong ReporterPasses;
    public ulong ReporterDeviceCalls;
    public uint PageSize;
    public uint MaxOrder;
    public fixed ulong FreeBlocksByOrder[21];
    public ulong ReporterFailedReports;
}
