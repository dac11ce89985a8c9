namespace Buddy.Reporting.Devices;

/// <summary>The devices this OS offers.</summary>
public static class ReportingDevices
{
    /// <summary>The device that lowers RSS on this OS: MADV_DONTNEED on Linux, DiscardVirtualMemory on Windows.</summary>
    public static IReportingDevice CreateDefault() => OperatingSystem.IsWindows()
        ? new DiscardVirtualMemoryDevice()
        : new MadviseDontNeedDevice();
}
