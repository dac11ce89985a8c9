namespace Buddy.Reporting.Devices;

/// <summary>The devices this OS offers.</summary>
public static class ReportingDevices
{
    /// <summary>The device that lowers RSS on this OS: MADV_DONTNEED on Linux, DiscardVirtualMemory on Windows.</summary>
    public static IReportingDevice CreateDefault() => OperatingSystem.IsWindows()
        ? new DiscardVirtualMemoryDevice()
        : new MadviseDontNeedDevice();

    /// <summary>
    /// The device that offers memory without taking it now, for the hint tier: MADV_FREE on Linux,
    /// MEM_RESET on Windows. The OS takes hinted pages only when it needs memory.
    /// </summary>
    public static IReportingDevice CreateDefaultHint() => OperatingSystem.IsWindows()
        ? new MemResetDevice()
        : new MadviseFreeDevice();
}
