namespace Buddy.Reporting.Devices;

/// <summary>
/// Tells the OS nothing and keeps nothing: blocks are marked reported while their memory stays
/// resident. For measuring the reporter's own cost, and for hosts that only want the bookkeeping.
/// </summary>
public sealed class NullReportingDevice : IReportingDevice
{
    public string Name => "none";

    public bool ZeroesMemory => false;

    public bool Report(ReadOnlySpan<FreeBlock> ranges) => true;
}
