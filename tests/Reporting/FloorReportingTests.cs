using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>
/// Fragments below the report order: reported down to the floor order once the arena has been idle
/// for the idle time, or at once under memory pressure; never rescanned, and known zero afterwards.
/// </summary>
public sealed class FloorReportingTests
{
    private static readonly TimeSpan Delay = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan IdleTime = TimeSpan.FromSeconds(10);
    private const int FragmentOrder = 4; // 64 KiB

    /// <summary>A 4 MiB arena of 64 KiB blocks with every other one free: 32 fragments no buddy can merge.</summary>
    private static (BuddyArena Arena, List<nint> Live, List<nint> Fragments) Fragmented(TimeProvider time)
    {
        var arena = new BuddyArena(new ArenaOptions { Size = 4 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false }, timeProvider: time);
        var blocks = Enumerable.Range(0, 64).Select(_ => arena.Allocate(FragmentOrder)).ToList();
        var fragments = blocks.Where((_, i) => i % 2 == 1).ToList();
        fragments.ForEach(arena.Free);
        return (arena, blocks.Where((_, i) => i % 2 == 0).ToList(), fragments);
    }

    private static PageReporter Started(BuddyArena arena, IReportingDevice device, FakeTimeProvider time, PageReporterOptions? options = null)
    {
        options ??= new PageReporterOptions { Delay = Delay, IdleTime = IdleTime, PressureSources = PressureSources.None };
        var reporter = new PageReporter(arena, device, options);
        reporter.Start();
        // Start asks for a pass one delay later; with nothing of report order free it reports nothing.
        Wait.Until(() => reporter.IsWaitingForDelay, "the first delay");
        time.Advance(options.Delay);
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForWork, "the first pass");
        return reporter;
    }

    /// <summary>Moves the clock one delay and waits until the parked thread has looked and parked again.</summary>
    private static void OneLook(PageReporter reporter, FakeTimeProvider time)
    {
        long looks = reporter.Looks;
        time.Advance(Delay);
        Wait.Until(() => reporter.Looks > looks && reporter.IsWaitingForWork, "the reporter to look and park");
    }

    [Fact]
    public void Fragments_are_reported_once_the_arena_has_been_idle_for_the_idle_time_and_not_before()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, _, List<nint> fragments) = Fragmented(time);
        using (arena)
        {
            var device = new RecordingDevice();
            using PageReporter reporter = Started(arena, device, time);
            Assert.Equal(FragmentOrder, reporter.FloorOrder);

            // The first look notes the arena's activity; ten more, a delay apart, see it idle for less than the idle time.
            for (int look = 0; look < 10; look++)
            {
                OneLook(reporter, time);
                Assert.Empty(device.Calls);
            }

            time.Advance(Delay);
            Wait.Until(() => arena.GetStatistics().ReportedPages == fragments.Count * 16L, "the idle pass to report every fragment");
            Assert.Equal(fragments.Order(), device.Calls.SelectMany(c => c).Select(b => b.Address).Order());
            Assert.All(device.Calls.SelectMany(c => c), b => Assert.Equal(64 << 10, b.Length));
            Assert.Equal(1, reporter.GetStatistics().IdlePasses);
            arena.CheckInvariants();
        }
    }

    [Fact]
    public void Reported_fragments_are_never_rescanned_and_a_new_idle_stretch_reports_only_new_ones()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, List<nint> live, List<nint> fragments) = Fragmented(time);
        using (arena)
        {
            var device = new RecordingDevice();
            using PageReporter reporter = Started(arena, device, time);
            for (int look = 0; look < 10; look++) OneLook(reporter, time);
            time.Advance(Delay);
            Wait.Until(() => arena.GetStatistics().ReportedPages == fragments.Count * 16L, "the first idle pass");
            int calls = device.Calls.Count;

            // Still idle: an idle stretch gets one pass, however long it lasts.
            for (int look = 0; look < 30; look++) OneLook(reporter, time);
            Assert.Equal(calls, device.Calls.Count);

            // New activity, then idle again: the next idle pass reports the one new fragment, not the old ones.
            arena.Free(live[0]);
            for (int look = 0; look < 12; look++) OneLook(reporter, time);
            Wait.Until(() => device.Calls.Count > calls, "the second idle pass");
            FreeBlock[] second = device.Calls.Skip(calls).SelectMany(c => c).ToArray();
            FreeBlock merged = Assert.Single(second);
            // live[0] merged with its free buddy (a reported fragment): the merged block is unreported and goes again.
            Assert.Equal(live[0], merged.Address);
            Assert.Equal(2 * (64 << 10), merged.Length);
            Assert.Equal(2, reporter.GetStatistics().IdlePasses);
        }
    }

    [Fact]
    public void A_reported_fragment_comes_back_zeroed_without_a_memset()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED's zero pages are Linux's promise.");
        var time = new FakeTimeProvider();
        (BuddyArena arena, _, List<nint> fragments) = Fragmented(time);
        using (arena)
        {
            using var device = new MadviseDontNeedDevice();
            using PageReporter reporter = Started(arena, device, time);
            for (int look = 0; look < 10; look++) OneLook(reporter, time);
            time.Advance(Delay);
            Wait.Until(() => arena.GetStatistics().ReportedPages == fragments.Count * 16L, "the idle pass");
            long skippedBefore = arena.GetStatistics().ZeroSkippedBytes;

            nint block = arena.AllocateZeroed(FragmentOrder);

            Assert.Contains(block, fragments);
            Assert.Equal(skippedBefore + (64 << 10), arena.GetStatistics().ZeroSkippedBytes);
            unsafe
            {
                Assert.True(new ReadOnlySpan<byte>((void*)block, 64 << 10).IndexOfAnyExcept((byte)0) < 0);
            }
        }
    }

    [Fact]
    public void Pressure_reports_at_once_down_to_the_floor_with_no_budget_and_every_cache()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, _, List<nint> fragments) = Fragmented(time);
        using (arena)
        {
            var device = new RecordingDevice();
            // A budget of one block and an idle time of never: only pressure can report all 32 fragments in one pass.
            using PageReporter reporter = Started(arena, device, time, new PageReporterOptions
            {
                Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, BudgetBytesPerPass = 64 << 10,
                PressureSources = PressureSources.None,
            });

            reporter.SignalPressure();

            Wait.Until(() => arena.GetStatistics().ReportedPages == fragments.Count * 16L, "the pressure pass");
            ReporterStatistics stats = reporter.GetStatistics();
            Assert.Equal(1, stats.PressurePasses);
            Assert.Equal(1, stats.PressureSignals);
            Assert.Equal(0, stats.IdlePasses);
        }
    }

    [Fact]
    public void A_pressure_pass_takes_free_added_sections_offline_without_waiting_their_idle_time()
    {
        var time = new FakeTimeProvider();
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = 4 * Arenas.MiB, SectionSize = 4 * Arenas.MiB, MaximumSize = 16 * Arenas.MiB,
            SectionIdleTime = Timeout.InfiniteTimeSpan, Backing = ArenaBacking.Reserve,
        }, timeProvider: time);
        nint[] blocks = [arena.Allocate(10), arena.Allocate(10), arena.Allocate(10)];
        Assert.Equal(3, arena.OnlineSections);
        arena.Free(blocks[1]);
        arena.Free(blocks[2]);
        using PageReporter reporter = Started(arena, new RecordingDevice(), time, new PageReporterOptions
        {
            Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
        });

        reporter.SignalPressure();

        // The start section holds a block and stays; both free added sections go, with no clock moved.
        Wait.Until(() => arena.OnlineSections == 1, "the pressure pass to take the free sections offline");
        Assert.Equal(2, arena.GetStatistics().SectionsRemoved);
        arena.Free(blocks[0]);
    }

    [Fact]
    public void Frees_are_reported_at_once_while_pressure_lasts_and_wait_the_delay_after()
    {
        var time = new FakeTimeProvider();
        (BuddyArena arena, List<nint> live, List<nint> fragments) = Fragmented(time);
        using (arena)
        {
            var options = new PageReporterOptions
            {
                Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
                PressurePollInterval = TimeSpan.FromSeconds(1),
            };
            using PageReporter reporter = Started(arena, new RecordingDevice(), time, options);
            reporter.SignalPressure();
            Wait.Until(() => reporter.GetStatistics().PressurePasses == 1 && reporter.IsWaitingForWork, "the pressure pass");

            // Within two poll intervals of the signal: a free that merges the arena whole is reported at once.
            live.ForEach(arena.Free);
            Wait.Until(() => arena.GetStatistics().ReportedPages == arena.TotalPages, "the free reported under lasting pressure");
            long pressurePasses = reporter.GetStatistics().PressurePasses;
            Assert.True(pressurePasses >= 2);

            // Two poll intervals later pressure is over: the next free waits out the delay again.
            Wait.Until(() => reporter.IsWaitingForWork, "the thread to park");
            time.Advance(TimeSpan.FromSeconds(3));
            nint block = arena.Allocate(arena.MaxOrder);
            arena.Free(block);
            Wait.Until(() => reporter.IsWaitingForDelay, "the free to wait for the delay");
            Assert.Equal(pressurePasses, reporter.GetStatistics().PressurePasses);
        }
    }

    [Fact]
    public void A_bad_floor_order_idle_time_or_pressure_setting_is_refused_by_name()
    {
        using var arena = Arenas.Small();
        foreach ((PageReporterOptions options, string name) in new[]
        {
            (new PageReporterOptions { FloorOrder = 10 }, "FloorOrder"),
            (new PageReporterOptions { FloorOrder = -1 }, "FloorOrder"),
            (new PageReporterOptions { ReportOrder = 3, FloorOrder = 4 }, "FloorOrder"),
            (new PageReporterOptions { IdleTime = TimeSpan.FromSeconds(-1) }, "IdleTime"),
            (new PageReporterOptions { PressureSources = (PressureSources)8 }, "PressureSources"),
            (new PageReporterOptions { PressurePollInterval = TimeSpan.FromMilliseconds(1) }, "PressurePollInterval"),
            (new PageReporterOptions { PressurePercent = 101 }, "PressurePercent"),
        })
        {
            var e = Assert.ThrowsAny<ArgumentException>(() => new PageReporter(arena, new RecordingDevice(), options));
            Assert.Equal(name, e.ParamName);
        }
    }
}
