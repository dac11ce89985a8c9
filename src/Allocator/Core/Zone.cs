using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// A contiguous, largest-block-aligned part of the arena with its own lock and free areas
/// (one list per order and migratetype). Every method here expects <see cref="Lock"/> held.
/// Each list holds three runs, in the order they are handed out: fresh blocks (frees go to the
/// head), then hinted ones (their memory offered to the OS, which takes it only when it needs it),
/// then reported ones (handed back; at the tail). A scan from the head for work stops where the run
/// it wants ends, and an allocation takes the block that costs least to reuse.
/// </summary>
internal sealed unsafe partial class Zone
{
    public readonly int Index;
    public readonly uint StartPage;
    public readonly uint EndPage;
    public readonly Lock Lock = new();

    /// <summary>Pages kept back for HighAtomic requests.</summary>
    public readonly long MinWatermark;
    /// <summary>Below this, allocations try other zones first.</summary>
    public readonly long LowWatermark;

    private readonly PageMap map;
    /// <summary>What a block carved from the pristine range knows of its memory.</summary>
    private readonly PageFlags pristineMemory;
    private readonly bool poisonPristine;
    private readonly uint[] heads;
    private readonly uint[] tails;
    private readonly long[] blockCounts;
    private readonly long[] reportedCounts;
    private readonly long[] hintedCounts;
    /// <summary>Each list's first hinted and first reported block, where their runs begin (None: empty run).</summary>
    private readonly uint[] firstHinted;
    private readonly uint[] firstReported;

    /// <summary>
    /// Largest blocks from here to <see cref="EndPage"/> were never handed out: their descriptors are
    /// still zero and they sit on no list, so a fresh arena touches no descriptor memory.
    /// </summary>
    public uint PristineStart { get; private set; }

    /// <summary>Free pages, pristine and isolated ones included. Written under the lock; read racily to pick a zone.</summary>
    public long FreePages;
    public long AllocatedPages;
    public long Allocations;
    public long Frees;
    public long FailedAllocations;
    public long ZeroSkippedBytes;
    /// <summary>Blocks taken, for allocations and thread cache refills alike: tells an idle section from a busy one.</summary>
    public long Takes;
    /// <summary>
    /// Advanced by the reporter halfway through each delay, under the lock: blocks freed in the current
    /// round are younger than half a delay and wait for the next pass.
    /// </summary>
    public ushort Round;

    public Zone(int index, uint startPage, uint endPage, PageMap map, ArenaOptions options)
    {
        Index = index;
        StartPage = startPage;
        EndPage = endPage;
        PristineStart = startPage;
        this.map = map;
        // Reserved memory starts as zero pages. With poisoning on, every free page is poisoned, so
        // merges never mix poisoned and unknown memory.
        poisonPristine = options.PoisonFreedMemory;
        pristineMemory = poisonPristine ? PageFlags.Poisoned
            : options.Backing == ArenaBacking.Reserve ? PageFlags.Zeroed : PageFlags.None;
        int lists = (map.MaxOrder + 1) * Migratetypes.Count;
        heads = new uint[lists];
        tails = new uint[lists];
        blockCounts = new long[lists];
        reportedCounts = new long[lists];
        hintedCounts = new long[lists];
        firstHinted = new uint[lists];
        firstReported = new uint[lists];
        Array.Fill(heads, PageDescriptor.None);
        Array.Fill(tails, PageDescriptor.None);
        Array.Fill(firstHinted, PageDescriptor.None);
        Array.Fill(firstReported, PageDescriptor.None);
        FreePages = Pages;
        MinWatermark = Pages * options.AtomicReservePercent / 100;
        // A margin of 1/64 of the zone (4 MiB of 256) above the reserve: a zone that dips below it sends
        // allocations to its neighbours first, so one zone does not run dry while others sit free.
        LowWatermark = MinWatermark + Pages / 64;
    }

    public long Pages => EndPage - StartPage;

    public long PristinePages => EndPage - PristineStart;

