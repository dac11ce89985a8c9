using Buddy.Cli.Workloads;

namespace Buddy.Tests;

public class MigratetypeTests
{
    private static Migratetype PageblockOf(BuddyArena arena, nint address)
        => arena.PageMap.PageblockType((uint)((address - arena.BaseAddress) / arena.PageSize));

    [Fact]
    public void Grouping_by_mobility_leaves_more_free_memory_in_pageblock_sized_blocks()
    {
        FragmentationResult grouped = MixedLifetimeWorkload.Run(groupByMobility: true, arenaBytes: 64 * Arenas.MiB, rounds: 20);
        FragmentationResult mixed = MixedLifetimeWorkload.Run(groupByMobility: false, arenaBytes: 64 * Arenas.MiB, rounds: 20);
        Assert.Equal(grouped.LongLivedPages, mixed.LongLivedPages);
        Assert.True(grouped.FreePagesInPageblocks > mixed.FreePagesInPageblocks,
            $"grouped {grouped.FreePagesInPageblocks} pages vs mixed {mixed.FreePagesInPageblocks} in order >= 9 blocks");
        Assert.True(grouped.PageblockShare > 0.9, $"grouped share {grouped.PageblockShare:P1}");
    }

    [Fact]
    public void A_pristine_block_takes_the_type_of_its_first_request()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB, threadCaches: false);
        nint movable = arena.Allocate(0, Migratetype.Movable);
        nint unmovable = arena.Allocate(0, Migratetype.Unmovable);
        Assert.Equal(Migratetype.Movable, PageblockOf(arena, movable));
        Assert.Equal(Migratetype.Unmovable, PageblockOf(arena, unmovable));
        Assert.NotEqual(movable / arena.LargestBlockBytes, unmovable / arena.LargestBlockBytes);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_fallback_of_pageblock_order_or_more_steals_the_whole_pageblock()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB, threadCaches: false);
        nint movable = arena.Allocate(0, Migratetype.Movable);
        nint other = arena.Allocate(10, Migratetype.Movable);
        nint unmovable = arena.Allocate(0, Migratetype.Unmovable);
        Assert.Equal(Migratetype.Unmovable, PageblockOf(arena, unmovable));
        Assert.Equal(Migratetype.Movable, PageblockOf(arena, movable));
        Assert.Equal(movable + (2 << 20), unmovable);
        var stats = arena.GetStatistics();
        for (int order = 0; order < 9; order++) Assert.Equal(1, stats.FreeBlocks(order, Migratetype.Unmovable));
        arena.CheckInvariants();
        arena.Free(unmovable);
        arena.Free(other);
        arena.Free(movable);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_small_movable_fallback_takes_one_block_and_leaves_the_pageblock_type_alone()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB, threadCaches: false);
        var pages = new List<nint> { arena.Allocate(0, Migratetype.Unmovable), arena.Allocate(9, Migratetype.Unmovable) };
        for (int i = 0; i < 511; i++) pages.Add(arena.Allocate(0, Migratetype.Unmovable));
        var singles = pages.Where(p => p != pages[1] && (p - arena.BaseAddress) / 4096 % 4 == 2).Take(10).ToList();
        singles.ForEach(arena.Free);

        nint stolen = arena.Allocate(0, Migratetype.Movable);
        Assert.Contains(stolen, singles);
        Assert.Equal(Migratetype.Unmovable, PageblockOf(arena, stolen));
        Assert.Equal(9, arena.GetStatistics().FreeBlocks(0, Migratetype.Unmovable));
        arena.CheckInvariants();
    }

    [Fact]
    public void A_small_unmovable_fallback_claims_a_mostly_free_pageblock()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB, threadCaches: false);
        nint movable = arena.Allocate(3, Migratetype.Movable);
        nint pin = arena.Allocate(9, Migratetype.Movable);
        nint unmovable = arena.Allocate(0, Migratetype.Unmovable);
        Assert.Equal(Migratetype.Unmovable, PageblockOf(arena, unmovable));
        Assert.Equal(Migratetype.Unmovable, PageblockOf(arena, movable));
        Assert.Equal(0, arena.GetStatistics().FreeBlocks(4, Migratetype.Movable));
        arena.CheckInvariants();
        arena.Free(movable);
        arena.Free(pin);
        arena.Free(unmovable);
        arena.CheckInvariants();
    }

    [Fact]
    public void Without_grouping_every_request_is_served_as_movable()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB, groupByMobility: false, threadCaches: false);
        nint a = arena.Allocate(0, Migratetype.Unmovable);
        nint b = arena.Allocate(0, Migratetype.Reclaimable);
        Assert.Equal(Migratetype.Movable, PageblockOf(arena, a));
        Assert.Equal(Migratetype.Movable, PageblockOf(arena, b));
        Assert.Equal(a + 4096, b);
    }
}
