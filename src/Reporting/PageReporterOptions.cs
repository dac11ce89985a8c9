namespace Buddy.Reporting;

/// <summary>Reporting policy. Every value is checked when the reporter is built.</summary>
public sealed record PageReporterOptions
{
    /// <summary>Smallest order reported; null means the arena's pageblock order (2 MiB blocks).</summary>
    public int? ReportOrder { get; init; }

    /// <summary>Blocks per scatterlist handed to the device in one call (PAGE_REPORTING_CAPACITY).</summary>
    public int Capacity { get; init; } = 32;

    /// <summary>How long after the first notification a pass starts, so frees can batch up.</summary>
    public TimeSpan Delay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Unreported free bytes of report order or more needed before a pass does any work.</summary>
    public long ThresholdBytes { get; init; }

    /// <summary>Bytes reported at most in one pass; the rest waits for the next pass, one delay later.</summary>
    public long BudgetBytesPerPass { get; init; } = 4L << 30;

    public ReportingMode Mode { get; init; } = ReportingMode.Isolate;

    internal int ResolveReportOrder(BuddyArena arena) => ReportOrder ?? arena.PageblockOrder;

    internal void Validate(BuddyArena arena) => Validate(arena.Options);

    /// <summary>
    /// Checks every value against the arena they would report: throws an <see cref="ArgumentException"/>
    /// whose parameter name is the option that is wrong, and says what it must be.
    /// </summary>
    public void Validate(ArenaOptions arena)
    {
        ArgumentNullException.ThrowIfNull(arena);
        if (ReportOrder is { } order && (order < 0 || order > arena.MaxOrder))
            throw new ArgumentOutOfRangeException(nameof(ReportOrder), order, $"ReportOrder must be between 0 and the arena's MaxOrder ({arena.MaxOrder}).");
        if (Capacity is < 1 or > 1024)
            throw new ArgumentOutOfRangeException(nameof(Capacity), Capacity, "Capacity must be between 1 and 1024.");
        if (Delay < TimeSpan.Zero || Delay > TimeSpan.FromHours(1))
            throw new ArgumentOutOfRangeException(nameof(Delay), Delay, "Delay must be between zero and one hour.");
        if (ThresholdBytes < 0)
            throw new ArgumentOutOfRangeException(nameof(ThresholdBytes), ThresholdBytes, "ThresholdBytes must not be negative.");
        if (BudgetBytesPerPass <= 0)
            throw new ArgumentOutOfRangeException(nameof(BudgetBytesPerPass), BudgetBytesPerPass, "BudgetBytesPerPass must be positive.");
        if (!Enum.IsDefined(Mode))
            throw new ArgumentOutOfRangeException(nameof(Mode), Mode, "Mode must be Isolate or InPlace.");
    }
}

/// <summary>What one reporting pass did.</summary>
public readonly record struct ReportingPassResult(long ReportedBlocks, long ReportedBytes, long DeviceCalls, long FailedReports, bool BudgetExhausted);

/// <summary>Reporter counters since it was built. <paramref name="PassTime"/> is the time spent in passes, device calls included, on the reporter's clock.</summary>
public sealed record ReporterStatistics(
    long Passes,
    long DeviceCalls,
    long ReportedBlocks,
    long ReportedBytes,
    long FailedReports,
    TimeSpan DeviceTime,
    TimeSpan LongestDeviceCall,
    string? LastError,
    TimeSpan PassTime = default);

/// <summary>A failed device call or pass: what <see cref="PageReporter.Failed"/> hands its handlers.</summary>
/// <param name="Message">What failed, as kept in <see cref="ReporterStatistics.LastError"/>.</param>
/// <param name="Exception">What was thrown, if anything was (a device may also return false).</param>
public sealed record ReporterFailure(string Message, Exception? Exception);
