using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

public class ReporterTests
{
    private static readonly PageReporterOptions Manual = new() { Delay = TimeSpan.FromHours(1) };

    /// <summary>An arena of 8 MiB with two free 2 MiB blocks and the rest allocated.</summary>
    private static (BuddyArena Arena, nint A, nint B, List<nint> Held) TwoFreePageblocks()
    {
        var arena = Arenas.Small(size: 8 * Arenas.MiB);
        var held = Enumerable.Range(0, 4).Select(_ => arena.Allocate(9)).ToList();
        nint a = held[0], b = held[2];
        arena.Free(a);
        arena.Free(b);
        held.Remove(a);
        held.Remove(b);
        return (arena, a, b, held);
    }

    [Theory]
    [InlineData(ReportingMode.Isolate)]
    [InlineData(ReportingMode.InPlace)]
    public void A_pass_reports_each_free_high_order_block_once_as_one_scatterlist(ReportingMode mode)
    {
        var (arena, a, b, _) = TwoFreePageblocks();
        using var _a = arena;
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, Manual with { Mode = mode });

        ReportingPassResult first = reporter.ReportNow();
        Assert.Equal(2, first.ReportedBlocks);
        Assert.Equal(4 * Arenas.MiB, first.ReportedBytes);
        Assert.Single(device.Calls);
        Assert.Equal([a, b], device.Calls[0].Select(r => r.Address).Order());
        Assert.Equal(2, arena.GetStatistics().ReportedBlocks(9));
        arena.CheckInvariants();

