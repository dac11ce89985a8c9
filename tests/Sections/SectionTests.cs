using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>Sections: growth on demand up to the maximum, and idle added sections going offline.</summary>
public unsafe class SectionTests
{
    private const long Section = 4 * Arenas.MiB; // one largest block with the default shape

    internal static BuddyArena Sectioned(long start = Section, long maximum = 8 * Section, ArenaBacking backing = ArenaBacking.Reserve,
        bool threadCaches = true, TimeProvider? time = null, TimeSpan? idle = null, long section = Section)
        => new(new ArenaOptions
        {
            ValidateOnFree = true, Size = start, MaximumSize = maximum, SectionSize = section, Backing = backing,
            ThreadCaches = threadCaches, SectionIdleTime = idle ?? Timeout.InfiniteTimeSpan,
        }, timeProvider: time);

    /// <summary>Moves a fake clock a second at a time, so a periodic timer fires at every period it crosses.</summary>
    private static void Pass(FakeTimeProvider time, int seconds)
    {
        for (int i = 0; i < seconds; i++) time.Advance(TimeSpan.FromSeconds(1));
    }

    /// <summary>Fills every section the arena can have with largest blocks, one section each.</summary>
    private static List<nint> FillToMaximum(BuddyArena arena)
    {
        var blocks = new List<nint>();
        while (arena.TryAllocate(arena.MaxOrder, out nint block)) blocks.Add(block);
        return blocks;
    }