    /// <summary>Every method of a zone runs under its lock.</summary>
    [Conditional("DEBUG")]
    private void AssertLocked() => Debug.Assert(Lock.IsHeldByCurrentThread, $"zone {Index} lock not held");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ListIndex(int order, Migratetype type) => order * Migratetypes.Count + (int)type;

    public long BlockCount(int order, Migratetype type) => blockCounts[ListIndex(order, type)];

    public long ReportedCount(int order, Migratetype type) => reportedCounts[ListIndex(order, type)];

    public long HintedCount(int order, Migratetype type) => hintedCounts[ListIndex(order, type)];

    /// <summary>The first hinted block of a list, or None: where a scan for hinted blocks starts.</summary>
    public uint FirstHinted(int order, Migratetype type) => firstHinted[ListIndex(order, type)];

    /// <summary>The first reported block of a list, or None.</summary>
    public uint FirstReported(int order, Migratetype type) => firstReported[ListIndex(order, type)];

    public uint ListHead(int order, Migratetype type) => heads[ListIndex(order, type)];

    public uint ListTail(int order, Migratetype type) => tails[ListIndex(order, type)];

    /// <summary>
    /// Takes a free block of <paramref name="order"/> for <paramref name="type"/> off the lists,
    /// leaving at least <paramref name="keepFree"/> pages free. The block counts as allocated from
    /// here on; its owner marks it with <see cref="HandOut"/> or <see cref="HandToCache"/>.
    /// </summary>
    public TakenBlock Take(int order, Migratetype type, long keepFree)
    {
        AssertLocked();
        if (Isolated || FreePages - (1L << order) < keepFree) return TakenBlock.Nothing;
        if (TakeFromList(order, type, out uint page, out int found, out uint busyPage)
            || (busyPage == PageDescriptor.None && TakePristine(type, out page, out found))
            || (busyPage == PageDescriptor.None && TakeFallback(order, type, out page, out found, out type, out busyPage)))
        {
            PageFlags memory = map[page].Flags & PageStates.Memory;
            if (found >= map.PageblockOrder) map.SetPageblockTypes(page, found, type);
            Split(page, found, order, type, memory, map[page].FreedInRound);
            ref PageDescriptor head = ref map[page];
            head.Flags = PageFlags.None;
            head.Order = (byte)order;
            FreePages -= 1L << order;
            AllocatedPages += 1L << order;
            Takes++;
            return new TakenBlock(page, memory, PageDescriptor.None);
        }
        return new TakenBlock(PageDescriptor.None, PageFlags.None, busyPage);
    }

    /// <summary>Marks a block from <see cref="Take"/> as its caller's.</summary>
    public void HandOut(uint page, bool zeroed, PageFlags memory)
    {
        AssertLocked();
        ref PageDescriptor head = ref map[page];
        Debug.Assert(head.Flags == PageFlags.None, "only a block just taken is handed out");
        head.Flags = PageFlags.Head;
        Allocations++;
        if (zeroed && (memory & PageFlags.Zeroed) != 0) ZeroSkippedBytes += (long)map.PageSize << head.Order;
    }

    /// <summary>Marks a block from <see cref="Take"/> as held by a thread cache: allocated here, free in the cache.</summary>
    public void HandToCache(uint page, PageFlags memory)
    {
        AssertLocked();
        Debug.Assert(map[page].Flags == PageFlags.None, "only a block just taken goes to a cache");
        map[page].Flags = PageFlags.Cached | memory;
    }

    /// <summary>
    /// Returns an allocated block (already validated), or one drained from a thread cache.
    /// Returns the order of the free block it became part of. <paramref name="aged"/>: the block was
    /// freed before this round began (it sat in an idle or exited thread's cache), so a timed pass may take it.
    /// </summary>
    public int Free(uint page, int order, PageFlags memory, bool fromCache = false, bool aged = false)
    {
        AssertLocked();
        Debug.Assert(AllocatedPages >= 1L << order, "freeing more than the zone has allocated");
        AllocatedPages -= 1L << order;
        FreePages += 1L << order;
        if (!fromCache) Frees++;
        return MergeAndAdd(page, order, memory, aged ? (ushort)(Round - 1) : Round);
    }

