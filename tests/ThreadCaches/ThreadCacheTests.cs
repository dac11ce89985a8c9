using System.Collections.Concurrent;
using Buddy.Reporting;
using Buddy.Reporting.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>Thread caches: batches, the bounds, drains, exited threads, other threads' frees, and their accounting.</summary>
public class ThreadCacheTests
{
    [Fact]
    public void A_small_allocation_refills_the_cache_with_one_batch_and_is_served_from_it()
    {
        using var arena = Arenas.Small();
        nint page = arena.Allocate(0);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(1, stats.AllocatedPages);
        Assert.Equal(arena.CacheBatchOf(0) - 1, stats.CachedPages);
        Assert.Equal(1, stats.CacheAllocations);
        Assert.Equal(arena.TotalPages - 1, stats.FreePages);
        arena.CheckInvariants();
        arena.Free(page);
        Assert.Equal(1, arena.GetStatistics().CacheFrees);
        arena.CheckInvariants();
    }

    [Fact]
    public void Every_order_up_to_2_MiB_is_cached_and_larger_ones_and_high_atomic_requests_are_not()
    {
        using var arena = Arenas.Small(size: 32 * Arenas.MiB);
        Assert.Equal(10, arena.CachedOrders); // 4 KiB to 2 MiB
        for (int order = 0; order < arena.CachedOrders; order++)
            for (int i = 0; i < 2; i++) arena.Free(arena.Allocate(order));
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(20, stats.CacheAllocations);
        Assert.Equal(20, stats.CacheFrees);

        arena.Free(arena.Allocate(10));
        arena.Free(arena.Allocate(0, Migratetype.HighAtomic));
        stats = arena.GetStatistics();
        Assert.Equal(20, stats.CacheAllocations);
        Assert.Equal(22, stats.Allocations);
        arena.CheckInvariants();
    }