    [Fact]
    public void The_default_arena_is_one_section_that_never_grows()
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB });
        Assert.Equal((1, 8 * Arenas.MiB, 8 * Arenas.MiB), (arena.OnlineSections, arena.MaximumSize, arena.SectionSize));
        var blocks = FillToMaximum(arena);
        Assert.Equal(2, blocks.Count);
        var e = Assert.Throws<ArenaExhaustedException>(() => arena.Allocate(0));
        Assert.Contains("maximum size of 8388608 bytes", e.Message);
        Assert.Equal(0, arena.GetStatistics().SectionsAdded);
    }

    [Theory]
    [InlineData(ArenaBacking.Reserve)]
    [InlineData(ArenaBacking.AlignedAlloc)]
    [InlineData(ArenaBacking.PinnedArray)]
    public void Grows_a_section_at_a_time_under_concurrent_load_to_the_maximum_then_refuses_naming_it(ArenaBacking backing)
    {
        using var arena = Sectioned(maximum: 16 * Section, backing: backing);
        var held = new System.Collections.Concurrent.ConcurrentBag<nint>();
        Threads.Run(4, _ =>
        {
            while (arena.TryAllocate(6, out nint block))
            {
                *(long*)block = block;
                held.Add(block);
            }
        });
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal((16, 15L, 16 * Section), (stats.OnlineSections, stats.SectionsAdded, arena.OnlineBytes));
        Assert.Equal(16 * Section / arena.BytesOfOrder(6), held.Count);
        Assert.All(held, b => Assert.Equal(b, *(long*)b));
        var e = Assert.Throws<ArenaExhaustedException>(() => arena.Allocate(0));
        Assert.Equal(16 * Section, e.MaximumBytes);
        Assert.Contains($"maximum size of {16 * Section} bytes", e.Message);
        arena.CheckInvariants();
        foreach (nint block in held) arena.Free(block);
        Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
    }

    [Fact]
    public void Concurrent_allocations_that_all_miss_add_one_section_not_one_each()
    {
        using var arena = Sectioned(threadCaches: false);
        arena.Allocate(arena.MaxOrder); // the start section is full
        using var start = new Barrier(8);
        var blocks = new nint[8];
        Threads.Run(8, i =>
        {
            start.SignalAndWait();
            blocks[i] = arena.Allocate(0);
        });
        Assert.Equal((2, 1L), (arena.OnlineSections, arena.GetStatistics().SectionsAdded));
        Assert.Equal(8, blocks.Distinct().Count());
        arena.CheckInvariants();
    }

    [Fact]
    public void Allocation_prefers_the_start_sections_so_added_ones_drain()
    {
        using var arena = Sectioned(start: 2 * Section, section: Section);
        List<nint> all = FillToMaximum(arena);
        all.ForEach(arena.Free);
        // A thread cache hands back what it holds wherever it lies; once home, everything is free
        // again and new allocations land in the two start sections first.
        arena.DrainThreadCaches();
        for (int i = 0; i < 2 * (int)(Section / arena.BytesOfOrder(4)); i++)
        {
            nint block = arena.Allocate(4);
            Assert.InRange(block, arena.BaseAddress, arena.BaseAddress + (nint)(2 * Section) - 1);
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Free_added_sections_go_offline_after_the_idle_time_down_to_the_start_size(bool threadCaches)
    {
        var time = new FakeTimeProvider();
        using var arena = Sectioned(start: 2 * Section, threadCaches: threadCaches, time: time, idle: TimeSpan.FromSeconds(8));
        List<nint> blocks = Enumerable.Range(0, 6 * (int)(Section / arena.BytesOfOrder(0))).Select(_ => arena.Allocate(0)).ToList();
        Assert.Equal(6, arena.OnlineSections);
        blocks.ForEach(arena.Free);

        Pass(time, 6);
        Assert.Equal(6, arena.OnlineSections); // free for less than the idle time
        Pass(time, 6);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal((2, 4L, 2 * Section), (stats.OnlineSections, stats.SectionsRemoved, stats.OnlineBytes));
        Assert.Equal(stats.TotalPages, stats.FreePages);
        arena.CheckInvariants();

        // The arena grows again through the slots it gave back.
        Assert.Equal(8, FillToMaximum(arena).Count);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_section_in_use_when_the_timer_looks_stays_online_and_its_clock_restarts()
    {
        var time = new FakeTimeProvider();
        using var arena = Sectioned(threadCaches: false, time: time, idle: TimeSpan.FromSeconds(8));
        arena.Allocate(arena.MaxOrder);
        nint added = arena.Allocate(0);
        Pass(time, 30);
        Assert.Equal(2, arena.OnlineSections);
        arena.Free(added);
        Pass(time, 4);
        added = arena.Allocate(0); // used again between two looks
        arena.Free(added);
        Pass(time, 6);
        Assert.Equal(2, arena.OnlineSections);
        Pass(time, 10);
        Assert.Equal(1, arena.OnlineSections);
    }

    [Fact]
    public void A_section_used_only_through_per_cpu_caches_between_looks_stays_online()
    {
        var time = new FakeTimeProvider();
        using var arena = Sectioned(threadCaches: true, time: time, idle: TimeSpan.FromSeconds(8));
        arena.Allocate(arena.MaxOrder); // the start section is full: caches refill from the added one
        for (int i = 0; i < 8; i++)
        {
            arena.Free(arena.Allocate(0)); // a pair through this processor's cache, nothing held between looks
            Pass(time, 4);
        }
        Assert.Equal(2, arena.OnlineSections);
        Pass(time, 12);
        Assert.Equal(1, arena.OnlineSections);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_request_no_fresh_section_could_serve_adds_no_section()
    {
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = Section, SectionSize = Section, MaximumSize = 8 * Section, AtomicReservePercent = 10,
        });
        Assert.False(arena.TryAllocate(arena.MaxOrder, out _)); // a whole zone, which keeps 10% back
        Assert.Equal(1, arena.OnlineSections);
        Assert.True(arena.TryAllocate(arena.MaxOrder, out _, Migratetype.HighAtomic)); // the reserve is HighAtomic's
    }

    [Fact]
    public void A_section_never_goes_offline_while_a_block_is_allocated_cached_or_mid_report()
    {
        using var arena = Sectioned(threadCaches: true);
        arena.Allocate(arena.MaxOrder);
        nint allocated = arena.Allocate(2);
        Assert.Equal(0, arena.RemoveFreeSections());
        arena.Free(allocated); // into this processor's cache: drained home by the removal
        Assert.Equal(1, arena.RemoveFreeSections());
        arena.CheckInvariants();

        nint again = arena.Allocate(arena.MaxOrder);
        arena.Free(again);
        int removed = -1;
        int reported = arena.ReportFreeBlocks(1, 0, ReportingMode.Isolate, new FreeBlock[4], blocks =>
        {
            removed = arena.RemoveFreeSections();
            return ReportOutcome.Reported;
        }).Blocks;
        Assert.Equal((1, 0), (reported, removed));
        Assert.Equal(1, arena.RemoveFreeSections());
    }

    [Fact]
    public void A_pointer_into_an_offline_section_or_between_sections_is_outside_the_arena_and_changes_nothing()
    {
        using var arena = Sectioned(threadCaches: false);
        nint[] blocks = [arena.Allocate(arena.MaxOrder), arena.Allocate(arena.MaxOrder), arena.Allocate(arena.MaxOrder)];
        arena.Free(blocks[1]);
        Assert.Equal(1, arena.RemoveFreeSections());
        Assert.Equal(2, arena.OnlineSections);
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(blocks[1]), "outside the arena");
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(blocks[1] + 8192), "outside the arena");
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.SizeOfBlock(blocks[1]), "outside the arena");
        arena.Free(blocks[2]);
        arena.Free(blocks[0]);
        Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
    }

    [Theory]
    [InlineData(3 * Arenas.MiB, 0L, "SectionSize")]              // not a multiple of the largest block
    [InlineData(12 * Arenas.MiB, 0L, "SectionSize")]             // does not divide Size
    [InlineData(4 * Arenas.MiB, 4 * Arenas.MiB, "MaximumSize")]  // below Size
    [InlineData(4 * Arenas.MiB, 18 * Arenas.MiB, "MaximumSize")] // not a multiple of the section
    public void Invalid_section_options_name_the_option(long section, long maximum, string option)
    {
        var e = Assert.ThrowsAny<ArgumentException>(() => new BuddyArena(new ArenaOptions
        {
            Size = 8 * Arenas.MiB, SectionSize = section, MaximumSize = maximum == 0 ? 0 : maximum,
        }));
        Assert.Equal(option, e.ParamName);
        Assert.Contains(option, e.Message);
    }

    [Fact]
    public void Other_invalid_section_options_name_the_option()
    {
        Assert.Equal("SectionIdleTime", Assert.ThrowsAny<ArgumentException>(() =>
            new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, SectionIdleTime = TimeSpan.FromSeconds(-1) })).ParamName);
        Assert.Equal("SectionSize", Assert.ThrowsAny<ArgumentException>(() =>
            new BuddyArena(new ArenaOptions { Size = 2L << 30, SectionSize = 2L << 30, Backing = ArenaBacking.PinnedArray })).ParamName);
        Assert.Equal("MaximumSize", Assert.ThrowsAny<ArgumentException>(() =>
            new BuddyArena(new ArenaOptions { Size = 4 * Arenas.MiB, SectionSize = 4 * Arenas.MiB, MaximumSize = 1L << 45 })).ParamName);
    }

    [Fact]
    public void Disposing_while_the_idle_timer_and_allocations_race_leaves_nothing_running()
    {
        for (int round = 0; round < 50; round++)
        {
            var arena = Sectioned(idle: TimeSpan.Zero, time: TimeProvider.System);
            var worker = Background.Run(() =>
            {
                try
                {
                    for (int i = 0; i < 200; i++) arena.Free(arena.Allocate(arena.MaxOrder - (i & 1)));
                }
                catch (ObjectDisposedException)
                {
                    // Disposed under the loop: expected.
                }
            });
            arena.Allocate(arena.MaxOrder);
            arena.Dispose();
            worker.Join();
            Assert.Equal(0, arena.OnlineSections);
        }
    }
}

