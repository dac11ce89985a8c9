using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>Per-CPU lists: batches, the high watermark, drains, and their accounting.</summary>
public class PerCpuTests
{
    [Fact]
    public void A_small_allocation_refills_the_cache_with_one_batch_and_is_served_from_it()
    {
        using var arena = Arenas.Small();
        nint page = arena.Allocate(0);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(1, stats.AllocatedPages);
        Assert.Equal(7, stats.CachedPages);
        Assert.Equal(1, stats.PerCpuAllocations);
        Assert.Equal(arena.TotalPages - 1, stats.FreePages);
        arena.CheckInvariants();
        arena.Free(page);
        Assert.Equal(1, arena.GetStatistics().PerCpuFrees);
        arena.CheckInvariants();
    }

    [Fact]
    public void Large_orders_and_high_atomic_requests_bypass_the_caches()
    {
        using var arena = Arenas.Small();
        arena.Free(arena.Allocate(4));
        arena.Free(arena.Allocate(0, Migratetype.HighAtomic));
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.PerCpuAllocations);
        Assert.Equal(0, stats.CachedPages);
        Assert.Equal(2, stats.Allocations);
    }

    [Fact]
    public void The_high_watermark_sends_batches_back_to_the_zone()
    {
        using var arena = Arenas.Small();
        var pages = Enumerable.Range(0, 200).Select(_ => arena.Allocate(0)).ToList();
        pages.ForEach(arena.Free);
        ArenaStatistics stats = arena.GetStatistics();
        // Each stack holds at most High blocks after a free (plus what a refill left on another processor's cache).
        Assert.InRange(stats.CachedPages, 1, 2 * (PerCpuCache.High + PerCpuCache.Batch));
        arena.CheckInvariants();
    }

    [Fact]
    public void Draining_returns_every_cached_block_so_the_arena_merges_whole_again()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        var pages = Enumerable.Range(0, 100).Select(i => arena.Allocate(i % 4, (Migratetype)(i % 3))).ToList();
        pages.ForEach(arena.Free);
        Assert.True(arena.GetStatistics().CachedPages > 0);
        arena.DrainPerCpuCaches();
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.CachedPages);
        Assert.Equal(stats.TotalPages, stats.FreePagesAtOrAbove(arena.MaxOrder));
        arena.CheckInvariants();
    }

    [Fact]
    public void An_allocation_that_would_fail_drains_the_caches_first()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        var pages = new List<nint>();
        while (arena.TryAllocate(0, out nint page)) pages.Add(page);
        Assert.Equal(arena.TotalPages, pages.Count);
        pages.ForEach(arena.Free);
        Assert.True(arena.GetStatistics().CachedPages > 0);
        nint whole = arena.Allocate(10);
        Assert.Equal(arena.BaseAddress, whole);
        arena.Free(whole);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_double_free_through_the_cache_is_refused_and_changes_nothing()
    {
        using var arena = Arenas.Small();
        nint page = arena.Allocate(1);
        arena.Free(page);
        Assert.Equal(1, arena.GetStatistics().PerCpuFrees);
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.Free(page), "Double free");
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.Free(page, 8192), "Double free");
    }

    [Fact]
    public void The_checker_sees_a_damaged_cache()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1 });
        arena.Free(arena.Allocate(0));
        uint cached = Enumerable.Range(0, (int)arena.TotalPages).Select(p => (uint)p)
            .First(p => (arena.PageMap[p].Flags & PageFlags.PerCpu) != 0);
        arena.PageMap[cached].Flags = PageFlags.Head;
        var e = Assert.Throws<ArenaCorruptionException>(arena.CheckInvariants);
        Assert.Contains(e.Problems, p => p.Contains("per-CPU", StringComparison.Ordinal));
        arena.PageMap[cached].Flags = PageFlags.PerCpu;
        arena.CheckInvariants();
    }

    [Fact]
    public void A_reporting_pass_drains_the_caches_so_their_pages_can_be_reported()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        var pages = Enumerable.Range(0, 64).Select(_ => arena.Allocate(0)).ToList();
        pages.ForEach(arena.Free);
        Assert.True(arena.GetStatistics().CachedPages > 0);
        using var reporter = new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        reporter.ReportNow();
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.CachedPages);
        Assert.Equal(stats.TotalPages, stats.ReportedPages);
    }

    [Fact]
    public void Turning_the_lists_off_serves_everything_from_the_zones()
    {
        using var arena = Arenas.Small(perCpu: false);
        arena.Free(arena.Allocate(0));
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.PerCpuAllocations);
        Assert.Equal(0, stats.CachedPages);
        Assert.Equal(1, stats.Allocations);
    }
}
