namespace Buddy.Reporting;

/// <summary>
/// Where reported free memory goes (Linux's page_reporting_dev_info.report). One call takes a
/// scatterlist of ranges; it returns true only when every range was reported. A device may also
/// throw; the reporter treats that as a failure and nothing is lost.
/// </summary>
public interface IReportingDevice
{
    /// <summary>What the device is, for statistics and logs.</summary>
    string Name { get; }

    /// <summary>True when reported private anonymous memory reads as zero afterwards (MADV_DONTNEED).</summary>
    bool ZeroesMemory { get; }

    /// <summary>Reports one scatterlist; true only when every range was reported.</summary>
    bool Report(ReadOnlySpan<FreeBlock> ranges);
}
