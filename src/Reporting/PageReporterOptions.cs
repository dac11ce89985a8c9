using System.Diagnostics.CodeAnalysis;

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

    /// <summary>How blocks are held while the device works on them.</summary>
    public ReportingMode Mode { get; init; } = ReportingMode.Isolate;

    /// <summary>
    /// Smallest order reported once the arena has been idle for <see cref="IdleTime"/>, or under memory
    /// pressure: the fragments below <see cref="ReportOrder"/> that live blocks keep from merging (Linux's
    /// <c>page_reporting_order</c>, chosen per occasion). Null means 64 KiB blocks (order 4 at 4 KiB pages);
    /// at most the report order.
    /// </summary>
    public int? FloorOrder { get; init; }

    /// <summary>
    /// How long the arena must see no allocation or free before free blocks down to <see cref="FloorOrder"/>
    /// are reported, once per idle stretch. <see cref="Timeout.InfiniteTimeSpan"/>: only under pressure.
    /// </summary>
    public TimeSpan IdleTime { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The hint tier: how long a free block (down to <see cref="FloorOrder"/>, fragments included)
    /// stays unused before it is offered to the OS with MADV_FREE (MEM_RESET on Windows). The OS takes
    /// hinted memory only when a charge needs it, and memory reused first costs nothing. With the tier
    /// on, the timed report tier hands back only hinted memory, down to <see cref="FloorOrder"/>, one
    /// <see cref="Delay"/> after the pass that first left it hinted; idleness, pressure and ReportNow
    /// report everything as before.
    /// <see cref="Timeout.InfiniteTimeSpan"/> (the default): no hint tier.
    /// </summary>
    public TimeSpan HintDelay { get; init; } = Timeout.InfiniteTimeSpan;

    /// <summary>Whether the hint tier runs (<see cref="HintDelay"/> is not infinite).</summary>
    public bool Hints => HintDelay != Timeout.InfiniteTimeSpan;

    /// <summary>
    /// Which memory pressure sources the reporter listens to. Under pressure it reports at once, down to
    /// <see cref="FloorOrder"/>, with no budget; <see cref="PageReporter.SignalPressure"/> works whatever this says.
    /// </summary>
    public PressureSources PressureSources { get; init; } = PressureSources.All;

    /// <summary>
    /// How often the polled pressure sources (cgroup usage, GC memory load) are read, while the arena holds
    /// free memory the reporter could hand back; when it holds none they are not read. A burst in a
    /// neighbour is faster than any poll: the density benchmark fitted 7 processes at 250 ms, 11-12 at 100 ms.
    /// </summary>
    public TimeSpan PressurePollInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// Share of a memory limit in use at which the polled sources report pressure: cgroup usage of its
    /// limit (or <c>memory.high</c>), the GC's memory load of its high threshold. 50 to 100.
    /// </summary>
    public int PressurePercent { get; init; } = 90;

    internal int ResolveReportOrder(BuddyArena arena) => HugePageFloor(arena, ReportOrder ?? arena.PageblockOrder);

    internal int ResolveFloorOrder(BuddyArena arena) => HugePageFloor(arena, Math.Min(ResolveReportOrder(arena), FloorOrder ?? DefaultFloorOrder(arena.Options)));

    /// <summary>Over huge pages, nothing below a pageblock or 2 MiB is hinted or reported: it would split a huge page.</summary>
    private static int HugePageFloor(BuddyArena arena, int order) => arena.Options.TransparentHugePages
        ? Math.Min(arena.MaxOrder, Math.Max(order, Math.Max(arena.PageblockOrder, System.Numerics.BitOperations.Log2((uint)Math.Max(1, ArenaOptions.HugePageBytes / arena.PageSize)))))
        : order;

    /// <summary>The order of 64 KiB blocks, or 0 when pages are that large already.</summary>
    private static int DefaultFloorOrder(ArenaOptions arena) => Math.Max(0, System.Numerics.BitOperations.Log2((uint)Math.Max(1, (64 << 10) / arena.PageSize)));

    internal void Validate(BuddyArena arena) => Validate(arena.Options);

    /// <summary>
    /// Checks every value against the arena they would report: throws an <see cref="ArgumentException"/>
    /// whose parameter name is the option that is wrong, and says what it must be.
    /// </summary>
    public void Validate(ArenaOptions arena)
    {
        ArgumentNullException.ThrowIfNull(arena);
        FirstError(arena)?.Throw();
    }

    /// <summary>Checks every value against the arena without throwing: the first wrong one, and what it must be.</summary>
    public bool TryValidate(ArenaOptions arena, [NotNullWhen(false)] out OptionError? error)
    {
        ArgumentNullException.ThrowIfNull(arena);
        return (error = FirstError(arena)) is null;
    }

    private OptionError? FirstError(ArenaOptions arena)
    {
        if (ReportOrder is { } order && (order < 0 || order > arena.MaxOrder))
            return new OptionError(nameof(ReportOrder), order, $"ReportOrder must be between 0 and the arena's MaxOrder ({arena.MaxOrder}).");
        if (Capacity is < 1 or > 1024)
            return new OptionError(nameof(Capacity), Capacity, "Capacity must be between 1 and 1024.");
        if (Delay < TimeSpan.Zero || Delay > TimeSpan.FromHours(1))
            return new OptionError(nameof(Delay), Delay, "Delay must be between zero and one hour.");
        if (ThresholdBytes < 0)
            return new OptionError(nameof(ThresholdBytes), ThresholdBytes, "ThresholdBytes must not be negative.");
        if (BudgetBytesPerPass <= 0)
            return new OptionError(nameof(BudgetBytesPerPass), BudgetBytesPerPass, "BudgetBytesPerPass must be positive.");
        if (!Enum.IsDefined(Mode))
            return new OptionError(nameof(Mode), Mode, "Mode must be Isolate or InPlace.");
        int reportOrder = ReportOrder ?? arena.PageblockOrder;
        if (FloorOrder is { } floor && (floor < 0 || floor > reportOrder))
            return new OptionError(nameof(FloorOrder), floor, $"FloorOrder must be between 0 and the report order ({reportOrder}).");
        if (HintDelay != Timeout.InfiniteTimeSpan && (HintDelay < TimeSpan.Zero || HintDelay > TimeSpan.FromHours(1)))
            return new OptionError(nameof(HintDelay), HintDelay, "HintDelay must be between zero and one hour, or Timeout.InfiniteTimeSpan (no hint tier).");
        if (IdleTime < TimeSpan.Zero && IdleTime != Timeout.InfiniteTimeSpan)
            return new OptionError(nameof(IdleTime), IdleTime, "IdleTime must be zero or more, or Timeout.InfiniteTimeSpan.");
        if ((PressureSources & ~PressureSources.All) != 0)
            return new OptionError(nameof(PressureSources), PressureSources, "PressureSources must combine None, Cgroup, Psi and GcMemoryLoad.");
        if (PressurePollInterval < TimeSpan.FromMilliseconds(10) || PressurePollInterval > TimeSpan.FromMinutes(1))
            return new OptionError(nameof(PressurePollInterval), PressurePollInterval, "PressurePollInterval must be between 10 ms and 1 minute.");
        if (PressurePercent is < 50 or > 100)
            return new OptionError(nameof(PressurePercent), PressurePercent, "PressurePercent must be between 50 and 100.");
        return null;
    }
}