    /// <summary>
    /// Merges a free block with free buddies (never with one mid-report) and lists it. A merged block
    /// keeps a memory state only when both halves have it: reported plus fresh is fresh, and given
    /// back in either way (hinted plus reported) is hinted; it is as young as its younger half.
    /// </summary>
    private int MergeAndAdd(uint page, int order, PageFlags memory, ushort round)
    {
        AssertLocked();
        while (order < map.MaxOrder)
        {
            uint buddy = page ^ (1u << order);
            ref PageDescriptor other = ref map[buddy];
            if ((other.Flags & (PageFlags.Buddy | PageFlags.Reporting)) != PageFlags.Buddy || other.Order != order) break;
            bool givenBack = IsGivenBack(memory) && IsGivenBack(other.Flags);
            memory &= other.Flags;
            if (givenBack && (memory & PageFlags.Reported) == 0) memory |= PageFlags.Hinted;
            round = Younger(round, other.FreedInRound);
            Unlink(buddy);
            other.Flags = PageFlags.None;
            map[page].Flags = PageFlags.None;
            page &= ~(1u << order);
            order++;
        }
        AddFree(page, order, map.PageblockType(page), memory & PageStates.Memory, round);
        return order;
    }

    private static bool IsGivenBack(PageFlags flags) => (flags & (PageFlags.Hinted | PageFlags.Reported)) != 0;

    /// <summary>The later of two rounds, across the counter's wrap.</summary>
    private static ushort Younger(ushort a, ushort b) => (short)(a - b) >= 0 ? a : b;

    private bool TakeFromList(int order, Migratetype type, out uint page, out int found, out uint busyPage)
    {
        busyPage = PageDescriptor.None;
        for (found = order; found <= map.MaxOrder; found++)
        {
            int list = ListIndex(found, type);
            page = heads[list];
            if (page == PageDescriptor.None) continue;
            // Fresh first; with none, the youngest hinted block: the kernel takes lazily freed memory oldest
            // first, so the one offered last is the likeliest still there (the report tier takes the oldest).
            if ((map[page].Flags & PageFlags.Hinted) != 0) page = YoungestHinted(list);
            if (IsBusy(page, out busyPage)) return false;
            Unlink(page);
            return true;
        }
        page = PageDescriptor.None;
        return false;
    }

    /// <summary>The last block of a list's hinted run, which is not empty: just before the reported run, or the tail.</summary>
    private uint YoungestHinted(int list)
    {
        uint page = firstReported[list] != PageDescriptor.None ? map[firstReported[list]].Prev : tails[list];
        Debug.Assert(page != PageDescriptor.None && (map[page].Flags & PageFlags.Hinted) != 0, "the hinted run ends before the reported one");
        return page;
    }

    private bool IsBusy(uint page, out uint busyPage)
    {
        busyPage = (map[page].Flags & PageFlags.Reporting) != 0 ? page : PageDescriptor.None;
        return busyPage != PageDescriptor.None;
    }

    private bool TakePristine(Migratetype type, out uint page, out int found)
    {
        found = map.MaxOrder;
        page = PristineStart;
        if (page >= EndPage) return false;
        PristineStart += map.LargestBlockPages;
        map.SetPageblockTypes(page, found, type);
        if (poisonPristine) NativeMemory.Fill((void*)map.AddressOf(page), (nuint)map.PageSize << found, PageMap.Poison);
        map[page].Flags = pristineMemory;
        return true;
    }

