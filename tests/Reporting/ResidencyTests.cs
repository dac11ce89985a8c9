using System.Runtime.InteropServices;
using Buddy.Interop;

namespace Buddy.Tests;

[Collection(ResidentSetCollection.Name)]
public unsafe class ResidencyTests
{
    private const long GiB = 1L << 30;

    [Fact]
    public void A_64_gibibyte_reserved_arena_costs_memory_only_for_what_is_touched()
    {
        long before = ProcessMemory.ResidentBytes();
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 64 * GiB, Backing = ArenaBacking.Reserve });
        long built = ProcessMemory.ResidentBytes();
        Assert.InRange(built - before, long.MinValue, 16 * Arenas.MiB);

        const long touched = 256 * Arenas.MiB;
        var blocks = new List<nint>();
        for (long done = 0; done < touched; done += arena.LargestBlockBytes)
        {
            nint block = arena.Allocate(arena.MaxOrder);
            NativeMemory.Fill((void*)block, (nuint)arena.LargestBlockBytes, 0x5A);
            blocks.Add(block);
        }
        long grown = ProcessMemory.ResidentBytes() - built;
        Assert.InRange(grown, touched * 95 / 100, touched + 32 * Arenas.MiB);

        // Allocations spread over the whole arena still touch only what they write.
        nint far = arena.Allocate(0, Migratetype.Unmovable);
        *(long*)far = 1;
        Assert.Equal(1, VirtualMemory.CountResidentPages(far, 4096));
        blocks.ForEach(arena.Free);
        arena.Free(far);
        arena.CheckInvariants();
        Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
    }

    [Fact]
    public void Statm_parser_reads_the_resident_field()
    {
        Assert.Equal(2345, ProcessMemory.ParseStatmResidentPages("1000 2345 12 3 0 400 0\n"u8));
        Assert.Throws<FormatException>(() => ProcessMemory.ParseStatmResidentPages("1000"u8));
        Assert.InRange(ProcessMemory.ResidentBytes(), 1 * Arenas.MiB, 24 * GiB);
    }

    [Fact]
    public void The_allocator_never_touches_free_memory()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "mincore and MADV_DONTNEED are Linux facilities.");
        // Per-CPU lists off: the reasoning below is about where the zone path puts each block.
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 8 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false });
        nint discarded = arena.Allocate(10);
        nint pin = arena.Allocate(0);
        nint pinnedBlock = arena.BaseAddress + (pin - arena.BaseAddress) / (4 << 20) * (4 << 20);
        Assert.Equal(pinnedBlock, pin);
        NativeMemory.Fill((void*)discarded, 4 << 20, 0x11);
        NativeMemory.Fill((void*)(pin + 4096), (4 << 20) - 4096, 0x22);
        arena.Free(discarded);
        Assert.True(VirtualMemory.DontNeed(discarded, 4 << 20));
        Assert.Equal(0, VirtualMemory.CountResidentPages(discarded, 4 << 20));

        // Orders 0-3 with at most 32 blocks live always fit in the pinned block's 511 free pages,
        // so none of these (Movable, like the pin: no fallback) may hand out the discarded block or touch it.
        var random = new Random(1);
        var live = new List<nint>();
        for (int i = 0; i < 20_000; i++)
        {
            if (live.Count < 32 && (live.Count == 0 || random.Next(2) == 0))
            {
                nint block = arena.Allocate(random.Next(0, 4));
                Assert.False(block >= discarded && block < discarded + (4 << 20), "the discarded block was handed out");
                live.Add(block);
            }
            else
            {
                int index = random.Next(live.Count);
                arena.Free(live[index]);
                live.RemoveAt(index);
            }
        }
        arena.CheckInvariants();
        Assert.Equal(0, VirtualMemory.CountResidentPages(discarded, 4 << 20));
        live.ForEach(arena.Free);
        arena.Free(pin);
    }
}