        // Reported blocks are never scanned again: no new frees, no device call.
        ReportingPassResult second = reporter.ReportNow();
        Assert.Equal(0, second.DeviceCalls);
        Assert.Single(device.Calls);
    }

    [Fact]
    public void Blocks_mid_report_still_count_as_unreported()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        Assert.Equal(4 * Arenas.MiB, arena.UnreportedFreeBytes(9));
        var batch = new FreeBlock[2];
        Assert.Equal(2, arena.BeginReport(0, 9, ReportingMode.Isolate, batch));
        Assert.Equal(4 * Arenas.MiB, arena.UnreportedFreeBytes(9));
        arena.EndReport(0, batch, reported: true, zeroed: false);
        Assert.Equal(0, arena.UnreportedFreeBytes(9));
    }

    [Fact]
    public void Blocks_below_the_report_order_are_left_alone()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        var held = Enumerable.Range(0, 4).Select(_ => arena.Allocate(8)).ToList();
        arena.Free(held[0]);
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, Manual);
        Assert.Equal(0, reporter.ReportNow().DeviceCalls);
    }

    [Fact]
    public void Capacity_splits_a_pass_into_scatterlists()
    {
        using var arena = Arenas.Small(size: 64 * Arenas.MiB);
        var held = Enumerable.Range(0, 32).Select(_ => arena.Allocate(9)).ToList();
        held.Where((_, i) => i % 2 == 0).ToList().ForEach(arena.Free);
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, Manual with { Capacity = 5 });
        ReportingPassResult pass = reporter.ReportNow();
        Assert.Equal(16, pass.ReportedBlocks);
        Assert.Equal([5, 5, 5, 1], device.Calls.Select(c => c.Length));
    }

    [Fact]
    public void Budget_stops_a_pass_and_the_next_one_goes_on()
    {
        using var arena = Arenas.Small(size: 64 * Arenas.MiB);
        var held = Enumerable.Range(0, 32).Select(_ => arena.Allocate(9)).ToList();
        held.Where((_, i) => i % 2 == 0).ToList().ForEach(arena.Free);
        using var reporter = new PageReporter(arena, new RecordingDevice(), Manual with { Capacity = 4, BudgetBytesPerPass = 16 * Arenas.MiB });
        ReportingPassResult first = reporter.ReportNow();
        Assert.True(first.BudgetExhausted);
        Assert.Equal(8, first.ReportedBlocks);
        Assert.Equal(8, reporter.ReportNow().ReportedBlocks);
        Assert.Equal(0, reporter.ReportNow().ReportedBlocks);
    }

    [Fact]
    public void Merging_a_reported_block_with_an_unreported_buddy_forgets_the_report()
    {
        var (arena, a, b, held) = TwoFreePageblocks();
        using var _a = arena;
        using var reporter = new PageReporter(arena, new RecordingDevice(), Manual);
        reporter.ReportNow();
        arena.Free(held[0]); // buddy of a: a + 2 MiB
        var stats = arena.GetStatistics();
        Assert.Equal(1, stats.FreeBlocks(10));
        Assert.Equal(0, stats.ReportedBlocks(10));
        Assert.Equal(1, stats.ReportedBlocks(9));
        arena.CheckInvariants();
    }

    [Fact]
    public void Merging_two_reported_buddies_keeps_the_report_and_allocation_clears_it()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        nint pin = arena.Allocate(10);
        nint low = arena.Allocate(9);
        nint high = arena.Allocate(9);
        arena.Free(low);
        var first = new FreeBlock[1];
        var second = new FreeBlock[1];
        Assert.Equal(1, arena.BeginReport(0, 9, ReportingMode.Isolate, first));
        arena.Free(high); // cannot merge with low, which is isolated
        Assert.Equal(1, arena.BeginReport(0, 9, ReportingMode.Isolate, second));
        arena.EndReport(0, second, reported: true, zeroed: true);
        Assert.Equal(1, arena.GetStatistics().FreeBlocks(9));
        Assert.Equal(512, arena.GetStatistics().ReportingPages);
        arena.EndReport(0, first, reported: true, zeroed: true);

        var stats = arena.GetStatistics();
        Assert.Equal(1, stats.ReportedBlocks(10));
        Assert.Equal(0, stats.FreeBlocks(9));
        arena.CheckInvariants();

        nint again = arena.AllocateZeroed(10);
        Assert.Equal(low, again);
        Assert.Equal(0, arena.GetStatistics().ReportedPages);
        Assert.Equal(4 * Arenas.MiB, arena.GetStatistics().ZeroSkippedBytes);
        arena.Free(again);
        arena.Free(pin);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_failing_device_loses_nothing_and_the_next_pass_reports_the_blocks()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        var device = new FailingDevice(failEvery: 2, throwOnFailure: true);
        using var reporter = new PageReporter(arena, device, Manual with { Capacity = 1 });
        ArenaStatistics before = arena.GetStatistics();

        ReportingPassResult first = reporter.ReportNow();
        Assert.Equal(1, first.FailedReports);
        Assert.Equal(1, first.ReportedBlocks);
        arena.CheckInvariants();
        Assert.Equal(before.FreePages, arena.GetStatistics().FreePages);
        Assert.Equal(1, arena.GetStatistics().ReportedBlocks(9));
        Assert.Contains("IOException", reporter.GetStatistics().LastError);

        ReportingPassResult second = reporter.ReportNow();
        Assert.Equal(1, second.ReportedBlocks);
        Assert.Equal(2, arena.GetStatistics().ReportedBlocks(9));
        Assert.Equal(1, reporter.GetStatistics().FailedReports);
        arena.CheckInvariants();
    }

    [Fact]
    public void Statistics_count_passes_calls_bytes_and_device_time()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        using var reporter = new PageReporter(arena, new SlowDevice(TimeSpan.FromMilliseconds(20)), Manual with { Capacity = 1 });
        reporter.ReportNow();
        reporter.ReportNow();
        ReporterStatistics stats = reporter.GetStatistics();
        Assert.Equal(2, stats.Passes);
        Assert.Equal(2, stats.DeviceCalls);
        Assert.Equal(2, stats.ReportedBlocks);
        Assert.Equal(4 * Arenas.MiB, stats.ReportedBytes);
        Assert.True(stats.DeviceTime >= TimeSpan.FromMilliseconds(30), stats.DeviceTime.ToString());
        Assert.True(stats.LongestDeviceCall <= stats.DeviceTime);
        Assert.Null(stats.LastError);
    }

    [Fact]
    public void The_thread_reports_after_the_delay_with_no_further_allocator_calls()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromMilliseconds(100) });
        reporter.Start();
        nint block = arena.Allocate(10);
        arena.Free(block);
        Wait.Until(() => device.Calls.Count == 1, "the reporter thread to report the freed block");
        Assert.Equal(block, device.Calls[0][0].Address);
        Thread.Sleep(300);
        Assert.Single(device.Calls);
    }

    [Fact]
    public void The_threshold_holds_a_pass_back_until_enough_is_free()
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB);
        var held = Enumerable.Range(0, 4).Select(_ => arena.Allocate(10)).ToList();
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device,
            new PageReporterOptions { Delay = TimeSpan.FromMilliseconds(20), ThresholdBytes = 8 * Arenas.MiB });
        reporter.Start();
        arena.Free(held[0]);
        Thread.Sleep(300);
        Assert.Empty(device.Calls);
        arena.Free(held[1]);
        Wait.Until(() => device.Calls.Count == 1, "the pass once the threshold is crossed");
        Assert.Equal(2, device.Calls[0].Length);
    }

    [Fact]
    public void Start_stop_and_dispose_are_safe_mid_report_and_stop_returns_every_isolated_block()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        var slow = new SlowDevice(TimeSpan.FromMilliseconds(200));
        var reporter = new PageReporter(arena, slow, new PageReporterOptions { Delay = TimeSpan.Zero, Capacity = 1 });
        reporter.Start();
        reporter.Start();
        Wait.Until(() => slow.InFlight == 1, "a report to be in flight");
        Assert.True(arena.GetStatistics().ReportingPages > 0);
        reporter.Stop();
        Assert.False(reporter.IsRunning);
        Assert.Equal(0, arena.GetStatistics().ReportingPages);
        arena.CheckInvariants();
        reporter.Start();
        Wait.Until(() => slow.InFlight == 1, "a report to be in flight again");
        reporter.Dispose();
        reporter.Dispose();
        Assert.Equal(0, arena.GetStatistics().ReportingPages);
        Assert.Throws<ObjectDisposedException>(() => reporter.ReportNow());
        arena.CheckInvariants();
    }

    [Fact]
    public void Disposing_the_arena_waits_for_the_scatterlist_in_hand()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        var slow = new SlowDevice(TimeSpan.FromMilliseconds(300));
        using var reporter = new PageReporter(arena, slow, new PageReporterOptions { Delay = TimeSpan.Zero });
        reporter.Start();
        Wait.Until(() => slow.InFlight == 1, "a report to be in flight");
        arena.Dispose();
        Assert.Equal(0, slow.InFlight);
        reporter.Stop();
    }

    [Fact]
    public void One_reporter_per_arena()
    {
        using var arena = Arenas.Small();
        using var first = new PageReporter(arena, new RecordingDevice());
        Assert.Throws<InvalidOperationException>(() => new PageReporter(arena, new RecordingDevice()));
        first.Dispose();
        using var second = new PageReporter(arena, new RecordingDevice());
    }

    public static TheoryData<PageReporterOptions, string> InvalidOptions => new()
    {
        { new PageReporterOptions { ReportOrder = 11 }, nameof(PageReporterOptions.ReportOrder) },
        { new PageReporterOptions { ReportOrder = -1 }, nameof(PageReporterOptions.ReportOrder) },
        { new PageReporterOptions { Capacity = 0 }, nameof(PageReporterOptions.Capacity) },
        { new PageReporterOptions { Capacity = 1025 }, nameof(PageReporterOptions.Capacity) },
        { new PageReporterOptions { Delay = TimeSpan.FromSeconds(-1) }, nameof(PageReporterOptions.Delay) },
        { new PageReporterOptions { ThresholdBytes = -1 }, nameof(PageReporterOptions.ThresholdBytes) },
        { new PageReporterOptions { BudgetBytesPerPass = 0 }, nameof(PageReporterOptions.BudgetBytesPerPass) },
        { new PageReporterOptions { Mode = (ReportingMode)5 }, nameof(PageReporterOptions.Mode) },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Invalid_reporter_option_is_rejected_by_name(PageReporterOptions options, string option)
    {
        using var arena = Arenas.Small();
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new PageReporter(arena, new RecordingDevice(), options));
        Assert.Equal(option, e.ParamName);
        using var reporter = new PageReporter(arena, new RecordingDevice());
    }

    [Fact]
    public void EndReport_refuses_blocks_that_are_not_mid_report_and_changes_nothing()
    {
        var (arena, a, b, held) = TwoFreePageblocks();
        using var _a = arena;
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.BeginReport(3, 9, ReportingMode.Isolate, new FreeBlock[4]), "Zone must be between 0 and 0");
        Arenas.AssertRejected<InvalidOperationException>(arena, () => arena.EndReport(0, [new FreeBlock(a, 2 * Arenas.MiB)], true, false), "No report batch is in hand");

        var batch = new FreeBlock[1];
        Assert.Equal(1, arena.BeginReport(0, 9, ReportingMode.Isolate, batch));
        nint other = batch[0].Address == a ? b : a;
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, [new FreeBlock(other, 2 * Arenas.MiB)], true, true), "not a block of zone 0 that is mid-report");
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, [new FreeBlock(held[0], 2 * Arenas.MiB)], false, false), "mid-report");
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, batch, false, true), "Only reported blocks");
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, [batch[0], batch[0]], true, false), "listed twice");
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, [batch[0] with { Length = 4096 }], true, false), "mid-report");
        arena.EndReport(0, batch, reported: true, zeroed: false);
        arena.CheckInvariants();
        Arenas.AssertRejected<InvalidOperationException>(arena, () => arena.EndReport(0, batch, true, false), "No report batch is in hand");
    }
}
