using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>The page-flag spin: waiting for a block that is mid-report instead of failing.</summary>
public class PageFlagSpinTests
{
    private static readonly TimeSpan SlowReport = TimeSpan.FromMilliseconds(400);

    /// <summary>Starts a pass on another thread and returns once the slow device holds a scatterlist.</summary>
    private static Task StartSlowPass(PageReporter reporter, SlowDevice device)
    {
        Task pass = reporter.ReportNowAsync(TestContext.Current.CancellationToken);
        Wait.Until(() => device.InFlight == 1, "the slow report to start");
        return pass;
    }

    [Theory]
    [InlineData(ReportingMode.Isolate)]
    [InlineData(ReportingMode.InPlace)]
    public async Task An_allocation_that_only_mid_report_memory_can_serve_waits_for_it(ReportingMode mode)
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        nint whole = arena.Allocate(10);
        arena.Free(whole);
        var device = new SlowDevice(SlowReport);
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1), Mode = mode });
        Task pass = StartSlowPass(reporter, device);

        nint block = arena.Allocate(10);
        Assert.Equal(whole, block);
        Assert.Equal(0, device.InFlight);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(1, stats.SpinWaits);
        Assert.True(stats.LongestSpin > TimeSpan.Zero);
        Assert.Equal(0, stats.FailedAllocations);
        await pass;
        arena.Free(block);
        arena.CheckInvariants();
    }

    [Fact]
    public async Task In_isolate_mode_an_allocation_with_other_free_memory_never_waits()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        nint first = arena.Allocate(10);
        nint second = arena.Allocate(10);
        arena.Free(first);
        var device = new SlowDevice(SlowReport);
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        Task pass = StartSlowPass(reporter, device);
        arena.Free(second);

        // Memory freed after the pass took its batch serves these at once.
        nint small = arena.Allocate(0);
        nint large = arena.Allocate(9);
        Assert.Equal(1, device.InFlight);
        Assert.Equal(0, arena.GetStatistics().SpinWaits);
        Assert.InRange(small, second, second + (4 << 20) - 1);
        await pass;
        arena.Free(small);
        arena.Free(large);
        arena.CheckInvariants();
    }

    [Fact]
    public async Task A_device_that_never_answers_ends_the_wait_with_a_clear_error()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 4 * Arenas.MiB, ZoneCount = 1, ReportWaitTimeout = TimeSpan.FromMilliseconds(100) });
        arena.Free(arena.Allocate(10));
        var device = new SlowDevice(TimeSpan.FromSeconds(2));
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        Task pass = StartSlowPass(reporter, device);
        var e = Assert.Throws<TimeoutException>(() => arena.Allocate(0));
        Assert.Contains("come back from a report", e.Message);
        await pass;
        arena.CheckInvariants();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
    }

    [Fact]
    public void Exhaustion_without_memory_mid_report_still_fails_at_once()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        nint all = arena.Allocate(10);
        using var reporter = new PageReporter(arena, new SlowDevice(SlowReport), new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        Assert.False(arena.TryAllocate(0, out _));
        Assert.Equal(0, arena.GetStatistics().SpinWaits);
        arena.Free(all);
    }
}
