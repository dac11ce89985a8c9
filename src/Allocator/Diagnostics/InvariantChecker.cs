namespace Buddy;

/// <summary>Walks a zone (its lock held) and records every broken invariant it finds.</summary>
internal static class InvariantChecker
{
    private const int MaxProblems = 100;

    /// <summary>Every block on a thread cache's stacks is a Cached head of the stack's order; counts match.</summary>
    public static void CheckCache(ThreadCache cache, int index, int cachedOrders, PageMap map, Section?[] slots, List<string> problems)
    {
        long bytes = 0;
        for (int stack = 0; stack < cachedOrders * ThreadCache.Types; stack++)
        {
            int order = stack / ThreadCache.Types, count = 0;
            bytes += (long)cache.Count(stack) * map.PageSize << order;
            for (uint p = cache.Head(stack); p != PageDescriptor.None && problems.Count < MaxProblems; p = map[p].Next)
            {
                if (p >= map.TotalPages || ++count > cache.Count(stack))
                {
                    problems.Add($"thread cache {index} stack {stack}: broken or longer than its count {cache.Count(stack)}");
                    break;
                }
                if (slots[map.SlotOf(p)] is not { } section || p - section.FirstPage >= section.Pages)
                {
                    problems.Add($"thread cache {index} stack {stack}: page {p} lies in no online section");
                    break;
                }
                if ((map[p].Flags & (PageFlags.Cached | PageFlags.Buddy | PageFlags.Head)) != PageFlags.Cached || map[p].Order != order)
                    problems.Add($"thread cache {index} stack {stack}: page {p} has flags {map[p].Flags}, order {map[p].Order}");
            }
            if (count != cache.Count(stack)) problems.Add($"thread cache {index} stack {stack}: count is {cache.Count(stack)}, stack holds {count}");
        }
        if (bytes != cache.State.CachedBytes) problems.Add($"thread cache {index}: counts {cache.State.CachedBytes} bytes, its stacks hold {bytes}");
    }

    public static void CheckZone(Zone zone, PageMap map, List<string> problems, long cachedByCaches)
    {
        (long listedBlocks, long listedPages) = CheckLists(zone, map, problems);
        (long freeHeads, long freePages, long allocatedPages, long isolatedPages, long reportingPages, long cachedPages) = WalkBlocks(zone, map, problems);
        if (cachedByCaches != cachedPages)
            problems.Add($"zone {zone.Index}: thread caches count {cachedByCaches} pages, cached blocks hold {cachedPages}");
        if (zone.ReportingPages != reportingPages)
            problems.Add($"zone {zone.Index}: ReportingPages is {zone.ReportingPages}, blocks mid-report hold {reportingPages}");
        CheckIsolated(zone, map, problems, isolatedPages);
        for (uint p = zone.PristineStart; p < zone.EndPage && problems.Count < MaxProblems; p += map.LargestBlockPages)
            if (map[p].Flags != PageFlags.None) problems.Add($"zone {zone.Index}: pristine page {p} has flags {map[p].Flags}");
        if (freeHeads != listedBlocks)
            problems.Add($"zone {zone.Index}: {freeHeads} free block heads but {listedBlocks} blocks on lists");
        if (freePages - isolatedPages != listedPages)
            problems.Add($"zone {zone.Index}: {freePages - isolatedPages} listed free pages in blocks but {listedPages} pages on lists");
        if (zone.FreePages != freePages + zone.PristinePages)
            problems.Add($"zone {zone.Index}: FreePages is {zone.FreePages}, blocks and pristine hold {freePages + zone.PristinePages}");
        if (zone.AllocatedPages != allocatedPages)
            problems.Add($"zone {zone.Index}: AllocatedPages is {zone.AllocatedPages}, blocks hold {allocatedPages}");
        if (freePages + allocatedPages + zone.PristinePages != zone.Pages)
            problems.Add($"zone {zone.Index}: free {freePages} + allocated {allocatedPages} + pristine {zone.PristinePages} != total {zone.Pages}");
    }

    /// <summary>
    /// The zone's isolated list names exactly the blocks that are mid-report off the lists: an entry
    /// missing would hide a block from allocations waiting for one, an extra one would offer a block
    /// that is not there.
    /// </summary>
    private static void CheckIsolated(Zone zone, PageMap map, List<string> problems, long unlistedReportingPages)
    {
        var seen = new HashSet<uint>();
        long pages = 0;
        foreach (uint page in zone.IsolatedBlocks)
        {
            if (page < zone.StartPage || page >= zone.PristineStart || !seen.Add(page))
            {
                problems.Add($"zone {zone.Index}: isolated entry {page} lies outside the zone's used range or is listed twice");
                continue;
            }
            if ((map[page].Flags & (PageFlags.Reporting | PageFlags.Buddy)) != PageFlags.Reporting)
                problems.Add($"zone {zone.Index}: isolated entry {page} has flags {map[page].Flags}");
            else pages += 1L << map[page].Order;
        }
        if (pages != unlistedReportingPages)
            problems.Add($"zone {zone.Index}: the isolated list holds {pages} pages, blocks mid-report off the lists hold {unlistedReportingPages}");
    }