/// <summary>Counters exporters read as monotonic never fall, whatever sections do.</summary>
public class SectionCounterTests
{
    [Fact]
    public void Totals_of_a_section_taken_offline_stay_in_the_arena_counters()
    {
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = 4 * Arenas.MiB, SectionSize = 4 * Arenas.MiB, MaximumSize = 8 * Arenas.MiB,
            SectionIdleTime = Timeout.InfiniteTimeSpan, ThreadCaches = false, Backing = ArenaBacking.Reserve,
        });
        nint first = arena.AllocateZeroed(10);
        nint second = arena.AllocateZeroed(10); // adds the second section
        Assert.Equal(2, arena.OnlineSections);
        arena.Free(first);
        arena.Free(second);
        ArenaStatistics before = arena.GetStatistics();

        Assert.Equal(1, arena.RemoveFreeSections());

        ArenaStatistics after = arena.GetStatistics();
        Assert.Equal(1, after.OnlineSections);
        Assert.Equal(before.Allocations, after.Allocations);
        Assert.Equal(before.Frees, after.Frees);
        Assert.Equal(before.ZeroSkippedBytes, after.ZeroSkippedBytes);
        Assert.Equal(2, after.Allocations);
        Assert.True(after.ZeroSkippedBytes >= 4 * Arenas.MiB, "the fresh section's block was known to be zero");
    }
}
