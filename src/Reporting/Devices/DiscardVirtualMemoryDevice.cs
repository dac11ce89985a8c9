using Buddy.Interop;

namespace Buddy.Reporting.Devices;

/// <summary>Windows DiscardVirtualMemory: pages leave the working set; contents become undefined.</summary>
public sealed class DiscardVirtualMemoryDevice : IReportingDevice
{
    public DiscardVirtualMemoryDevice()
    {
        if (!OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("DiscardVirtualMemory exists only on Windows.");
    }

    public string Name => "discard-virtual-memory";

    public bool ZeroesMemory => false;

    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        foreach (FreeBlock range in ranges)
            if (!VirtualMemory.Discard(range.Address, (nuint)range.Length)) return false;
        return true;
    }
}
