using System.Runtime.InteropServices;

namespace Buddy.Tests;

public unsafe class AllocationTests
{
    [Theory]
    [InlineData(0)]
    [InlineData(3)]
    [InlineData(9)]
    [InlineData(10)]
    public void Allocate_returns_a_block_aligned_to_its_size_inside_the_arena(int order)
    {
        using var arena = Arenas.Small();
        nint block = arena.Allocate(order);
        long bytes = arena.BytesOfOrder(order);
        Assert.Equal(0, (block - arena.BaseAddress) % bytes);
        Assert.InRange(block, arena.BaseAddress, arena.BaseAddress + (nint)(arena.Size - bytes));
        Assert.Equal(bytes, arena.SizeOfBlock(block));
        Assert.Equal(1L << order, arena.GetStatistics().AllocatedPages);
        new Span<byte>((void*)block, (int)bytes).Fill(0xAB);
        arena.Free(block);
        arena.CheckInvariants();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(4096, 0)]
    [InlineData(4097, 1)]
    [InlineData(8192, 1)]
    [InlineData(3 * 4096, 2)]
    [InlineData(2 << 20, 9)]
    [InlineData((2 << 20) + 1, 10)]
    [InlineData(4 << 20, 10)]
    public void OrderForSize_rounds_up_to_the_smallest_block_that_holds_the_size(long size, int order)
    {
        using var arena = Arenas.Small();
        Assert.Equal(order, arena.OrderForSize(size));
        nint block = arena.AllocateBytes(size);
        Assert.Equal(4096L << order, arena.SizeOfBlock(block));
        arena.Free(block, size);
        arena.CheckInvariants();
    }

    [Fact]
    public void Zeroed_allocation_reads_zero_even_where_the_last_owner_wrote()
    {
        using var arena = Arenas.Small();
        nint dirty = arena.Allocate(4);
        new Span<byte>((void*)dirty, 16 * 4096).Fill(0xFF);
        arena.Free(dirty);
        nint clean = arena.AllocateZeroed(4);
        Assert.Equal(dirty, clean);
        Assert.True(new Span<byte>((void*)clean, 16 * 4096).IndexOfAnyExcept((byte)0) < 0);
        arena.Free(clean);
    }

