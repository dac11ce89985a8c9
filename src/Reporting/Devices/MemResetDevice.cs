using Buddy.Interop;

namespace Buddy.Reporting.Devices;

/// <summary>
/// Windows VirtualAlloc(MEM_RESET): the hint tier's device there. The pages stay in the working set
/// until memory is short, and contents are undefined until rewritten: no zero promise.
/// </summary>
public sealed class MemResetDevice : IReportingDevice
{
    /// <summary>A device for Windows; elsewhere it throws <see cref="PlatformNotSupportedException"/>.</summary>
    public MemResetDevice()
    {
        if (!OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("MEM_RESET exists only on Windows.");
    }

    /// <inheritdoc/>
    public string Name => "mem-reset";

    /// <inheritdoc/>
    public bool ZeroesMemory => false;

    /// <inheritdoc/>
    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        foreach (FreeBlock range in ranges)
            if (!VirtualMemory.ResetLazily(range.Address, (nuint)range.Length)) return false;
        return true;
    }
}
