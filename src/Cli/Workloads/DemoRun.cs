using System.Diagnostics;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Cli.Workloads;

/// <summary>Figures of one demo run: a burst to a peak, back to a live set, then idle.</summary>
public sealed record DemoFigures(
    bool Reporting,
    long LiveBytes,
    long Allocations,
    long StartRssBytes,
    long PeakRssBytes,
    long IdleRssBytes,
    long ReportedBytes,
    double? SecondsToIdle,
    long[] FreeBlocksByOrder);

/// <summary>Runs the demo's burst in a fresh arena, with or without a page reporter.</summary>
public static class DemoRun
{
    public static DemoFigures Run(long peakBytes, long liveBytes, TimeSpan delay, ReportingMode mode, bool reporting, TimeSpan idleLimit)
    {
        long arenaBytes = RoundUp(peakBytes * 2, 4L << 20);
        using var arena = new BuddyArena(new ArenaOptions { Size = arenaBytes, Backing = ArenaBacking.Reserve });
        IReportingDevice? device = reporting ? ReportingDevices.CreateDefault() : null;
        try
        {
            // Idle for one delay, the reporter also hands back the fragments down to 64 KiB that live blocks keep apart.
            using PageReporter? reporter = device is null ? null : new PageReporter(arena, device, new PageReporterOptions { Delay = delay, Mode = mode, IdleTime = delay });
            reporter?.Start();
            return Measure(arena, reporter, peakBytes, liveBytes, reporting, idleLimit);
        }
        finally
        {
            (device as IDisposable)?.Dispose();
        }
    }

    private static DemoFigures Measure(BuddyArena arena, PageReporter? reporter, long peakBytes, long liveBytes, bool reporting, TimeSpan idleLimit)
    {

        var workload = new BurstWorkload(arena);
        long start = ProcessMemory.ResidentBytes();
        workload.Burst(peakBytes, liveBytes);
        long peak = ProcessMemory.ResidentBytes();
        workload.EndBurst();

        // Idle: no allocator call from here. RSS has fallen once it is within 64 MiB of start + live;
        // the run ends when the reporter has nothing left to report down to its floor, or at the idle limit.
        long target = start + workload.LiveBytes + (64L << 20);
        long idleStart = Stopwatch.GetTimestamp();
        double? secondsToIdle = null;
        while (Stopwatch.GetElapsedTime(idleStart) < idleLimit)
        {
            if (secondsToIdle is null && ProcessMemory.ResidentBytes() <= target)
                secondsToIdle = Stopwatch.GetElapsedTime(idleStart).TotalSeconds;
            if (secondsToIdle is not null && reporter is not null && arena.UnreportedFreeBytes(reporter.FloorOrder) == 0) break;
            Thread.Sleep(20);
        }
        long idle = ProcessMemory.ResidentBytes();
        ArenaStatistics stats = arena.GetStatistics();
        long reported = reporter?.GetStatistics().ReportedBytes ?? 0;
        reporter?.Stop();
        return new DemoFigures(reporting, workload.LiveBytes, workload.Allocations, start, peak, idle, reported, secondsToIdle,
            Enumerable.Range(0, arena.MaxOrder + 1).Select(stats.FreeBlocks).ToArray());
    }

    private static long RoundUp(long value, long multiple) => (value + multiple - 1) / multiple * multiple;
}