    [Theory]
    [InlineData(64 << 10, 5)]
    [InlineData(1 << 20, 9)]
    [InlineData(4 << 20, 10)]
    public void The_byte_budget_bounds_what_one_thread_keeps(long budget, int cachedOrders)
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 64 * Arenas.MiB, ZoneCount = 1, CacheBytesPerThread = budget, ValidateOnFree = true });
        Assert.Equal(cachedOrders, arena.CachedOrders);
        var blocks = new List<nint>();
        for (int round = 0; round < 8; round++)
            for (int order = 0; order <= 9; order++) blocks.Add(arena.Allocate(order));
        blocks.ForEach(arena.Free);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.InRange(stats.CachedPages * Arenas.Page, 1, budget);
        arena.CheckInvariants();
    }

    [Fact]
    public void The_cache_path_allocates_no_managed_memory()
    {
        using var arena = Arenas.Small(size: 32 * Arenas.MiB);
        for (int order = 0; order < arena.CachedOrders; order++) arena.Free(arena.Allocate(order)); // the cache and its first batches
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            int order = i % arena.CachedOrders;
            arena.Free(arena.Allocate(order));
            arena.Free(arena.AllocateBytes(4096), 4096);
        }
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }

    [Fact]
    public void A_budget_outside_its_range_is_refused_by_name()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, CacheBytesPerThread = 4096 }));
        Assert.Equal("CacheBytesPerThread", e.ParamName);
    }

    [Fact]
    public void Draining_returns_every_cached_block_so_the_arena_merges_whole_again()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        var pages = Enumerable.Range(0, 100).Select(i => arena.Allocate(i % 6, (Migratetype)(i % 3))).ToList();
        pages.ForEach(arena.Free);
        Assert.True(arena.GetStatistics().CachedPages > 0);
        arena.DrainThreadCaches();
        AssertAllHome(arena);
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
    public void The_cache_of_a_thread_that_exited_goes_home_and_keeps_its_counts()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        RunOnThread(() =>
        {
            var pages = Enumerable.Range(0, 32).Select(_ => arena.Allocate(0)).ToList();
            pages.ForEach(arena.Free);
        });
        Assert.Equal(1, arena.ThreadCacheCount);
        Assert.True(arena.GetStatistics().CachedPages > 0);

        arena.DrainIdleCaches();
        Assert.Equal(0, arena.ThreadCacheCount);
        Assert.Equal(32, arena.GetStatistics().CacheFrees);
        AssertAllHome(arena);
    }

    [Fact]
    public void A_new_thread_sends_home_what_exited_threads_left()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        // Each thread's first allocation makes its cache and retires the one the thread before left.
        for (int i = 0; i < 3; i++) RunOnThread(() => arena.Free(arena.Allocate(1)));
        Assert.Equal(1, arena.ThreadCacheCount);
        Assert.Equal(arena.CacheBatchOf(1) << 1, arena.GetStatistics().CachedPages);
        arena.Free(arena.Allocate(0));
        Assert.Equal(1, arena.ThreadCacheCount);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(arena.CacheBatchOf(0), stats.CachedPages);
        Assert.Equal(4, stats.CacheFrees);
        arena.CheckInvariants();
    }

    [Fact]
    public void Blocks_allocated_on_one_thread_and_freed_on_another_all_come_home()
    {
        using var arena = Arenas.Small(size: 64 * Arenas.MiB);
        using var handoff = new BlockingCollection<nint>(boundedCapacity: 64);
        const int Blocks = 20_000;
        var producer = new Thread(() =>
        {
            for (int i = 0; i < Blocks; i++) handoff.Add(arena.Allocate(i % 10));
            handoff.CompleteAdding();
        });
        var consumer = new Thread(() =>
        {
            foreach (nint block in handoff.GetConsumingEnumerable()) arena.Free(block);
        });
        producer.Start();
        consumer.Start();
        producer.Join();
        consumer.Join();
        arena.CheckInvariants();
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(Blocks, stats.Frees);
        Assert.Equal(0, stats.AllocatedPages);
        arena.DrainThreadCaches();
        AssertAllHome(arena);
    }

    [Fact]
    public void An_automatic_pass_sends_home_the_cache_of_a_thread_that_stayed_idle_while_it_reported()
    {
        var time = new FakeTimeProvider();
        TimeSpan delay = TimeSpan.FromSeconds(2);
        using var arena = new BuddyArena(new ArenaOptions { Size = 4 * Arenas.MiB, ZoneCount = 1 }, timeProvider: time);
        var pages = Enumerable.Range(0, 512).Select(_ => arena.Allocate(1)).ToList();
        pages.ForEach(arena.Free);
        Assert.True(arena.GetStatistics().CachedPages > 0);
        using var reporter = new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { Delay = delay });
        reporter.Start();

        // One pass: this thread's cache is new to it, but stays untouched while the pass reports, so it goes home.
        Wait.Until(() => reporter.IsWaitingForDelay, "the first delay");
        time.Advance(delay);
        Wait.Until(() => arena.GetStatistics().ReportedPages == arena.TotalPages, "the pass that drains the idle cache");
        Assert.Equal(1, reporter.Wakeups);
        Assert.Equal(0, arena.GetStatistics().CachedPages);
    }

    [Fact]
    public void An_automatic_pass_leaves_a_busy_cache_and_comes_back_for_it_once_its_thread_is_idle()
    {
        var time = new FakeTimeProvider();
        TimeSpan delay = TimeSpan.FromSeconds(2);
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1 }, timeProvider: time);
        arena.Free(arena.Allocate(10)); // 4 MiB: above the cached orders, free on the zone's lists for the pass to report
        using var device = new GatedDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = delay });
        long pairs = 0;
        bool stop = false;
        var busy = new Thread(() =>
        {
            while (!Volatile.Read(ref stop))
            {
                arena.Free(arena.Allocate(0));
                Interlocked.Increment(ref pairs);
            }
        });
        busy.Start();
        Wait.Until(() => Interlocked.Read(ref pairs) > 0, "the busy thread to start");
        reporter.Start();
        Wait.Until(() => reporter.IsWaitingForDelay, "the first delay");
        time.Advance(delay);

        // The pass is at the device: the busy thread works on meanwhile, so its cache is busy when the pass looks again.
        device.WaitUntilEntered();
        long seen = Interlocked.Read(ref pairs);
        Wait.Until(() => Interlocked.Read(ref pairs) > seen + 1000, "the busy thread to work during the pass");
        device.Open();
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForDelay, "the pass to ask for another");
        Assert.True(arena.GetStatistics().CachedPages > 0);

        // Once the thread has gone quiet, the next pass sends its cache home.
        Volatile.Write(ref stop, true);
        busy.Join();
        time.Advance(delay);
        Wait.Until(() => reporter.Wakeups == 2 && arena.GetStatistics().CachedPages == 0, "the pass that drains the idle cache");
    }

    [Fact]
    public void Memory_freed_only_into_caches_is_reported_one_delay_after_the_reporter_next_looks()
    {
        var time = new FakeTimeProvider();
        TimeSpan delay = TimeSpan.FromSeconds(2);
        using var arena = new BuddyArena(new ArenaOptions { Size = 4 * Arenas.MiB, ZoneCount = 1 }, timeProvider: time);
        using var reporter = new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { Delay = delay });
        reporter.Start();
        Wait.Until(() => reporter.IsWaitingForDelay, "the first delay");
        time.Advance(delay);
        Wait.Until(() => reporter.Wakeups == 1 && reporter.IsWaitingForWork, "the first pass, with nothing to report");
        long passes = reporter.GetStatistics().Passes;

        // A thread takes pages and frees them into its cache, then stays alive and quiet: no free
        // reaches a zone, so nothing asks the reporter for a pass.
        using var done = new ManualResetEventSlim();
        using var quiet = new ManualResetEventSlim();
        var owner = new Thread(() =>
        {
            var pages = Enumerable.Range(0, 8).Select(_ => arena.Allocate(0)).ToList();
            pages.ForEach(arena.Free);
            quiet.Set();
            done.Wait();
        });
        owner.Start();
        quiet.Wait(TestContext.Current.CancellationToken);
        Assert.True(arena.GetStatistics().CachedPages > 0);
        Assert.True(reporter.IsWaitingForWork);

        // One delay on, the reporter looks, finds cached memory and runs a pass at once, which
        // sends the quiet cache home and reports the arena whole.
        time.Advance(delay);
        Wait.Until(() => arena.GetStatistics().ReportedPages == arena.TotalPages, "the pass the cache look started");
        Assert.Equal(0, arena.GetStatistics().CachedPages);
        Assert.True(reporter.GetStatistics().Passes > passes);
        done.Set();
        owner.Join();
    }

    [Fact]
    public void A_double_free_through_the_cache_is_refused_and_changes_nothing()
    {
        using var arena = Arenas.Small();
        nint page = arena.Allocate(1);
        arena.Free(page);
        Assert.Equal(1, arena.GetStatistics().CacheFrees);
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(page), "Double free");
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(page, 8192), "Double free");
    }

    [Fact]
    public void Racing_double_frees_free_each_block_once()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        for (int round = 0; round < 200; round++)
        {
            nint block = arena.Allocate(round % 4);
            int refused = 0;
            using var start = new Barrier(2);
            Threads.Run(2, _ =>
            {
                start.SignalAndWait();
                try
                {
                    arena.Free(block);
                }
                catch (ArgumentException)
                {
                    Interlocked.Increment(ref refused);
                }
            });
            Assert.Equal(1, refused);
        }
        arena.CheckInvariants();
    }

    [Fact]
    public void The_checker_sees_a_damaged_cache()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1 });
        arena.Free(arena.Allocate(0));
        uint cached = Enumerable.Range(0, (int)arena.TotalPages).Select(p => (uint)p)
            .First(p => (arena.PageMap[p].Flags & PageFlags.Cached) != 0);
        arena.PageMap[cached].Flags = PageFlags.Head;
        var e = Assert.Throws<ArenaCorruptionException>(arena.CheckInvariants);
        Assert.Contains(e.Problems, p => p.Contains("thread cache", StringComparison.Ordinal));
        arena.PageMap[cached].Flags = PageFlags.Cached;
        arena.CheckInvariants();
    }

    [Fact]
    public void Reporting_now_drains_every_cache_so_its_pages_can_be_reported()
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
    public void Turning_the_caches_off_serves_everything_from_the_zones()
    {
        using var arena = Arenas.Small(threadCaches: false);
        arena.Free(arena.Allocate(0));
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.CacheAllocations);
        Assert.Equal(0, stats.CachedPages);
        Assert.Equal(1, stats.Allocations);
        Assert.Equal(0, arena.ThreadCacheCount);
    }

    /// <summary>Nothing is cached, and every page has merged back into largest blocks.</summary>
    private static void AssertAllHome(BuddyArena arena)
    {
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(0, stats.CachedPages);
        Assert.Equal(stats.TotalPages, stats.FreePagesAtOrAbove(arena.MaxOrder));
        arena.CheckInvariants();
    }

    private static void RunOnThread(Action body)
    {
        Exception? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                body();
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        thread.Start();
        thread.Join();
        if (failure is not null) throw new AggregateException(failure);
    }

    [Fact]
    public void A_block_a_busy_cache_overflows_into_its_zone_is_as_young_as_a_free_and_a_timed_pass_leaves_it()
    {
        using BuddyArena arena = Arenas.Small();
        Assert.Equal(1, arena.CacheBatchOf(9));
        nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(9))];
        arena.Free(blocks[0]);
        // The cache holds one 2 MiB block: the second free overflows it, and the block just freed goes home.
        arena.Free(blocks[2]);
        ReportedBatch aged = arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[8], _ => ReportOutcome.Reported, agedOnly: true);
        Assert.Equal(0, aged.Blocks);
        // An idle cache's blocks were freed before the round: the next timed pass may take them.
        arena.DrainIdleCaches();
        arena.DrainIdleCaches();
        aged = arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[8], _ => ReportOutcome.Reported, agedOnly: true);
        Assert.Equal(1, aged.Blocks);
        arena.CheckInvariants();
    }
}