    /// <summary>
    /// Steals from another migratetype, largest block first (Linux's __rmqueue_fallback). A large
    /// steal, or one for a long-lived type, claims the whole pageblock when half of it is free.
    /// </summary>
    private bool TakeFallback(int order, Migratetype type, out uint page, out int found, out Migratetype listType, out uint busyPage)
    {
        listType = type;
        busyPage = PageDescriptor.None;
        foreach (Migratetype fallback in Migratetypes.Fallbacks(type))
        {
            for (found = map.MaxOrder; found >= order; found--)
            {
                page = heads[ListIndex(found, fallback)];
                if (page == PageDescriptor.None) continue;
                if (IsBusy(page, out busyPage)) return false;
                bool claimWhole = found >= map.PageblockOrder
                    || ((found >= map.PageblockOrder / 2 || type != Migratetype.Movable) && TryClaimPageblock(page, type));
                listType = claimWhole ? type : fallback;
                Unlink(page);
                return true;
            }
        }
        page = PageDescriptor.None;
        found = 0;
        return false;
    }

    /// <summary>Retypes a pageblock and moves its listed free blocks, if at least half of it is free.</summary>
    private bool TryClaimPageblock(uint page, Migratetype type)
    {
        uint start = page & ~(map.PageblockPages - 1);
        uint end = start + map.PageblockPages;
        long free = 0;
        for (uint p = start; p < end; p += 1u << map[p].Order)
            if ((map[p].Flags & (PageFlags.Buddy | PageFlags.Reporting)) != 0) free += 1L << map[p].Order;
        if (free * 2 < map.PageblockPages) return false;
        map.PageblockTypes[start >> map.PageblockOrder] = type;
        for (uint p = start; p < end; p += 1u << map[p].Order)
        {
            PageFlags flags = map[p].Flags;
            if ((flags & PageFlags.Buddy) == 0) continue;
            Unlink(p);
            AddFree(p, map[p].Order, type, flags & ~PageFlags.Buddy, map[p].FreedInRound);
        }
        return true;
    }

    /// <summary>Splits a block of order <paramref name="high"/> down to <paramref name="low"/>, listing the upper halves.</summary>
    private void Split(uint page, int high, int low, Migratetype type, PageFlags memory, ushort round)
    {
        while (high > low)
        {
            high--;
            AddFree(page + (1u << high), high, type, memory, round);
        }
    }

    /// <summary>Lists a free block: reported at the tail, hinted at the end of the hinted run, fresh at the head.</summary>
    private void AddFree(uint page, int order, Migratetype type, PageFlags state, ushort round)
    {
        Debug.Assert((page & ((1u << order) - 1)) == 0 && page >= StartPage && page + (1u << order) <= PristineStart,
            "a free block is aligned to its order and lies in the zone's carved range");
        int list = ListIndex(order, type);
        ref PageDescriptor d = ref map[page];
        d.Flags = PageFlags.Buddy | state;
        d.Order = (byte)order;
        d.List = type;
        d.FreedInRound = round;
        Debug.Assert((state & (PageFlags.Hinted | PageFlags.Reported)) != (PageFlags.Hinted | PageFlags.Reported), "a block is hinted or reported, not both");
        if ((state & PageFlags.Reported) != 0)
        {
            InsertBefore(PageDescriptor.None, page, list);
            if (firstReported[list] == PageDescriptor.None) firstReported[list] = page;
            reportedCounts[list]++;
        }
        else if ((state & PageFlags.Hinted) != 0)
        {
            InsertBefore(firstReported[list], page, list);
            if (firstHinted[list] == PageDescriptor.None) firstHinted[list] = page;
            hintedCounts[list]++;
        }
        else
        {
            d.Prev = PageDescriptor.None;
            d.Next = heads[list];
            if (d.Next != PageDescriptor.None) map[d.Next].Prev = page;
            else tails[list] = page;
            heads[list] = page;
        }
        blockCounts[list]++;
        CheckList(list);
    }

    /// <summary>Links <paramref name="page"/> in before <paramref name="next"/> (None: at the tail).</summary>
    private void InsertBefore(uint next, uint page, int list)
    {
        ref PageDescriptor d = ref map[page];
        d.Next = next;
        d.Prev = next == PageDescriptor.None ? tails[list] : map[next].Prev;
        if (d.Prev != PageDescriptor.None) map[d.Prev].Next = page;
        else heads[list] = page;
        if (next != PageDescriptor.None) map[next].Prev = page;
        else tails[list] = page;
    }

