using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// A contiguous, largest-block-aligned part of the arena with its own lock and free areas
/// (one list per order and migratetype). Every method here expects <see cref="Lock"/> held.
/// </summary>
internal sealed unsafe class Zone
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
    private readonly uint[] heads;
    private readonly uint[] tails;
    private readonly long[] blockCounts;

    /// <summary>
    /// Largest blocks from here to <see cref="EndPage"/> were never handed out: their descriptors are
    /// still zero and they sit on no list, so a fresh arena touches no descriptor memory.
    /// </summary>
    public uint PristineStart { get; private set; }

    /// <summary>Free pages, pristine ones included. Written under the lock; read racily to pick a zone.</summary>
    public long FreePages;
    public long AllocatedPages;
    public long Allocations;
    public long Frees;
    public long FailedAllocations;

    public Zone(int index, uint startPage, uint endPage, PageMap map, int atomicReservePercent)
    {
        Index = index;
        StartPage = startPage;
        EndPage = endPage;
        PristineStart = startPage;
        this.map = map;
        int lists = (map.MaxOrder + 1) * Migratetypes.Count;
        heads = new uint[lists];
        tails = new uint[lists];
        blockCounts = new long[lists];
        Array.Fill(heads, PageDescriptor.None);
        Array.Fill(tails, PageDescriptor.None);
        FreePages = Pages;
        MinWatermark = Pages * atomicReservePercent / 100;
        LowWatermark = MinWatermark + Pages / 64;
    }

    public long Pages => EndPage - StartPage;

    public long PristinePages => EndPage - PristineStart;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int ListIndex(int order, Migratetype type) => order * Migratetypes.Count + (int)type;

    public long BlockCount(int order, Migratetype type) => blockCounts[ListIndex(order, type)];

    public uint ListHead(int order, Migratetype type) => heads[ListIndex(order, type)];

    public uint ListTail(int order, Migratetype type) => tails[ListIndex(order, type)];

    /// <summary>
    /// Takes a block of <paramref name="order"/> for <paramref name="type"/>, leaving at least
    /// <paramref name="keepFree"/> pages free. Returns its first page, or <see cref="PageDescriptor.None"/>.
    /// </summary>
    public uint Allocate(int order, Migratetype type, long keepFree)
    {
        if (FreePages - (1L << order) < keepFree) return PageDescriptor.None;
        if (TakeFromList(order, type, out uint page, out int found)
            || TakePristine(type, out page, out found)
            || TakeFallback(order, type, out page, out found, out type))
        {
            if (found >= map.PageblockOrder) map.SetPageblockTypes(page, found, type);
            Split(page, found, order, type);
            ref PageDescriptor head = ref map[page];
            head.Flags = PageFlags.Head;
            head.Order = (byte)order;
            FreePages -= 1L << order;
            AllocatedPages += 1L << order;
            Allocations++;
            return page;
        }
        return PageDescriptor.None;
    }

    /// <summary>Returns an allocated block (already validated) and merges it with free buddies.</summary>
    public void Free(uint page, int order)
    {
        map[page].Flags = PageFlags.None;
        AllocatedPages -= 1L << order;
        FreePages += 1L << order;
        Frees++;
        while (order < map.MaxOrder)
        {
            uint buddy = page ^ (1u << order);
            ref PageDescriptor other = ref map[buddy];
            if ((other.Flags & PageFlags.Buddy) == 0 || other.Order != order) break;
            Unlink(buddy);
            other.Flags = PageFlags.None;
            page &= ~(1u << order);
            order++;
        }
        AddHead(page, order, map.PageblockType(page));
    }

    private bool TakeFromList(int order, Migratetype type, out uint page, out int found)
    {
        for (found = order; found <= map.MaxOrder; found++)
        {
            page = heads[ListIndex(found, type)];
            if (page != PageDescriptor.None)
            {
                Unlink(page);
                return true;
            }
        }
        page = PageDescriptor.None;
        return false;
    }

    private bool TakePristine(Migratetype type, out uint page, out int found)
    {
        found = map.MaxOrder;
        page = PristineStart;
        if (page >= EndPage) return false;
        PristineStart += map.LargestBlockPages;
        map.SetPageblockTypes(page, found, type);
        return true;
    }

    /// <summary>
    /// Steals from another migratetype, largest block first (Linux's __rmqueue_fallback). A large
    /// steal, or one for a long-lived type, claims the whole pageblock when half of it is free.
    /// </summary>
    private bool TakeFallback(int order, Migratetype type, out uint page, out int found, out Migratetype listType)
    {
        foreach (Migratetype fallback in Migratetypes.Fallbacks(type))
        {
            for (found = map.MaxOrder; found >= order; found--)
            {
                page = heads[ListIndex(found, fallback)];
                if (page == PageDescriptor.None) continue;
                bool claimWhole = found >= map.PageblockOrder
                    || ((found >= map.PageblockOrder / 2 || type != Migratetype.Movable) && TryClaimPageblock(page, type));
                listType = claimWhole ? type : fallback;
                Unlink(page);
                return true;
            }
        }
        page = PageDescriptor.None;
        found = 0;
        listType = type;
        return false;
    }

    /// <summary>Retypes a pageblock and moves its free blocks to the new lists, if at least half of it is free.</summary>
    private bool TryClaimPageblock(uint page, Migratetype type)
    {
        uint start = page & ~(map.PageblockPages - 1);
        uint end = start + map.PageblockPages;
        long free = 0;
        for (uint p = start; p < end; p += 1u << map[p].Order)
            if ((map[p].Flags & PageFlags.Buddy) != 0) free += 1L << map[p].Order;
        if (free * 2 < map.PageblockPages) return false;
        map.PageblockTypes[start >> map.PageblockOrder] = type;
        for (uint p = start; p < end; p += 1u << map[p].Order)
        {
            if ((map[p].Flags & PageFlags.Buddy) == 0) continue;
            Unlink(p);
            AddHead(p, map[p].Order, type);
        }
        return true;
    }

    /// <summary>Splits a block of order <paramref name="high"/> down to <paramref name="low"/>, freeing the upper halves.</summary>
    private void Split(uint page, int high, int low, Migratetype type)
    {
        while (high > low)
        {
            high--;
            AddHead(page + (1u << high), high, type);
        }
    }

    public void AddHead(uint page, int order, Migratetype type)
    {
        int list = ListIndex(order, type);
        ref PageDescriptor d = ref map[page];
        d.Flags = PageFlags.Buddy;
        d.Order = (byte)order;
        d.List = type;
        d.Prev = PageDescriptor.None;
        d.Next = heads[list];
        if (d.Next != PageDescriptor.None) map[d.Next].Prev = page;
        else tails[list] = page;
        heads[list] = page;
        blockCounts[list]++;
    }

    /// <summary>Removes a free block from its list; its flags are the caller's to change.</summary>
    public void Unlink(uint page)
    {
        ref PageDescriptor d = ref map[page];
        int list = ListIndex(d.Order, d.List);
        if (d.Prev != PageDescriptor.None) map[d.Prev].Next = d.Next;
        else heads[list] = d.Next;
        if (d.Next != PageDescriptor.None) map[d.Next].Prev = d.Prev;
        else tails[list] = d.Prev;
        d.Next = d.Prev = PageDescriptor.None;
        blockCounts[list]--;
    }
}
