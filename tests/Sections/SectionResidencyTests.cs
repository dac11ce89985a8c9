using System.Runtime;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Tests;

/// <summary>Sections measured on the real process: statm, mincore and the GC's own committed bytes.</summary>
[Collection(ResidentSetCollection.Name)]
public unsafe class SectionResidencyTests
{
    private const long SectionBytes = 64 * Arenas.MiB;

    private static BuddyArena Arena(ArenaBacking backing, long maximum = 8 * SectionBytes) => new(new ArenaOptions
    {
        Size = SectionBytes, SectionSize = SectionBytes, MaximumSize = maximum, Backing = backing,
        SectionIdleTime = Timeout.InfiniteTimeSpan,
    });

    /// <summary>Allocates every largest block the arena can have, writing each one in full.</summary>
    private static List<nint> FillAndTouch(BuddyArena arena)
    {
        var blocks = new List<nint>();
        while (arena.TryAllocate(arena.MaxOrder, out nint block))
        {
            NativeMemory.Fill((void*)block, (nuint)arena.LargestBlockBytes, 0x5A);
            blocks.Add(block);
        }
        return blocks;
    }

    private static long GcCommittedAfterFullCollection()
    {
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        return GC.GetGCMemoryInfo(GCKind.Any).TotalCommittedBytes;
    }

    [Theory]
    [InlineData(ArenaBacking.Reserve)]
    [InlineData(ArenaBacking.AlignedAlloc)]
    [InlineData(ArenaBacking.PinnedArray)]
    public void Sections_going_offline_give_their_memory_back_and_rss_falls(ArenaBacking backing)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "The resident set comes from /proc/self/statm.");
        using var arena = Arena(backing);
        List<nint> blocks = FillAndTouch(arena);
        Assert.Equal(8, arena.OnlineSections);
        long peak = ProcessMemory.ResidentBytes();
        blocks.ForEach(arena.Free);

        Assert.Equal(7, arena.RemoveFreeSections());
        if (backing == ArenaBacking.PinnedArray) GcCommittedAfterFullCollection();
        long after = ProcessMemory.ResidentBytes();
        long added = 7 * SectionBytes;
        Assert.True(peak - after >= added * 9 / 10, $"RSS fell by {(peak - after) >> 20} MiB of {added >> 20} MiB taken offline");
        Assert.Equal((1, SectionBytes), (arena.OnlineSections, arena.OnlineBytes));
        arena.CheckInvariants();
    }

    [Fact]
    public void Pinned_array_sections_leave_the_gc_heap_after_a_full_collection()
    {
        using var arena = Arena(ArenaBacking.PinnedArray);
        long before = GcCommittedAfterFullCollection();
        List<nint> blocks = FillAndTouch(arena);
        long grown = GcCommittedAfterFullCollection();
        Assert.True(grown - before >= 7 * SectionBytes, $"the GC heap grew by {(grown - before) >> 20} MiB for 7 added sections");
        blocks.ForEach(arena.Free);
        Assert.Equal(7, arena.RemoveFreeSections());
        long after = GcCommittedAfterFullCollection();
        Assert.True(grown - after >= 7 * SectionBytes * 9 / 10, $"GC committed fell by {(grown - after) >> 20} MiB of {7 * SectionBytes >> 20} MiB taken offline");
    }

    [Fact]
    public void Pinned_array_blocks_are_array_backed_and_survive_compacting_collections()
    {
        using var arena = Arena(ArenaBacking.PinnedArray, maximum: 4 * SectionBytes);
        var blocks = new List<(nint Address, Memory<byte> Memory)>();
        for (int i = 0; i < 2000; i++)
        {
            nint block = arena.Allocate(i % 7);
            ArraySegment<byte> segment = arena.GetArraySegment(block);
            Assert.Equal(arena.SizeOfBlock(block), segment.Count);
            fixed (byte* first = &segment.Array![segment.Offset]) Assert.Equal(block, (nint)first);
            Memory<byte> memory = segment.AsMemory();
            Assert.True(MemoryMarshal.TryGetArray(memory, out ArraySegment<byte> again));
            Assert.Same(segment.Array, again.Array);
            memory.Span.Fill((byte)i);
            blocks.Add((block, memory));
        }
        Assert.True(arena.OnlineSections > 1);
        for (int round = 0; round < 3; round++)
        {
            _ = new byte[1 << 20]; // garbage for the compaction to move around
            GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        }
        for (int i = 0; i < blocks.Count; i++)
        {
            Assert.Equal(-1, blocks[i].Memory.Span.IndexOfAnyExcept((byte)i));
            Assert.Equal(blocks[i].Address, (nint)Unsafe.AsPointer(ref blocks[i].Memory.Span[0]));
        }
        blocks.ForEach(b => arena.Free(b.Address));
        arena.CheckInvariants();
    }

    [Fact]
    public void Reported_pinned_array_blocks_read_as_zero_and_are_not_resident()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "mincore and MADV_DONTNEED are Linux facilities.");
        using var arena = Arena(ArenaBacking.PinnedArray, maximum: 2 * SectionBytes);
        using var reporter = new PageReporter(arena, new MadviseDontNeedDevice(), new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        List<nint> blocks = FillAndTouch(arena);
        blocks.ForEach(arena.Free);

        ReportingPassResult pass = reporter.ReportNow();
        Assert.Equal(2 * SectionBytes, pass.ReportedBytes);
        foreach (nint block in blocks)
        {
            Assert.Equal(0, VirtualMemory.CountResidentPages(block, (nuint)arena.LargestBlockBytes));
            Assert.Equal(-1, new ReadOnlySpan<byte>((void*)block, (int)arena.LargestBlockBytes).IndexOfAnyExcept((byte)0));
        }
        // The arrays' headers were never discarded: the GC still walks them.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: true);
        nint again = arena.Allocate(0);
        Assert.NotNull(arena.GetArraySegment(again).Array);
    }

    [Fact]
    public void Get_array_segment_refuses_other_backings_and_unallocated_blocks()
    {
        using var native = Arena(ArenaBacking.Reserve);
        nint block = native.Allocate(0);
        Arenas.AssertRejected<InvalidOperationException>(native, () => native.GetArraySegment(block), "PinnedArray");
        using var pinned = Arena(ArenaBacking.PinnedArray);
        nint held = pinned.Allocate(1);
        Arenas.AssertRejected<InvalidAddressException>(pinned, () => pinned.GetArraySegment(held + 4096), "not the start of an allocated block");
        Arenas.AssertRejected<InvalidAddressException>(pinned, () => pinned.GetArraySegment(held - (nint)SectionBytes), "outside the arena");
    }
}