    [Fact]
    public void Freed_buddies_merge_back_into_one_largest_block()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        var blocks = new List<nint>();
        for (int i = 0; i < 1024; i++) blocks.Add(arena.Allocate(0));
        Assert.False(arena.TryAllocate(0, out _));
        foreach (nint b in blocks.OrderBy(_ => Random.Shared.Next())) arena.Free(b);
        arena.CheckInvariants();
        // Frees of small blocks park in thread caches until drained.
        arena.DrainThreadCaches();
        var stats = arena.GetStatistics();
        Assert.Equal(1, stats.FreeBlocks(10));
        Assert.Equal(0, Enumerable.Range(0, 10).Sum(o => stats.FreeBlocks(o)));
    }

    [Fact]
    public void TryAllocate_returns_false_on_exhaustion_and_counts_the_failure()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        nint a = arena.Allocate(10);
        nint b = arena.Allocate(10);
        Assert.False(arena.TryAllocate(0, out nint none));
        Assert.Equal(0, none);
        Assert.Equal(1, arena.GetStatistics().FailedAllocations);
        arena.Free(a);
        Assert.True(arena.TryAllocate(0, out nint c));
        arena.Free(c);
        arena.Free(b);
        arena.CheckInvariants();
    }

    [Fact]
    public void Allocate_throws_a_clear_out_of_memory_error_on_exhaustion()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        nint a = arena.Allocate(9);
        nint b = arena.Allocate(10);
        var e = Assert.Throws<ArenaExhaustedException>(() => arena.Allocate(10));
        Assert.IsAssignableFrom<OutOfMemoryException>(e);
        Assert.Equal(10, e.Order);
        Assert.Contains("order 10", e.Message);
        Assert.Contains("512 pages are free", e.Message);
        arena.Free(a);
        arena.Free(b);
        arena.CheckInvariants();
    }

    [Fact]
    public void Statistics_count_free_blocks_by_order_and_migratetype()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB, threadCaches: false);
        nint block = arena.Allocate(0, Migratetype.Unmovable);
        var stats = arena.GetStatistics();
        Assert.Equal(2048, stats.TotalPages);
        Assert.Equal(1, stats.AllocatedPages);
        Assert.Equal(2047, stats.FreePages);
        Assert.Equal(1024, stats.PristinePages);
        Assert.Equal(1, stats.Allocations);
        for (int order = 0; order < 10; order++) Assert.Equal(1, stats.FreeBlocks(order, Migratetype.Unmovable));
        Assert.Equal(1, stats.FreeBlocks(10));
        Assert.Equal(1024, stats.FreePagesAtOrAbove(10));
        Assert.Equal(2047, stats.FreePagesAtOrAbove(0));
        arena.Free(block);
        Assert.Equal(1, arena.GetStatistics().Frees);
    }

    [Fact]
    public void A_fresh_arena_is_all_pristine_and_consistent()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 64 * Arenas.MiB, ZoneCount = 2 });
        var stats = arena.GetStatistics();
        Assert.Equal(stats.TotalPages, stats.PristinePages);
        Assert.Equal(stats.TotalPages, stats.FreePages);
        arena.CheckInvariants();
    }

    [Fact]
    public void Allocation_falls_back_to_other_zones_when_the_preferred_one_is_full()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 16 * Arenas.MiB, ZoneCount = 4 });
        var blocks = Enumerable.Range(0, 4).Select(_ => arena.Allocate(10)).ToList();
        Assert.All(arena.GetStatistics().Zones, z => Assert.Equal(z.Pages, z.AllocatedPages));
        Assert.Equal(4, blocks.Select(b => (b - arena.BaseAddress) / arena.LargestBlockBytes).Distinct().Count());
        blocks.ForEach(arena.Free);
        arena.CheckInvariants();
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)] // without grouping every block is Movable, but the reserve stays HighAtomic's
    public void Atomic_reserve_is_kept_back_from_ordinary_requests_and_served_to_high_atomic_ones(bool groupByMobility)
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB, atomicReservePercent: 25, groupByMobility: groupByMobility);
        var ordinary = new List<nint>();
        while (arena.TryAllocate(10, out nint block)) ordinary.Add(block);
        Assert.Equal(3, ordinary.Count);
        nint atomic = arena.Allocate(10, Migratetype.HighAtomic);
        Assert.False(arena.TryAllocate(0, out _, Migratetype.HighAtomic));
        arena.Free(atomic);
        ordinary.ForEach(arena.Free);
        arena.CheckInvariants();
    }

    [Fact]
    public void Blocks_never_overlap_while_the_arena_fills_with_mixed_orders()
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB);
        var random = new Random(7);
        var live = new List<(nint Address, long Bytes)>();
        while (arena.TryAllocate(random.Next(0, 7), out nint block, (Migratetype)random.Next(0, 4)))
            live.Add((block, arena.SizeOfBlock(block)));
        var sorted = live.OrderBy(b => b.Address).ToList();
        for (int i = 1; i < sorted.Count; i++) Assert.True(sorted[i - 1].Address + sorted[i - 1].Bytes <= sorted[i].Address);
        Assert.Equal(arena.TotalPages, live.Sum(b => b.Bytes) / 4096 + arena.GetStatistics().FreePages);
        arena.CheckInvariants();
        live.ForEach(b => arena.Free(b.Address));
        Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
        arena.CheckInvariants();
    }

    [Fact]
    public void Reserve_backing_serves_the_same_api()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 32 * Arenas.MiB, Backing = ArenaBacking.Reserve });
        nint block = arena.AllocateZeroed(10);
        NativeMemory.Fill((void*)block, 4096 << 10, 1);
        arena.Free(block);
        arena.CheckInvariants();
    }
}
