using Buddy.Interop;

namespace Buddy.Reporting.Devices;

/// <summary>Windows DiscardVirtualMemory: pages leave the working set; contents become undefined.</summary>
public sealed class DiscardVirtualMemoryDevice : IReportingDevice
{
    /// <summary>A device for Windows; elsewhere it throws <see cref="PlatformNotSupportedException"/>.</summary>
    public DiscardVirtualMemoryDevice()
    {
        if (!OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("DiscardVirtualMemory exists only on Windows.");
    }

    /// <inheritdoc/>
    public string Name => "discard-virtual-memory";

    /// <inheritdoc/>
    public bool ZeroesMemory => false;

    /// <inheritdoc/>
    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        foreach (FreeBlock range in ranges)
            if (!VirtualMemory.Discard(range.Address, (nuint)range.Length)) return false;
        return true;
    }
}
