using Buddy.Reporting;

namespace Buddy.Cli.Workloads;

/// <summary>Devices a stress run can report to.</summary>
public enum StressDevice
{
    /// <summary>MADV_DONTNEED through process_madvise.</summary>
    DontNeed,
    /// <summary>DONTNEED behind a 1-5 ms delay per scatterlist: a wide mid-report window.</summary>
    Slow,
    /// <summary>DONTNEED where every 3rd call fails: by result, by exception, or after reporting half the batch.</summary>
    Failing,
    /// <summary>A different device, mode and cadence for every reporter restart.</summary>
    Mixed,
}

public sealed record StressOptions
{
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    public int Threads { get; init; } = Environment.ProcessorCount * 2;
    public int Seed { get; init; } = 1;
    public long ArenaBytes { get; init; } = 256L << 20;
    public StressDevice Device { get; init; } = StressDevice.Mixed;
    public ReportingMode Mode { get; init; } = ReportingMode.Isolate;
    /// <summary>How often every thread stops at a barrier while the invariant checker runs.</summary>
    public TimeSpan CheckInterval { get; init; } = TimeSpan.FromMilliseconds(250);
    /// <summary>How often the reporter is stopped mid-flight and started again.</summary>
    public TimeSpan RestartInterval { get; init; } = TimeSpan.FromMilliseconds(700);
    public bool Poison { get; init; } = true;
    /// <summary>
    /// Each worker thread runs a random number of operations below this (and at least a tenth of it),
    /// then hands its blocks to a successor and exits with its cache.
    /// </summary>
    public int ThreadOperations { get; init; } = 50_000;
    /// <summary>
    /// 0: one section of <see cref="ArenaBytes"/>. Otherwise the arena starts with one section of this
    /// size, grows up to <see cref="ArenaBytes"/>, and free sections go offline while threads allocate.
    /// </summary>
    public long SectionBytes { get; init; }
}

public sealed record StressResult(
    int Seed,
    long Operations,
    double OperationsPerSecond,
    long Corruptions,
    long LostPages,
    long InvariantChecks,
    long Reports,
    long FailedReports,
    long SpinWaits,
    TimeSpan LongestSpin,
    long Exhaustions,
    long CrossThreadFrees,
    long SectionsAdded,
    long SectionsRemoved,
    long ThreadsReplaced,
    IReadOnlyList<string> Problems)
{
    public bool Passed => Corruptions == 0 && LostPages == 0 && Problems.Count == 0;
}