/// <summary>What one reporting pass did.</summary>
public readonly record struct ReportingPassResult(long ReportedBlocks, long ReportedBytes, long DeviceCalls, long FailedReports, bool BudgetExhausted);

/// <summary>
/// Reporter counters since it was built. <paramref name="PassTime"/> is the time spent in passes, device
/// calls included, on the reporter's clock. <paramref name="IdlePasses"/> and <paramref name="PressurePasses"/>
/// count the passes that reported down to the floor order because the arena was idle or memory was
/// short; <paramref name="PressureSignals"/> counts the times a source (or the host) said it was.
/// <paramref name="FailuresInARow"/> is the device calls that failed since the last one that did not.
/// The hint tier's figures are apart: <paramref name="HintPasses"/>, the blocks and bytes offered to the
/// OS (<paramref name="HintedBlocks"/>, <paramref name="HintedBytes"/>) and the hint calls that failed.
/// </summary>
public sealed record ReporterStatistics(
    long Passes,
    long DeviceCalls,
    long ReportedBlocks,
    long ReportedBytes,
    long FailedReports,
    TimeSpan DeviceTime,
    TimeSpan LongestDeviceCall,
    string? LastError,
    TimeSpan PassTime = default,
    long IdlePasses = 0,
    long PressurePasses = 0,
    long PressureSignals = 0,
    long FailuresInARow = 0,
    long HintPasses = 0,
    long HintedBlocks = 0,
    long HintedBytes = 0,
    long FailedHints = 0);

/// <summary>A failed device call or pass: what <see cref="PageReporter.Failed"/> hands its handlers.</summary>
/// <param name="Message">What failed, as kept in <see cref="ReporterStatistics.LastError"/>.</param>
/// <param name="Exception">What was thrown, if anything was (a device may also return false).</param>
public sealed record ReporterFailure(string Message, Exception? Exception);

/// <summary>Where a reporter hears of memory pressure.</summary>
[Flags]
public enum PressureSources
{
    /// <summary>No source: only <see cref="PageReporter.SignalPressure"/>.</summary>
    None = 0,
    /// <summary>The process's cgroup: usage against its limit (v1 and v2) and <c>memory.events</c> (v2).</summary>
    Cgroup = 1,
    /// <summary>Pressure stall triggers: the cgroup's <c>memory.pressure</c> (v2) and <c>/proc/pressure/memory</c>.</summary>
    Psi = 2,
    /// <summary>The GC's view: <c>GCMemoryInfo.MemoryLoadBytes</c> against <c>HighMemoryLoadThresholdBytes</c>.</summary>
    GcMemoryLoad = 4,
    /// <summary>Every source.</summary>
    All = Cgroup | Psi | GcMemoryLoad,
}
