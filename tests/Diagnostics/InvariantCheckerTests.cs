using Buddy.Reporting;

namespace Buddy.Tests;

/// <summary>The checker must catch each kind of corruption it claims to look for.</summary>
public unsafe class InvariantCheckerTests : IDisposable
{
    private readonly BuddyArena arena = Arenas.Small(threadCaches: false);
    private readonly nint allocated;
    private readonly uint allocatedPage;

    public InvariantCheckerTests()
    {
        allocated = arena.Allocate(2);
        allocatedPage = (uint)((allocated - arena.BaseAddress) / 4096);
        arena.CheckInvariants();
    }

    public void Dispose() => arena.Dispose();

    private ref PageDescriptor Descriptor(uint page) => ref arena.PageMap[page];

    private uint FreeHead(int order)
    {
        uint head = arena.Zones[0].ListHead(order, Migratetype.Movable);
        Assert.NotEqual(PageDescriptor.None, head);
        return head;
    }

    private void AssertDetected(string problem)
    {
        var e = Assert.Throws<ArenaCorruptionException>(arena.CheckInvariants);
        Assert.Contains(e.Problems, p => p.Contains(problem, StringComparison.Ordinal));
    }

    [Fact]
    public void Flags_on_a_tail_page()
    {
        Descriptor(allocatedPage + 1).Flags = PageFlags.Head;
        AssertDetected("tail page");
    }

    [Fact]
    public void A_broken_back_link()
    {
        uint head = FreeHead(3);
        Descriptor(head).Prev = 12345;
        AssertDetected("prev is 12345");
    }

    [Fact]
    public void A_free_block_on_the_wrong_order()
    {
        Descriptor(FreeHead(4)).Order = 5;
        AssertDetected("has order 5");
    }

    [Fact]
    public void Unmerged_free_buddies()
    {
        // Mark the allocated order-2 block free without merging it with its free buddy.
        Descriptor(allocatedPage).Flags = PageFlags.Buddy;
        AssertDetected("were not merged");
    }

    [Fact]
    public void A_lost_allocation()
    {
        Descriptor(allocatedPage).Flags = PageFlags.None;
        AssertDetected("starts no block");
    }

    [Fact]
    public void A_run_pointer_that_no_longer_starts_its_run()
    {
        // At least two hinted blocks of order 3; the pointer moved to the second as if the first had been unlinked.
        nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(3))];
        arena.Free(blocks[0]);
        arena.Free(blocks[2]);
        arena.ReportFreeBlocks(0, 3, ReportingMode.Isolate, new FreeBlock[64], _ => ReportOutcome.Hinted, selection: FreeBlockSelection.Fresh);
        Zone zone = arena.Zones[0];
        uint first = zone.FirstHinted(3, Migratetype.Movable);
        uint second = Descriptor(first).Next;
        Assert.True((Descriptor(second).Flags & PageFlags.Hinted) != 0, "the order-3 list holds two hinted blocks");
        // The pointer is private state a bug would corrupt, reached here the only way a test can.
        var pointers = (uint[])typeof(Zone).GetField("firstHinted", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(zone)!;
        int list = Array.IndexOf(pointers, first);
        pointers[list] = second;
        AssertDetected($"the hinted run starts at {first}, its pointer says {second}");
        pointers[list] = first;
        arena.CheckInvariants();
    }

    [Fact]
    public void An_isolated_block_missing_from_the_isolated_list()
    {
        nint block = arena.Allocate(3);
        arena.Free(block);
        Zone zone = arena.Zones[0];
        // The list is private state a bug would corrupt, reached here the only way a test can.
        var isolated = (List<uint>)typeof(Zone).GetField("isolated", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!.GetValue(zone)!;
        arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[64], _ =>
        {
            // Mid-report, off the lists: the checker sees the block through its flags and through the list.
            arena.CheckInvariants();
            uint[] saved = [.. isolated];
            isolated.Clear();
            AssertDetected("the isolated list holds 0 pages, blocks mid-report off the lists hold");
            isolated.AddRange(saved);
            isolated.Add(saved[0]);
            AssertDetected($"isolated entry {saved[0]} lies outside the zone's used range or is listed twice");
            isolated.RemoveAt(isolated.Count - 1);
            return ReportOutcome.Reported;
        });
        arena.CheckInvariants();
    }

    [Fact]
    public void Counters_that_disagree_with_the_blocks()
    {
        arena.Zones[0].AllocatedPages++;
        AssertDetected("AllocatedPages is 5");
        arena.Zones[0].AllocatedPages--;
        arena.Zones[0].FreePages--;
        AssertDetected("FreePages is");
        arena.Zones[0].FreePages++;
        arena.CheckInvariants();
    }

    [Fact]
    public void A_free_block_in_a_pageblock_of_another_type()
    {
        arena.PageMap.PageblockTypes[FreeHead(5) >> arena.PageblockOrder] = Migratetype.Reclaimable;
        AssertDetected("lies in a Reclaimable pageblock");
    }
}

