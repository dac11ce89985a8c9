namespace Buddy.Reporting.Devices;

/// <summary>
/// Tells the OS nothing and keeps nothing: blocks are marked reported while their memory stays
/// resident. For measuring the reporter's own cost, and for hosts that only want the bookkeeping.
/// </summary>
public sealed class NullReportingDevice : IReportingDevice
{
    /// <inheritdoc/>
    public string Name => "none";

    /// <inheritdoc/>
    public bool ZeroesMemory => false;

    /// <inheritdoc/>
    public bool Report(ReadOnlySpan<FreeBlock> ranges) => true;
}
