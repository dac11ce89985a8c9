using Buddy.Reporting.FaultInjection;
using Buddy.Reporting;
using Buddy.Reporting.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

public class ReporterTests
{
    private static readonly PageReporterOptions Manual = new() { Delay = TimeSpan.FromHours(1) };
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(2);

    /// <summary>An arena of 8 MiB with two free 2 MiB blocks and the rest allocated.</summary>
    /// <summary>Without thread caches, so each free lands on the zone's lists where these tests look.</summary>
    private static (BuddyArena Arena, nint A, nint B, List<nint> Held) TwoFreePageblocks()
    {
        var arena = Arenas.Small(size: 8 * Arenas.MiB, threadCaches: false);
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
        long midReport = -1;
        Assert.Equal(2, arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[2], _ =>
        {
            midReport = arena.UnreportedFreeBytes(9);
            return ReportOutcome.Reported;
        }).Blocks);
        Assert.Equal(4 * Arenas.MiB, midReport);
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
        using var arena = Arenas.Small(size: 8 * Arenas.MiB, threadCaches: false);
        nint pin = arena.Allocate(10);
        nint low = arena.Allocate(9);
        nint high = arena.Allocate(9);
        arena.Free(low);
        // Report low; while it is isolated, free high (it cannot merge) and report it too.
        arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[1], _ =>
        {
            arena.Free(high);
            Assert.Equal(1, arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[1], _ => ReportOutcome.ReportedZeroed).Blocks);
            Assert.Equal(1, arena.GetStatistics().FreeBlocks(9));
            Assert.Equal(512, arena.GetStatistics().ReportingPages);
            return ReportOutcome.ReportedZeroed;
        });

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
    public void Statistics_count_passes_calls_bytes_device_time_and_pass_time()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        var time = new FakeTimeProvider();
        var steps = new Queue<TimeSpan>([TimeSpan.FromMilliseconds(20), TimeSpan.FromMilliseconds(50)]);
        using var reporter = new PageReporter(arena, new ClockDevice(time, steps), Manual with { Capacity = 1 }, time);
        reporter.ReportNow();
        reporter.ReportNow();
        ReporterStatistics stats = reporter.GetStatistics();
        Assert.Equal(2, stats.Passes);
        Assert.Equal(2, stats.DeviceCalls);
        Assert.Equal(2, stats.ReportedBlocks);
        Assert.Equal(4 * Arenas.MiB, stats.ReportedBytes);
        Assert.Equal(TimeSpan.FromMilliseconds(70), stats.DeviceTime);
        Assert.Equal(TimeSpan.FromMilliseconds(50), stats.LongestDeviceCall);
        // Only the device moved the clock: the passes took exactly its time.
        Assert.Equal(TimeSpan.FromMilliseconds(70), stats.PassTime);
        Assert.Null(stats.LastError);
    }

    [Fact]
    public void The_thread_reports_one_delay_after_the_free_and_never_rescans()
    {
        var time = new FakeTimeProvider();
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1 }, timeProvider: time);
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = Delay });
        reporter.Start();
        // Start asks for a pass one delay later; with nothing free it reports nothing.
        AdvanceThroughDelay(reporter, time);
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForWork, "the first pass to find nothing");

        nint block = arena.Allocate(10);
        arena.Free(block);
        Wait.Until(() => reporter.IsWaitingForDelay, "the free to wake the reporter");
        long rounds = reporter.Rounds;
        time.Advance(Delay - TimeSpan.FromTicks(1));
        // Past half the delay the thread advances the round and waits again: wait for it to be back in that wait.
        Wait.Until(() => reporter.Rounds == rounds + 1 && reporter.IsWaitingForDelay, "the second half of the delay");
        Assert.Empty(device.Calls);
        time.Advance(TimeSpan.FromTicks(1));
        Wait.Until(() => device.Calls.Count == 1, "the pass one delay after the free");
        Assert.Equal(block, device.Calls[0][0].Address);

        // Parked: however long nothing is freed, nothing is scanned again. The thread looks at the
        // thread caches every delay, finds nothing in them and parks again.
        Wait.Until(() => reporter.IsWaitingForWork, "the thread to park");
        long looks = reporter.Looks;
        time.Advance(TimeSpan.FromHours(1));
        Wait.Until(() => reporter.Looks > looks && reporter.IsWaitingForWork, "the thread to look and park again");
        Assert.Equal(2, reporter.Wakeups);
        Assert.Single(device.Calls);
    }

    /// <summary>Four 2 MiB blocks, all allocated, and a started reporter past its first (empty) pass.</summary>
    private static (BuddyArena Arena, nint[] Blocks, RecordingDevice Device, PageReporter Reporter) ParkedWithFourBlocks(FakeTimeProvider time)
    {
        // No thread caches: every free reaches the zone and asks for a pass.
        var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false }, timeProvider: time);
        nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(9))];
        var device = new RecordingDevice();
        var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = Delay, IdleTime = Timeout.InfiniteTimeSpan });
        reporter.Start();
        AdvanceThroughDelay(reporter, time);
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForWork, "the first pass to find nothing");
        return (arena, blocks, device, reporter);
    }

    /// <summary>Waits for the delay a free started, moves the clock halfway and waits for the new round.</summary>
    private static void PastHalfTheDelay(PageReporter reporter, FakeTimeProvider time)
    {
        Wait.Until(() => reporter.IsWaitingForDelay, "the free to start the delay");
        long rounds = reporter.Rounds;
        time.Advance(Delay / 2);
        Wait.Until(() => reporter.Rounds == rounds + 1 && reporter.IsWaitingForDelay, "the round halfway through the delay");
    }

    [Fact]
    public void The_frees_of_one_burst_all_make_the_pass_after_its_delay()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, nint[] blocks, RecordingDevice device, PageReporter reporter) = ParkedWithFourBlocks(time);
        using (arena)
        using (reporter)
        {
            arena.Free(blocks[0]);
            Wait.Until(() => reporter.IsWaitingForDelay, "the free to start the delay");
            arena.Free(blocks[2]);
            time.Advance(Delay);
            Wait.Until(() => device.Calls.Count == 1 && reporter.IsWaitingForWork, "the pass, with nothing left for another");
            Assert.Equal(new[] { blocks[0], blocks[2] }, device.Calls[0].Select(b => b.Address).Order());
        }
    }

    [Fact]
    public void A_block_freed_in_the_second_half_of_the_delay_waits_for_the_next_delay()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, nint[] blocks, RecordingDevice device, PageReporter reporter) = ParkedWithFourBlocks(time);
        using (arena)
        using (reporter)
        {
            // Blocks 0 and 2: their buddies stay allocated, so neither merges. Block 2 is freed after
            // the round that starts halfway through the delay.
            arena.Free(blocks[0]);
            PastHalfTheDelay(reporter, time);
            arena.Free(blocks[2]);
            time.Advance(Delay / 2);
            Wait.Until(() => device.Calls.Count == 1 && reporter.IsWaitingForDelay, "the pass, and the delay after it for the younger block");
            Assert.Equal(new[] { blocks[0] }, device.Calls[0].Select(b => b.Address));

            time.Advance(Delay);
            Wait.Until(() => device.Calls.Count == 2, "the younger block's pass");
            Assert.Equal(new[] { blocks[2] }, device.Calls[1].Select(b => b.Address));
            Wait.Until(() => reporter.IsWaitingForWork, "the thread to park with nothing young left");
        }
    }

    [Fact]
    public void A_block_reused_and_freed_again_late_in_the_delay_is_not_reported_at_its_end()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, nint[] blocks, RecordingDevice device, PageReporter reporter) = ParkedWithFourBlocks(time);
        using (arena)
        using (reporter)
        {
            arena.Free(blocks[0]);
            PastHalfTheDelay(reporter, time);
            // The next burst takes the block back and frees it before the delay ends: it stays resident.
            Assert.Equal(blocks[0], arena.Allocate(9));
            arena.Free(blocks[0]);
            time.Advance(Delay / 2);
            Wait.Until(() => reporter.Wakeups == 2 && reporter.IsWaitingForDelay, "the pass, and the delay after it for the younger block");
            Assert.Empty(device.Calls);

            // Left free for a whole delay, it goes.
            time.Advance(Delay);
            Wait.Until(() => device.Calls.Count == 1, "the block's pass once it stayed free");
            Assert.Equal(new[] { blocks[0] }, device.Calls[0].Select(b => b.Address));
        }
    }

    [Fact]
    public void The_threshold_holds_a_pass_back_until_enough_is_free()
    {
        var time = new FakeTimeProvider();
        using var arena = new BuddyArena(new ArenaOptions { Size = 16 * Arenas.MiB, ZoneCount = 1 }, timeProvider: time);
        var held = Enumerable.Range(0, 4).Select(_ => arena.Allocate(10)).ToList();
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = Delay, ThresholdBytes = 8 * Arenas.MiB });
        arena.Free(held[0]);
        reporter.Start();
        AdvanceThroughDelay(reporter, time);
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForWork, "the pass the threshold turns away");
        Assert.Empty(device.Calls);

        arena.Free(held[1]);
        AdvanceThroughDelay(reporter, time);
        Wait.Until(() => device.Calls.Count == 1, "the pass once the threshold is crossed");
        Assert.Equal(2, device.Calls[0].Length);
    }

    [Fact]
    public void Stop_during_the_delay_ends_the_thread_without_a_pass()
    {
        var time = new FakeTimeProvider();
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = Delay }, time);
        reporter.Start();
        Wait.Until(() => reporter.IsWaitingForDelay, "the delay to begin");
        reporter.Stop();
        Assert.False(reporter.IsRunning);
        Assert.Equal(0, reporter.Wakeups);
        Assert.Empty(device.Calls);
    }

    [Fact]
    public void Start_stop_and_dispose_are_safe_mid_report_and_stop_returns_every_isolated_block()
    {
        var (arena, _, _, _) = TwoFreePageblocks();
        using var _a = arena;
        using var gated = new GatedDevice();
        var reporter = new PageReporter(arena, gated, new PageReporterOptions { Delay = TimeSpan.Zero, Capacity = 1 });
        reporter.Start();
        reporter.Start();
        gated.WaitUntilEntered();
        Assert.Equal(512, arena.GetStatistics().ReportingPages);
        var stop = Background.Run(reporter.Stop);
        gated.Open();
        stop.Join();
        Assert.False(reporter.IsRunning);
        Assert.Equal(0, arena.GetStatistics().ReportingPages);
        arena.CheckInvariants();
        reporter.Dispose();
        reporter.Dispose();
        Assert.Throws<ObjectDisposedException>(() => reporter.ReportNow());
        Assert.Throws<ObjectDisposedException>(() => reporter.Start());
        arena.CheckInvariants();
    }

    [Fact]
    public unsafe void Disposing_the_arena_waits_for_the_scatterlist_in_hand()
    {
        // Reserved memory is unmapped at dispose: the device's write after the gate would fault if dispose did not wait.
        var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1, Backing = ArenaBacking.Reserve });
        nint pin = arena.Allocate(10);
        arena.Free(arena.Allocate(10));
        using var device = new TouchingGatedDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.Zero });
        reporter.Start();
        device.WaitUntilEntered();
        var dispose = Background.Run(arena.Dispose);
        device.Open();
        dispose.Join();
        Assert.True(arena.IsDisposed);
        Assert.Equal(1, device.Touched);
        reporter.Stop();
        Assert.Equal(0, reporter.LiveThreads);
        GC.KeepAlive(pin);
    }

    private sealed unsafe class TouchingGatedDevice : IReportingDevice, IDisposable
    {
        private readonly GatedDevice gate = new();

        public int Touched;

        public string Name => "touching";

        public bool ZeroesMemory => false;

        public void WaitUntilEntered() => gate.WaitUntilEntered();

        public void Open() => gate.Open();

        public bool Report(ReadOnlySpan<FreeBlock> ranges)
        {
            gate.Report(ranges);
            foreach (FreeBlock range in ranges) *(byte*)range.Address = 1;
            Touched += ranges.Length;
            return true;
        }

        public void Dispose() => gate.Dispose();
    }

    /// <summary>Waits until the thread is in its delay, then moves the fake clock past it.</summary>
    private static void AdvanceThroughDelay(PageReporter reporter, FakeTimeProvider time)
    {
        Wait.Until(() => reporter.IsWaitingForDelay, "the reporter to wait out its delay");
        time.Advance(reporter.Options.Delay);
    }

    /// <summary>A device whose calls take the next of <paramref name="steps"/> on the fake clock.</summary>
    private sealed class ClockDevice(FakeTimeProvider time, Queue<TimeSpan> steps) : IReportingDevice
    {
        public string Name => "clock";

        public bool ZeroesMemory => false;

        public bool Report(ReadOnlySpan<FreeBlock> ranges)
        {
            time.Advance(steps.Dequeue());
            return true;
        }
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
}