    /// <summary>Removes a free block from its list; its flags are the caller's to change.</summary>
    private void Unlink(uint page)
    {
        ref PageDescriptor d = ref map[page];
        Debug.Assert((d.Flags & PageFlags.Buddy) != 0, "only a listed free block is unlinked");
        int list = ListIndex(d.Order, d.List);
        // A run's first block gives way to the next, if the next is of the same run.
        if (firstReported[list] == page) firstReported[list] = d.Next;
        if (firstHinted[list] == page)
            firstHinted[list] = d.Next != PageDescriptor.None && (map[d.Next].Flags & PageFlags.Hinted) != 0 ? d.Next : PageDescriptor.None;
        if (d.Prev != PageDescriptor.None) map[d.Prev].Next = d.Next;
        else heads[list] = d.Next;
        if (d.Next != PageDescriptor.None) map[d.Next].Prev = d.Prev;
        else tails[list] = d.Prev;
        d.Next = d.Prev = PageDescriptor.None;
        blockCounts[list]--;
        if ((d.Flags & PageFlags.Reported) != 0) reportedCounts[list]--;
        if ((d.Flags & PageFlags.Hinted) != 0) hintedCounts[list]--;
        CheckList(list);
    }

    /// <summary>
    /// The expensive checks (built with <c>-p:ExpensiveChecks=true</c>): after every list operation the
    /// whole list is walked. Each block is listed once, linked both ways, a free head of the list's
    /// order and type; the runs come fresh, hinted, reported, each beginning where its pointer says;
    /// the counts match the walk.
    /// </summary>
    [Conditional("BUDDY_EXPENSIVE_CHECKS")]
    private void CheckList(int list)
    {
        long count = 0, reported = 0, hinted = 0;
        uint previous = PageDescriptor.None, hintedSeen = PageDescriptor.None, reportedSeen = PageDescriptor.None;
        int run = 0;
        for (uint page = heads[list]; page != PageDescriptor.None; page = map[page].Next)
        {
            ref PageDescriptor d = ref map[page];
            int blockRun = RunOf(d.Flags);
            if ((d.Flags & PageFlags.Buddy) == 0 || ListIndex(d.Order, d.List) != list || d.Prev != previous
                || blockRun < run || ++count > blockCounts[list])
                throw new ArenaCorruptionException([$"zone {Index}: list {list} is broken at page {page} (flags {d.Flags}, order {d.Order}, after {previous})"]);
            if (blockRun == 1 && run < 1) hintedSeen = page;
            if (blockRun == 2 && run < 2) reportedSeen = page;
            run = blockRun;
            if (blockRun == 1) hinted++;
            if (blockRun == 2) reported++;
            previous = page;
        }
        if (previous != tails[list] || count != blockCounts[list] || reported != reportedCounts[list] || hinted != hintedCounts[list]
            || hintedSeen != firstHinted[list] || reportedSeen != firstReported[list])
            throw new ArenaCorruptionException([$"zone {Index}: list {list} holds {count} blocks ({hinted} hinted from {hintedSeen}, {reported} reported from {reportedSeen}), "
                + $"its counts say {blockCounts[list]} ({hintedCounts[list]} from {firstHinted[list]}, {reportedCounts[list]} from {firstReported[list]})"]);
    }

    /// <summary>Which run of a list a block belongs in: 0 fresh, 1 hinted, 2 reported.</summary>
    private static int RunOf(PageFlags flags) => (flags & PageFlags.Reported) != 0 ? 2 : (flags & PageFlags.Hinted) != 0 ? 1 : 0;
}

/// <summary>
/// What <see cref="Zone.Take"/> found: a block and what is known of its memory, or no block and,
/// when the choice was a block mid-report in place, that block to wait for.
/// </summary>
internal readonly record struct TakenBlock(uint Page, PageFlags Memory, uint BusyPage)
{
    public static readonly TakenBlock Nothing = new(PageDescriptor.None, PageFlags.None, PageDescriptor.None);

    public bool Found => Page != PageDescriptor.None;
}
