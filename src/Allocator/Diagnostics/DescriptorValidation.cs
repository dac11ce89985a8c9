namespace Buddy;

/// <summary>The heavier checks of <see cref="ArenaOptions.ValidateOnFree"/>, made under the zone lock.</summary>
internal static class DescriptorValidation
{
    /// <summary>Both checks, under the zone lock.</summary>
    public static void CheckBeforeFree(Zone zone, PageMap map, uint page, nint address)
    {
        CheckBlock(zone, map, page, address);
        CheckBuddyLinks(zone, map, page, address);
    }

    /// <summary>The block's own descriptors: needs no lock, since an allocated block's tails belong to its owner.</summary>
    public static void CheckBlock(Zone zone, PageMap map, uint page, nint address)
    {
        ref PageDescriptor head = ref map[page];
        uint size = 1u << head.Order;
        if (head.Order > map.MaxOrder || (page & (size - 1)) != 0 || page + size > zone.PristineStart)
            throw Corrupt(address, $"its descriptor claims order {head.Order}, which does not fit at page {page}");
        for (uint t = page + 1; t < page + size; t++)
            if (map[t].Flags != PageFlags.None)
                throw Corrupt(address, $"page {t - page} of the block carries {map[t].Flags}: another block overlaps it");
    }

    /// <summary>The free buddy's list links: needs the zone lock.</summary>
    private static void CheckBuddyLinks(Zone zone, PageMap map, uint page, nint address)
    {
        uint size = 1u << map[page].Order;
        if (map[page].Order >= map.MaxOrder) return;
        uint buddy = page ^ size;
        ref PageDescriptor other = ref map[buddy];
        if ((other.Flags & PageFlags.Buddy) == 0) return;
        if (other.Order > map.MaxOrder || (int)other.List >= Migratetypes.Count)
            throw Corrupt(address, $"its free buddy at page {buddy} has a broken descriptor (order {other.Order}, list {other.List})");
        bool linked = (other.Prev == PageDescriptor.None ? zone.ListHead(other.Order, other.List) == buddy : map[other.Prev].Next == buddy)
            && (other.Next == PageDescriptor.None ? zone.ListTail(other.Order, other.List) == buddy : map[other.Next].Prev == buddy);
        if (!linked) throw Corrupt(address, $"its free buddy at page {buddy} is not properly linked into its list");
    }

    private static ArenaCorruptionException Corrupt(nint address, string what)
        => new([$"Freeing the block at 0x{address:x}: {what}."]);
}
