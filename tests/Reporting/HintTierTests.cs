using Buddy.Reporting;
using Buddy.Reporting.Scheduling;
using Buddy.Reporting.Testing;
using System.Diagnostics.Metrics;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>
/// The hint tier: free blocks offered to the OS (MADV_FREE) before the report tier hands them back.
/// The lists keep three runs (fresh, hinted, reported), allocation takes the cheapest first, a zeroed
/// allocation never trusts a hinted block, and the reporter hints after the hint delay and reports
/// only what stayed hinted for the report delay.
/// </summary>
public class HintTierTests
{
    private static readonly TimeSpan HintDelay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(10);

    private static BuddyArena Arena(int mib = 16, FakeTimeProvider? time = null, IMeterFactory? meters = null) =>
        new(new ArenaOptions { Size = mib * Arenas.MiB, ZoneCount = 1, ThreadCaches = false }, meters, time);

    private static ReportedBatch Hint(BuddyArena arena, int minOrder = 0) =>
        arena.ReportFreeBlocks(0, minOrder, ReportingMode.Isolate, new FreeBlock[64], _ => ReportOutcome.Hinted, selection: FreeBlockSelection.Fresh);

    private static ReportedBatch Report(BuddyArena arena, FreeBlockSelection selection = FreeBlockSelection.Unreported) =>
        arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[64], _ => ReportOutcome.ReportedZeroed, selection: selection);

    [Fact]
    public void A_hinted_block_counts_as_hinted_and_unreported_and_a_second_hint_pass_finds_nothing()
    {
        using BuddyArena arena = Arena();
        nint block = arena.Allocate(10);
        arena.Free(block);
        Assert.Equal(1, Hint(arena).Blocks);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(4 * Arenas.MiB, stats.HintedBytes);
        Assert.Equal(0, stats.ReportedBytes);
        // Pristine blocks are not counted: the one hinted block is all the unreported memory there is.
        Assert.Equal(4 * Arenas.MiB, arena.UnreportedFreeBytes(0));
        Assert.Equal(0, Hint(arena).Blocks);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_hinted_block_reported_in_place_counts_as_reporting_not_also_as_hinted()
    {
        using BuddyArena arena = Arena();
        nint block = arena.Allocate(10);
        arena.Free(block);
        Assert.Equal(1, Hint(arena).Blocks);
        ArenaStatistics? during = null;
        ReportedBatch batch = arena.ReportFreeBlocks(0, 0, ReportingMode.InPlace, new FreeBlock[64], _ =>
        {
            // Mid-report in place, the block is still in its list's hinted run.
            during = arena.GetStatistics();
            return ReportOutcome.Reported;
        }, selection: FreeBlockSelection.Hinted);
        Assert.Equal(1, batch.Blocks);
        Assert.Equal(0, during!.HintedBytes);
        Assert.Equal(4 * Arenas.MiB, during.ReportingPages * Arenas.Page);
        ArenaStatistics after = arena.GetStatistics();
        Assert.Equal(0, after.HintedBytes);
        Assert.Equal(4 * Arenas.MiB, after.ReportedBytes);
        arena.CheckInvariants();
    }

    [Fact]
    public void Allocation_takes_fresh_blocks_before_hinted_and_hinted_before_reported()
    {
        using BuddyArena arena = Arena();
        nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(10))];
        arena.Free(blocks[0]);
        Assert.Equal(1, Report(arena).Blocks);
        arena.Free(blocks[1]);
        Assert.Equal(1, Hint(arena).Blocks);
        arena.Free(blocks[2]);
        arena.CheckInvariants();
        Assert.Equal(blocks[2], arena.Allocate(10));
        Assert.Equal(blocks[1], arena.Allocate(10));
        Assert.Equal(blocks[0], arena.Allocate(10));
        arena.CheckInvariants();
    }

    [Fact]
    public void Among_hinted_blocks_allocation_takes_the_one_offered_last_which_the_kernel_takes_last()
    {
        using BuddyArena arena = Arena();
        nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(10))];
        arena.Free(blocks[0]);
        Assert.Equal(1, Hint(arena).Blocks);
        arena.Free(blocks[2]);
        Assert.Equal(1, Hint(arena).Blocks);
        Assert.Equal(blocks[2], arena.Allocate(10));
        Assert.Equal(blocks[0], arena.Allocate(10));
        arena.CheckInvariants();
    }

    [Fact]
    public void A_zeroed_allocation_clears_a_hinted_block_that_once_read_as_zero()
    {
        using BuddyArena arena = Arena();
        nint block = arena.Allocate(10);
        arena.Free(block);
        Assert.Equal(1, Report(arena).Blocks);
        unsafe
        {
            nint again = arena.AllocateZeroed(10);
            long skipped = arena.GetStatistics().ZeroSkippedBytes;
            Assert.Equal(4 * Arenas.MiB, skipped);
            new Span<byte>((void*)again, 4096).Fill(0xCD);
            arena.Free(again);
            Assert.Equal(1, Hint(arena).Blocks);
            nint hinted = arena.AllocateZeroed(10);
            Assert.Equal(again, hinted);
            Assert.Equal(skipped, arena.GetStatistics().ZeroSkippedBytes);
            Assert.Equal(-1, new Span<byte>((void*)hinted, 4096).IndexOfAnyExcept((byte)0));
            arena.Free(hinted);
        }
    }

    [Fact]
    public void A_hinted_half_merges_with_a_reported_half_into_a_hinted_block_and_with_a_fresh_half_into_a_fresh_one()
    {
        using BuddyArena arena = Arena(8);
        nint low = arena.Allocate(9), high = arena.Allocate(9);
        arena.Free(low);
        Assert.Equal(1, Report(arena).Blocks);
        arena.Free(high);
        Assert.Equal(1, Hint(arena, minOrder: 9).Blocks);
        // The two halves merged into one order-10 block: given back either way, so hinted, not reported.
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(4 * Arenas.MiB, stats.HintedBytes);
        Assert.Equal(0, stats.ReportedBytes);
        arena.CheckInvariants();

        nint a = arena.Allocate(9), b = arena.Allocate(9);
        arena.Free(a);
        Assert.Equal(1, Hint(arena, minOrder: 9).Blocks);
        arena.Free(b);
        stats = arena.GetStatistics();
        Assert.Equal(0, stats.HintedBytes);
        Assert.Equal(1, Hint(arena, minOrder: 9).Blocks);
        arena.CheckInvariants();
    }

    [Fact]
    public void The_report_tier_can_take_only_hinted_blocks_and_then_never_sees_them_again()
    {
        using BuddyArena arena = Arena();
        nint fresh = arena.Allocate(10), hinted = arena.Allocate(10);
        arena.Free(hinted);
        Assert.Equal(1, Hint(arena).Blocks);
        arena.Free(fresh);
        var device = new List<nint>();
        ReportedBatch batch = arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[8], blocks =>
        {
            foreach (FreeBlock b in blocks) device.Add(b.Address);
            return ReportOutcome.Reported;
        }, selection: FreeBlockSelection.Hinted);
        Assert.Equal(1, batch.Blocks);
        Assert.Equal([hinted], device);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(4 * Arenas.MiB, stats.ReportedBytes);
        Assert.Equal(0, stats.HintedBytes);
        Assert.Equal(0, Report(arena, FreeBlockSelection.Hinted).Blocks);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_failed_hint_puts_the_blocks_back_fresh()
    {
        using BuddyArena arena = Arena();
        nint block = arena.Allocate(10);
        arena.Free(block);
        ReportedBatch failed = arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[8], _ => ReportOutcome.Failed, selection: FreeBlockSelection.Fresh);
        Assert.Equal(ReportOutcome.Failed, failed.Outcome);
        Assert.Equal(0, arena.GetStatistics().HintedBytes);
        Assert.Equal(1, Hint(arena).Blocks);
        arena.CheckInvariants();
    }

    [Fact]
    public void The_reporter_hints_a_free_block_after_the_hint_delay_and_reports_it_one_delay_later()
    {
        var time = new FakeTimeProvider();
        using var meters = new TestMeterFactory();
        using BuddyArena arena = Arena(8, time, meters);
        using var hintedBytes = new MetricCollector<long>(meters, ArenaMetrics.MeterName, "buddy.hint.bytes");
        using var hintPasses = new MetricCollector<long>(meters, ArenaMetrics.MeterName, "buddy.hint.passes");
        var hints = new RecordingDevice();
        var reports = new RecordingDevice();
        using var reporter = new PageReporter(arena, reports, new PageReporterOptions { Delay = Delay, HintDelay = HintDelay, IdleTime = Timeout.InfiniteTimeSpan },
            hintDevice: hints);
        nint block = arena.Allocate(10);
        StartPastFirstPass(reporter, time, HintDelay);
        Assert.Empty(hints.Calls);

        arena.Free(block);
        Wait.Until(() => reporter.IsWaitingForDelay, "the free to ask for a hint pass");
        time.Advance(HintDelay - TimeSpan.FromTicks(1));
        Assert.Empty(hints.Calls);
        time.Advance(TimeSpan.FromTicks(1));
        Wait.Until(() => hints.Calls.Count == 1 && reporter.IsWaitingForWork, "the hint pass one hint delay after the free");
        Assert.Equal(block, hints.Calls[0][0].Address);
        Assert.Empty(reports.Calls);
        Assert.Equal(4 * Arenas.MiB, arena.GetStatistics().HintedBytes);
        Assert.Equal(4 * Arenas.MiB, reporter.GetStatistics().HintedBytes);
        hintedBytes.RecordObservableInstruments();
        hintPasses.RecordObservableInstruments();
        Assert.Equal(4 * Arenas.MiB, hintedBytes.LastMeasurement?.Value);
        Assert.Equal(reporter.GetStatistics().HintPasses, hintPasses.LastMeasurement?.Value);
        Assert.True(hintPasses.LastMeasurement?.Value >= 1);

        // Hinted memory that stays unused is handed back one report delay after the hint pass.
        time.Advance(Delay - TimeSpan.FromTicks(1));
        Assert.Empty(reports.Calls);
        time.Advance(TimeSpan.FromTicks(1));
        Wait.Until(() => reports.Calls.Count == 1, "the report pass one delay after the hint");
        Assert.Equal(block, reports.Calls[0][0].Address);
        Wait.Until(() => reporter.IsWaitingForWork, "the thread to park");
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.HintedBytes);
        Assert.Equal(4 * Arenas.MiB, stats.ReportedBytes);
        Assert.Single(hints.Calls);
    }

    [Fact]
    public void A_block_reused_before_the_report_delay_is_never_reported_and_fresh_memory_is_never_reported_by_time_alone()
    {
        var time = new FakeTimeProvider();
        using BuddyArena arena = Arena(8, time);
        var hints = new RecordingDevice();
        var reports = new RecordingDevice();
        using var reporter = new PageReporter(arena, reports, new PageReporterOptions { Delay = Delay, HintDelay = HintDelay, IdleTime = Timeout.InfiniteTimeSpan },
            hintDevice: hints);
        nint block = arena.Allocate(10), other = arena.Allocate(10);
        StartPastFirstPass(reporter, time, HintDelay);
        arena.Free(block);
        Wait.Until(() => reporter.IsWaitingForDelay, "the free to ask for a hint pass");
        time.Advance(HintDelay);
        Wait.Until(() => hints.Calls.Count == 1 && reporter.IsWaitingForWork, "the hint pass");
        // Reused: the hinted block comes back, costs nothing, and nothing is left to report.
        Assert.Equal(block, arena.Allocate(10));
        time.Advance(Delay);
        Wait.Until(() => reporter.IsWaitingForWork && reporter.Wakeups >= 3, "the report pass to find nothing hinted");
        Assert.Empty(reports.Calls);
        Assert.Equal(0, arena.GetStatistics().ReportedBytes);
        _ = other;
    }

    [Fact]
    public void Pressure_reports_fresh_and_hinted_memory_at_once()
    {
        var time = new FakeTimeProvider();
        using BuddyArena arena = Arena(8, time);
        var reports = new RecordingDevice();
        using var reporter = new PageReporter(arena, reports, new PageReporterOptions
        {
            Delay = Delay, HintDelay = HintDelay, IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
        }, hintDevice: new RecordingDevice());
        nint a = arena.Allocate(10), b = arena.Allocate(10);
        arena.Free(a);
        Assert.Equal(1, Hint(arena).Blocks);
        arena.Free(b);
        reporter.Start();
        reporter.SignalPressure();
        Wait.Until(() => arena.GetStatistics().ReportedBytes == 8 * Arenas.MiB, "the pressure pass to report both blocks");
        Assert.Equal(0, arena.GetStatistics().HintedBytes);
    }

    /// <summary>Starts the reporter and lets its first hint pass, which finds nothing, run and park.</summary>
    internal static void StartPastFirstPass(PageReporter reporter, FakeTimeProvider time, TimeSpan hintDelay)
    {
        reporter.Start();
        Wait.Until(() => reporter.IsWaitingForDelay, "the start to wait out the hint delay");
        time.Advance(hintDelay);
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForWork, "the first hint pass");
    }

    [Fact]
    public void A_bad_hint_delay_is_refused_by_name()
    {
        using BuddyArena arena = Arena();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() =>
            new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { HintDelay = TimeSpan.FromSeconds(-2) }));
        Assert.Equal("HintDelay", e.ParamName);
        Assert.False(new PageReporterOptions().Hints);
        using var off = new PageReporter(arena, new RecordingDevice());
        Assert.Null(off.HintDevice);
    }
}