    private static (long Blocks, long Pages) CheckLists(Zone zone, PageMap map, List<string> problems)
    {
        long blocks = 0, pages = 0;
        for (int order = 0; order <= map.MaxOrder; order++)
        {
            for (int t = 0; t < Migratetypes.Count; t++)
            {
                var type = (Migratetype)t;
                string where = $"zone {zone.Index} list (order {order}, {type})";
                uint prev = PageDescriptor.None, firstHinted = PageDescriptor.None, firstReported = PageDescriptor.None;
                long count = 0, reported = 0, hinted = 0;
                for (uint p = zone.ListHead(order, type); p != PageDescriptor.None; p = map[p].Next)
                {
                    if (problems.Count >= MaxProblems) return (blocks, pages);
                    if (p < zone.StartPage || p >= zone.PristineStart)
                    {
                        problems.Add($"{where}: page {p} lies outside the zone's used range");
                        break;
                    }
                    if (++count > zone.Pages)
                    {
                        problems.Add($"{where}: cycle");
                        break;
                    }
                    ref PageDescriptor d = ref map[p];
                    if (d.Prev != prev) problems.Add($"{where}: page {p} prev is {d.Prev}, expected {prev}");
                    if ((d.Flags & PageFlags.Buddy) == 0 || (d.Flags & PageFlags.Head) != 0)
                        problems.Add($"{where}: page {p} has flags {d.Flags}");
                    if (d.Order != order) problems.Add($"{where}: page {p} has order {d.Order}");
                    if (d.List != type) problems.Add($"{where}: page {p} says it is on the {d.List} list");
                    if ((p & ((1u << order) - 1)) != 0) problems.Add($"{where}: page {p} is not aligned to its order");
                    if (map.PageblockType(p) != type)
                        problems.Add($"{where}: page {p} lies in a {map.PageblockType(p)} pageblock");
                    if ((d.Flags & PageFlags.Reported) != 0)
                    {
                        if (reported++ == 0) firstReported = p;
                    }
                    else if (reported > 0) problems.Add($"{where}: unreported page {p} follows a reported block");
                    if ((d.Flags & PageFlags.Hinted) != 0)
                    {
                        if (hinted++ == 0) firstHinted = p;
                    }
                    else if (hinted > 0 && (d.Flags & PageFlags.Reported) == 0) problems.Add($"{where}: fresh page {p} follows a hinted block");
                    if ((d.Flags & (PageFlags.Hinted | PageFlags.Reported)) == (PageFlags.Hinted | PageFlags.Reported))
                        problems.Add($"{where}: page {p} is both hinted and reported");
                    if ((d.Flags & (PageFlags.Reported | PageFlags.Reporting)) == (PageFlags.Reported | PageFlags.Reporting))
                        problems.Add($"{where}: page {p} is both reported and mid-report");
                    prev = p;
                }
                if (zone.ListTail(order, type) != prev) problems.Add($"{where}: tail is {zone.ListTail(order, type)}, last node is {prev}");
                if (count != zone.BlockCount(order, type)) problems.Add($"{where}: count is {zone.BlockCount(order, type)}, list holds {count}");
                if (reported != zone.ReportedCount(order, type)) problems.Add($"{where}: reported count is {zone.ReportedCount(order, type)}, list holds {reported}");
                if (hinted != zone.HintedCount(order, type)) problems.Add($"{where}: hinted count is {zone.HintedCount(order, type)}, list holds {hinted}");
                // Scans for work start at these: a stale one would skip a run or walk into the wrong one.
                if (firstHinted != zone.FirstHinted(order, type)) problems.Add($"{where}: the hinted run starts at {firstHinted}, its pointer says {zone.FirstHinted(order, type)}");
                if (firstReported != zone.FirstReported(order, type)) problems.Add($"{where}: the reported run starts at {firstReported}, its pointer says {zone.FirstReported(order, type)}");
                blocks += count;
                pages += count << order;
            }
        }
        return (blocks, pages);
    }

    private static (long FreeHeads, long FreePages, long AllocatedPages, long IsolatedPages, long ReportingPages, long CachedPages) WalkBlocks(
        Zone zone, PageMap map, List<string> problems)
    {
        long freeHeads = 0, freePages = 0, allocatedPages = 0, isolatedPages = 0, reportingPages = 0, cachedPages = 0;
        uint p = zone.StartPage;
        while (p < zone.PristineStart && problems.Count < MaxProblems)
        {
            ref PageDescriptor d = ref map[p];
            bool listed = (d.Flags & PageFlags.Buddy) != 0;
            bool reporting = (d.Flags & PageFlags.Reporting) != 0;
            bool free = listed || reporting;
            bool cached = (d.Flags & PageFlags.Cached) != 0;
            bool head = (d.Flags & PageFlags.Head) != 0 || cached;
            if (free == head)
            {
                problems.Add($"zone {zone.Index}: page {p} starts no block (flags {d.Flags})");
                p++;
                continue;
            }
            uint size = 1u << d.Order;
            if (d.Order > map.MaxOrder || (p & (size - 1)) != 0 || p + size > zone.PristineStart)
            {
                problems.Add($"zone {zone.Index}: block at page {p} of order {d.Order} is misaligned or overruns the zone");
                p++;
                continue;
            }
            if (free)
            {
                if (listed) freeHeads++;
                else isolatedPages += size;
                if (reporting) reportingPages += size;
                freePages += size;
                uint buddy = p ^ size;
                if (d.Order < map.MaxOrder && buddy > p && !reporting
                    && (map[buddy].Flags & (PageFlags.Buddy | PageFlags.Reporting)) == PageFlags.Buddy && map[buddy].Order == d.Order)
                    problems.Add($"zone {zone.Index}: free buddies at pages {p} and {buddy} (order {d.Order}) were not merged");
            }
            else
            {
                allocatedPages += size;
                if (cached) cachedPages += size;
            }
            for (uint t = p + 1; t < p + size; t++)
                if (map[t].Flags != PageFlags.None) problems.Add($"zone {zone.Index}: tail page {t} of block {p} has flags {map[t].Flags}");
            p += size;
        }
        return (freeHeads, freePages, allocatedPages, isolatedPages, reportingPages, cachedPages);
    }
}
