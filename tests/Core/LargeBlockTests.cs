namespace Buddy.Tests;

/// <summary>Blocks of 2 GiB and more: sizes in 64 bits everywhere. Touches 2 GiB, so it runs alone.</summary>
[Collection(ResidentSetCollection.Name)]
public class LargeBlockTests
{
    [Fact]
    public unsafe void A_2_GiB_block_is_allocated_poison_checked_to_its_last_byte_and_freed()
    {
        const int Order = 19;
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = 2L << 30, MaxOrder = Order, ZoneCount = 1, PoisonFreedMemory = true, Backing = ArenaBacking.Reserve, ThreadCaches = false,
        });
        Assert.Equal(2L << 30, arena.BytesOfOrder(Order));
        Assert.True(arena.TryAllocate(Order, out nint block));
        Assert.Equal(2L << 30, arena.SizeOfBlock(block));
        arena.Free(block, 2L << 30);

        // A write after free in the last byte, past what an int can index, is still caught.
        ((byte*)block)[(2L << 30) - 1] = 0;
        var e = Assert.Throws<ArenaCorruptionException>(() => arena.Allocate(Order));
        Assert.Contains($"byte {(2L << 30) - 1}", e.Message);
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        arena.CheckInvariants();
    }
}