/// <summary>ValidateOnFree catches descriptor corruption at the free that meets it.</summary>
public class ValidateOnFreeTests
{
    private static BuddyArena Create(bool validate) => new(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1, ValidateOnFree = validate, ThreadCaches = false });

    [Fact]
    public void A_flag_inside_the_block_being_freed_is_reported_as_an_overlap()
    {
        using var arena = Create(validate: true);
        nint block = arena.Allocate(3);
        uint page = (uint)((block - arena.BaseAddress) / 4096);
        arena.PageMap[page + 2].Flags = PageFlags.Head;
        var e = Assert.Throws<ArenaCorruptionException>(() => arena.Free(block));
        Assert.Contains("another block overlaps it", e.Message);
        arena.PageMap[page + 2].Flags = PageFlags.None;
        arena.Free(block);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_free_buddy_with_broken_links_is_reported()
    {
        using var arena = Create(validate: true);
        nint block = arena.Allocate(3);
        uint buddy = (uint)((block - arena.BaseAddress) / 4096) ^ 8;
        arena.PageMap[buddy].Prev = 77;
        var e = Assert.Throws<ArenaCorruptionException>(() => arena.Free(block));
        Assert.Contains("not properly linked", e.Message);
    }

    [Fact]
    public void Without_the_option_the_free_trusts_the_descriptors()
    {
        using var arena = Create(validate: false);
        nint block = arena.Allocate(3);
        uint page = (uint)((block - arena.BaseAddress) / 4096);
        arena.PageMap[page + 2].Flags = PageFlags.Head;
        arena.Free(block);
        Assert.Throws<ArenaCorruptionException>(arena.CheckInvariants);
    }
}

/// <summary>The expensive checks catch a broken list at the next list operation, not at the next full check.</summary>
public class ExpensiveChecksTests
{
    [Fact]
    public void A_free_block_whose_back_link_is_broken_is_caught_when_its_list_next_changes()
    {
#if !BUDDY_EXPENSIVE_CHECKS
        Assert.Skip("Built without -p:ExpensiveChecks=true; scripts/test.sh runs this class in that build.");
#endif
        using BuddyArena arena = Arenas.Small(threadCaches: false);
        nint a = arena.Allocate(0), b = arena.Allocate(0), c = arena.Allocate(0), d = arena.Allocate(0);
        arena.Free(a);
        arena.Free(c);
        uint head = arena.Zones[0].ListHead(0, Migratetype.Movable);
        arena.PageMap[head].Prev = head;
        // b merges with a, which unlinks a from the list whose head (c) now points back at itself.
        var e = Assert.Throws<ArenaCorruptionException>(() => arena.Free(b));
        Assert.Contains(e.Problems, p => p.Contains("is broken at page", StringComparison.Ordinal));
        _ = d;
    }
}