/// <summary>Fragments under the hint tier: offered within a hint delay, handed back one report delay later.</summary>
public class HintedFragmentTests
{
    [Fact]
    public void A_fragment_is_hinted_after_the_hint_delay_and_reported_one_delay_later_without_an_idle_stretch()
    {
        var time = new FakeTimeProvider();
        using var arena = new BuddyArena(new ArenaOptions { Size = 4 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false }, timeProvider: time);
        var hints = new RecordingDevice();
        var reports = new RecordingDevice();
        TimeSpan hintDelay = TimeSpan.FromSeconds(1), delay = TimeSpan.FromSeconds(10);
        using var reporter = new PageReporter(arena, reports,
            new PageReporterOptions { Delay = delay, HintDelay = hintDelay, IdleTime = Timeout.InfiniteTimeSpan }, hintDevice: hints);
        // The whole arena in 64 KiB blocks; the one freed stays a fragment, its buddy live.
        nint[] blocks = [.. Enumerable.Range(0, 64).Select(_ => arena.Allocate(4))];
        nint fragment = blocks[0];
        HintTierTests.StartPastFirstPass(reporter, time, hintDelay);
        arena.Free(fragment);
        Wait.Until(() => reporter.IsWaitingForDelay, "the fragment's free to ask for a hint pass");
        time.Advance(hintDelay);
        Wait.Until(() => hints.Calls.Count == 1 && reporter.IsWaitingForWork, "the hint pass");
        Assert.Equal([new FreeBlock(fragment, 64 << 10)], hints.Calls[0]);
        time.Advance(delay);
        // The device sees the blocks before the arena puts them back reported: wait for the put-back.
        Wait.Until(() => arena.GetStatistics().ReportedBytes == 64 << 10, "the report pass one delay after the hint");
        Assert.Equal([new FreeBlock(fragment, 64 << 10)], Assert.Single(reports.Calls));
        foreach (nint block in blocks[1..]) arena.Free(block);
    }
}
