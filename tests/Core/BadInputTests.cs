namespace Buddy.Tests;

/// <summary>Each case: a clear exception naming what was wrong, and the allocator exactly as it was.</summary>
public class BadInputTests : IDisposable
{
    private readonly BuddyArena arena = Arenas.Small();
    private readonly nint live;

    public BadInputTests()
    {
        live = arena.Allocate(3);
        arena.Allocate(0, Migratetype.Unmovable);
    }

    public void Dispose() => arena.Dispose();

    [Theory]
    [InlineData(-1)]
    [InlineData(11)]
    [InlineData(int.MaxValue)]
    public void Order_out_of_range(int order)
    {
        var e = Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.Allocate(order), "Order must be between 0 and 10");
        Assert.Equal("order", e.ParamName);
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.TryAllocate(order, out _), "Order");
    }

    [Fact]
    public void Isolate_is_not_an_allocatable_migratetype()
    {
        var e = Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.Allocate(0, Migratetypes.Isolate), "Migratetype");
        Assert.Equal("migratetype", e.ParamName);
    }

    [Fact]
    public void Undefined_migratetype()
        => Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.Allocate(0, (Migratetype)9), "Migratetype must be");

    [Theory]
    [InlineData(0)]
    [InlineData(-5)]
    public void Zero_or_negative_size(long size)
    {
        var e = Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.AllocateBytes(size), "Size must be between 1");
        Assert.Equal("size", e.ParamName);
    }

    [Fact]
    public void Size_larger_than_the_largest_block()
        => Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.TryAllocateBytes((4 << 20) + 1, out _), "Size must be between 1 and 4194304");

    [Fact]
    public void Pointer_below_the_arena()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(arena.BaseAddress - 4096), "outside the arena");

    [Fact]
    public void Pointer_past_the_arena()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(arena.BaseAddress + (nint)arena.Size), "outside the arena");

    [Fact]
    public void Null_pointer()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(0), "outside the arena");

    [Fact]
    public void Pointer_that_is_not_page_aligned()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(live + 8), "not page aligned");

    [Fact]
    public void Pointer_inside_an_allocated_block()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(live + 4096), "not the start of an allocated block");

    [Fact]
    public void Pointer_into_free_memory()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(arena.BaseAddress + (nint)(arena.Size / 2)), "not the start of an allocated block");

    [Fact]
    public void Double_free()
    {
        nint block = arena.Allocate(5);
        arena.Free(block);
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(block), "Double free");
    }

    [Fact]
    public void Double_free_of_a_block_that_merged_into_a_larger_one()
    {
        // Per-CPU lists off: the freed blocks must merge in the zone at once.
        using var arena = Arenas.Small(threadCaches: false);
        arena.Allocate(3);
        nint first = arena.Allocate(2);
        nint second = arena.Allocate(2);
        arena.Free(first);
        arena.Free(second);
        Assert.Equal(0, arena.GetStatistics().FreeBlocks(2, Migratetype.Movable));
        Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.Free(second), "already freed");
    }

    [Fact]
    public void Wrong_size_on_free()
    {
        var e = Arenas.AssertRejected<ArgumentException>(arena, () => arena.Free(live, 4096), "does not match the block");
        Assert.Equal("size", e.ParamName);
        Assert.Contains("order 3", e.Message);
        arena.Free(live, 5 * 4096);
    }

    [Fact]
    public void Zero_size_on_free()
        => Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.Free(live, 0), "Size must be between 1");

    [Fact]
    public void Block_size_of_an_unallocated_address()
        => Arenas.AssertRejected<InvalidAddressException>(arena, () => arena.SizeOfBlock(live + 4096), "not the start of an allocated block");

    [Fact]
    public void Use_after_dispose()
    {
        var disposed = Arenas.Small();
        nint block = disposed.Allocate(0);
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.Allocate(0));
        Assert.Throws<ObjectDisposedException>(() => disposed.TryAllocate(0, out _));
        Assert.Throws<ObjectDisposedException>(() => disposed.Free(block));
        Assert.Throws<ObjectDisposedException>(() => disposed.GetStatistics());
        Assert.Throws<ObjectDisposedException>(() => disposed.CheckInvariants());
        Assert.True(disposed.IsDisposed);
        disposed.Dispose();
    }

    [Fact]
    public void Concurrent_dispose_lets_each_racing_call_succeed_or_see_object_disposed()
    {
        for (int round = 0; round < 20; round++)
        {
            var racing = Arenas.Small(size: 64 * Arenas.MiB, zones: 2);
            int succeeded = 0, refused = 0;
            using var start = new Barrier(4);
            int spin = 2000 * round;
            Threads.Run(4, i =>
            {
                start.SignalAndWait();
                if (i == 3)
                {
                    Thread.SpinWait(spin);
                    racing.Dispose();
                    return;
                }
                try
                {
                    while (true)
                    {
                        nint b = racing.AllocateZeroed(2);
                        racing.Free(b);
                        Interlocked.Increment(ref succeeded);
                    }
                }
                catch (ObjectDisposedException)
                {
                    Interlocked.Increment(ref refused);
                }
            });
            racing.Dispose();
            Assert.Equal(3, refused);
        }
    }
}
