using Buddy.Interop;

namespace Buddy;

/// <summary>How much of the memory the hint tier offered the OS is still there: what RSS alone no longer tells.</summary>
public sealed partial class BuddyArena
{
    /// <summary>
    /// Bytes of hinted free blocks whose pages are still resident: memory offered to the OS (MADV_FREE,
    /// MEM_RESET) that the OS has not taken. <see cref="ArenaStatistics.HintedBytes"/> minus this is
    /// what it took. Read with mincore (QueryWorkingSetEx on Windows), one call per hinted block, so
    /// it is for diagnostics, not for a hot path. A sample: each zone's hinted blocks are listed under
    /// its lock and measured after, so a block reused in between counts as it then is.
    /// </summary>
    public long MeasureHintedResidentBytes()
    {
        using (gate.Enter())
        // Sections stay online while their blocks are measured: an offline one may be unmapped.
        lock (sectionLock)
        {
            var blocks = new List<(uint Page, int Order)>();
            long residentPages = 0;
            foreach (Zone zone in online.Zones)
            {
                blocks.Clear();
                lock (zone.Lock) zone.CollectHinted(blocks);
                foreach ((uint page, int order) in blocks)
                    residentPages += VirtualMemory.CountResidentPages(AddressOf(page), (nuint)BytesOf(order));
            }
            // Counted in the OS's pages, which need not be the arena's.
            return residentPages * VirtualMemory.PageSize;
        }
    }
}
