using Buddy.Interop;

namespace Buddy.Reporting.Devices;

/// <summary>
/// madvise(MADV_FREE): the kernel takes the pages only under memory pressure, so RSS does not
/// fall until then, and contents are undefined until rewritten: no zero promise.
/// </summary>
public sealed class MadviseFreeDevice : IReportingDevice
{
    /// <summary>A device for Linux; elsewhere it throws <see cref="PlatformNotSupportedException"/>.</summary>
    public MadviseFreeDevice()
    {
        if (!OperatingSystem.IsLinux()) throw new PlatformNotSupportedException("MADV_FREE reporting needs Linux.");
    }

    /// <inheritdoc/>
    public string Name => "madvise-free";

    /// <inheritdoc/>
    public bool ZeroesMemory => false;

    /// <inheritdoc/>
    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        foreach (FreeBlock range in ranges)
            if (!VirtualMemory.FreeLazily(range.Address, (nuint)range.Length)) return false;
        return true;
    }
}
