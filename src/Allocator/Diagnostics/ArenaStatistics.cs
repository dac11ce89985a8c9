namespace Buddy;

/// <summary>A consistent snapshot of one zone, taken under its lock.</summary>
public sealed class ZoneStatistics
{
    private readonly long[] freeBlocks;
    private readonly long[] reportedBlocks;

    internal ZoneStatistics(Zone zone, int maxOrder, long cachedPages)
    {
        Index = zone.Index;
        StartPage = zone.StartPage;
        Pages = zone.Pages;
        // Pages in thread caches are free for users, though the zone has handed them out.
        CachedPages = cachedPages;
        FreePages = zone.FreePages + cachedPages;
        AllocatedPages = zone.AllocatedPages - cachedPages;
        PristinePages = zone.PristinePages;
        Allocations = zone.Allocations;
        Frees = zone.Frees;
        FailedAllocations = zone.FailedAllocations;
        MinWatermark = zone.MinWatermark;
        LowWatermark = zone.LowWatermark;
        MaxOrder = maxOrder;
        ReportingPages = zone.ReportingPages;
        HintedPages = zone.HintedPages();
        ZeroSkippedBytes = zone.ZeroSkippedBytes;
        SpinWaits = zone.SpinWaits;
        SpinTime = TimeSpan.FromTicks(zone.SpinTicks);
        LongestSpin = TimeSpan.FromTicks(zone.LongestSpinTicks);
        freeBlocks = new long[(maxOrder + 1) * Migratetypes.Count];
        reportedBlocks = new long[maxOrder + 1];
        for (int order = 0; order <= maxOrder; order++)
        {
            for (int type = 0; type < Migratetypes.Count; type++)
            {
                freeBlocks[order * Migratetypes.Count + type] = zone.BlockCount(order, (Migratetype)type);
                reportedBlocks[order] += zone.ReportedCount(order, (Migratetype)type);
            }
        }
    }

    /// <summary>The zone's index in the arena's zone table.</summary>
    public int Index { get; }
    /// <summary>The zone's first page, as a page index in the arena.</summary>
    public long StartPage { get; }
    /// <summary>Pages in the zone.</summary>
    public long Pages { get; }
    /// <summary>Free pages, pristine and thread-cached ones included.</summary>
    public long FreePages { get; }
    /// <summary>Free pages of this zone held in thread caches.</summary>
    public long CachedPages { get; }
    /// <summary>Pages allocated (blocks handed out or held by thread caches count as allocated in their zone).</summary>
    public long AllocatedPages { get; }
    /// <summary>Free pages in largest blocks never handed out since the arena was built.</summary>
    public long PristinePages { get; }
    /// <summary>Allocations served, ever.</summary>
    public long Allocations { get; }
    /// <summary>Frees, ever.</summary>
    public long Frees { get; }
    /// <summary>Allocations that found no block, ever.</summary>
    public long FailedAllocations { get; }
    internal long MinWatermark { get; }
    internal long LowWatermark { get; }
    /// <summary>The largest order.</summary>
    public int MaxOrder { get; }
    /// <summary>Free pages mid-report (isolated or marked in place).</summary>
    public long ReportingPages { get; }
    /// <summary>Free pages offered to the OS (MADV_FREE): it takes them only when it needs memory.</summary>
    public long HintedPages { get; }
    /// <summary>Bytes of zeroed allocations served from memory known to be zero, so not cleared.</summary>
    public long ZeroSkippedBytes { get; }
    /// <summary>Allocations that waited for a block to come back from a report.</summary>
    public long SpinWaits { get; }
    /// <summary>Time allocations spent waiting for blocks mid-report.</summary>
    public TimeSpan SpinTime { get; }
    /// <summary>The longest such wait.</summary>
    public TimeSpan LongestSpin { get; }

    /// <summary>Free blocks of one order that have been reported (their memory handed back to the OS).</summary>
    public long ReportedBlocks(int order) => reportedBlocks[order];

    /// <summary>Reported free pages, all orders.</summary>
    public long ReportedPages
    {
        get
        {
            long pages = 0;
            for (int order = 0; order <= MaxOrder; order++) pages += reportedBlocks[order] << order;
            return pages;
        }
    }

    /// <summary>Free blocks of one order on one migratetype's list (pristine blocks are on no list).</summary>
    public long FreeBlocks(int order, Migratetype type) => freeBlocks[order * Migratetypes.Count + (int)type];

    /// <summary>Free blocks of one order on any list, plus pristine blocks at the largest order.</summary>
    public long FreeBlocks(int order)
    {
        long sum = order == MaxOrder ? PristinePages >> MaxOrder : 0;
        for (int type = 0; type < Migratetypes.Count; type++) sum += FreeBlocks(order, (Migratetype)type);
        return sum;
    }

    /// <summary>Whether every counter and list count matches (tests compare a snapshot before and after a refused call).</summary>
    internal bool SameAs(ZoneStatistics? other) => other is not null
        && Index == other.Index && StartPage == other.StartPage && Pages == other.Pages
        && FreePages == other.FreePages && AllocatedPages == other.AllocatedPages && CachedPages == other.CachedPages
        && PristinePages == other.PristinePages && Allocations == other.Allocations
        && Frees == other.Frees && FailedAllocations == other.FailedAllocations
        && ReportingPages == other.ReportingPages && ZeroSkippedBytes == other.ZeroSkippedBytes
        && SpinWaits == other.SpinWaits && SpinTime == other.SpinTime
        && freeBlocks.AsSpan().SequenceEqual(other.freeBlocks)
        && reportedBlocks.AsSpan().SequenceEqual(other.reportedBlocks);
}

/// <summary>
/// The counters of zones whose sections went offline, kept so that counters exporters read as
/// monotonic never fall (an exporter reads a drop as a reset).
/// </summary>
internal struct OfflineZoneTotals
{
    public long Allocations, Frees, FailedAllocations, ZeroSkippedBytes, SpinWaits, SpinTicks, LongestSpinTicks;

    /// <summary>Adds a zone's counters (its lock held, or the zone out of every caller's reach).</summary>
    public void Add(Zone zone)
    {
        Allocations += zone.Allocations;
        Frees += zone.Frees;
        FailedAllocations += zone.FailedAllocations;
        ZeroSkippedBytes += zone.ZeroSkippedBytes;
        SpinWaits += zone.SpinWaits;
        SpinTicks += zone.SpinTicks;
        LongestSpinTicks = Math.Max(LongestSpinTicks, zone.LongestSpinTicks);
    }
}

/// <summary>Sections online, the most there may be, and how many were added and removed so far.</summary>
internal readonly record struct SectionCounts(int Online, int Maximum, long Added, long Removed, string? LastFailure);

/// <summary>Allocator statistics: totals over the online sections, and per-zone detail by order and migratetype.</summary>
public sealed class ArenaStatistics
{
    internal ArenaStatistics(int pageSize, int maxOrder, IReadOnlyList<ZoneStatistics> zones,
        long cacheAllocations, long cacheFrees, long cacheZeroSkippedBytes, SectionCounts sections, OfflineZoneTotals offline = default)
    {
        PageSize = pageSize;
        MaxOrder = maxOrder;
        OnlineSections = sections.Online;
        MaximumSections = sections.Maximum;
        SectionsAdded = sections.Added;
        SectionsRemoved = sections.Removed;
        LastSectionFailure = sections.LastFailure;
        Zones = zones;
        CacheAllocations = cacheAllocations;
        CacheFrees = cacheFrees;
        Allocations = cacheAllocations + offline.Allocations;
        Frees = cacheFrees + offline.Frees;
        ZeroSkippedBytes = cacheZeroSkippedBytes + offline.ZeroSkippedBytes;
        FailedAllocations = offline.FailedAllocations;
        SpinWaits = offline.SpinWaits;
        SpinTime = TimeSpan.FromTicks(offline.SpinTicks);
        LongestSpin = TimeSpan.FromTicks(offline.LongestSpinTicks);
        foreach (ZoneStatistics zone in zones)
        {
            TotalPages += zone.Pages;
            FreePages += zone.FreePages;
            AllocatedPages += zone.AllocatedPages;
            CachedPages += zone.CachedPages;
            PristinePages += zone.PristinePages;
            Allocations += zone.Allocations;
            Frees += zone.Frees;
            FailedAllocations += zone.FailedAllocations;
            ReportedPages += zone.ReportedPages;
            ReportingPages += zone.ReportingPages;
            HintedPages += zone.HintedPages;
            ZeroSkippedBytes += zone.ZeroSkippedBytes;
            SpinWaits += zone.SpinWaits;
            SpinTime += zone.SpinTime;
            if (zone.LongestSpin > LongestSpin) LongestSpin = zone.LongestSpin;
        }
    }

    /// <summary>Bytes in a page.</summary>
    public int PageSize { get; }
    /// <summary>The largest order.</summary>
    public int MaxOrder { get; }
    /// <summary>The zones of the online sections.</summary>
    public IReadOnlyList<ZoneStatistics> Zones { get; }
    /// <summary>Sections online.</summary>
    public int OnlineSections { get; }
    /// <summary>Sections the arena may have online at most.</summary>
    public int MaximumSections { get; }
    /// <summary>Sections brought online beyond the start size, ever.</summary>
    public long SectionsAdded { get; }
    /// <summary>Sections taken offline, ever.</summary>
    public long SectionsRemoved { get; }
    /// <summary>Why the last section that could not be added or taken offline failed, or null.</summary>
    public string? LastSectionFailure { get; }
    /// <summary>Pages online.</summary>
    public long TotalPages { get; }
    /// <summary>Free pages: on free lists, pristine, mid-report, or in thread caches.</summary>
    public long FreePages { get; }
    /// <summary>Pages allocated (blocks handed out or held by thread caches count as allocated in their zone).</summary>
    public long AllocatedPages { get; }
    /// <summary>Free pages held in thread caches (counted in <see cref="FreePages"/>).</summary>
    public long CachedPages { get; }
    /// <summary>Free pages in largest blocks never handed out.</summary>
    public long PristinePages { get; }
    /// <summary>Allocations and frees served by thread caches (counted in <see cref="Allocations"/> and <see cref="Frees"/>).</summary>
    public long CacheAllocations { get; }
    /// <summary>Frees taken by thread caches.</summary>
    public long CacheFrees { get; }
    /// <summary>Allocations served, ever.</summary>
    public long Allocations { get; }
    /// <summary>Frees, ever.</summary>
    public long Frees { get; }
    /// <summary>Allocations that found no block, ever.</summary>
    public long FailedAllocations { get; }
    /// <summary>Free pages whose memory was handed back to the OS.</summary>
    public long ReportedPages { get; }
    /// <summary>Free pages mid-report.</summary>
    public long ReportingPages { get; }
    /// <summary>Free pages offered to the OS (MADV_FREE), which takes them only when it needs memory.</summary>
    public long HintedPages { get; }
    /// <summary>Bytes of <see cref="HintedPages"/>.</summary>
    public long HintedBytes => HintedPages * PageSize;
    /// <summary>Bytes of zeroed allocations served from memory known to be zero.</summary>
    public long ZeroSkippedBytes { get; }
    /// <summary>Allocations that waited for a block mid-report.</summary>
    public long SpinWaits { get; }
    /// <summary>Time allocations spent waiting for blocks mid-report.</summary>
    public TimeSpan SpinTime { get; }
    /// <summary>The longest such wait.</summary>
    public TimeSpan LongestSpin { get; }

    /// <summary>Bytes of <see cref="ReportedPages"/>.</summary>
    public long ReportedBytes => ReportedPages * PageSize;

    /// <summary>Bytes online: the start size plus the sections added and not removed.</summary>
    public long OnlineBytes => TotalPages * PageSize;

    /// <summary>Reported free blocks of one order across zones.</summary>
    public long ReportedBlocks(int order) => Zones.Sum(z => z.ReportedBlocks(order));

    /// <summary>Bytes of <see cref="FreePages"/>.</summary>
    public long FreeBytes => FreePages * PageSize;
    /// <summary>Bytes of <see cref="AllocatedPages"/>.</summary>
    public long AllocatedBytes => AllocatedPages * PageSize;

    /// <summary>Free blocks of one order across zones (pristine blocks count at the largest order).</summary>
    public long FreeBlocks(int order) => Zones.Sum(z => z.FreeBlocks(order));

    /// <summary>Free blocks of one order and migratetype across zones.</summary>
    public long FreeBlocks(int order, Migratetype type) => Zones.Sum(z => z.FreeBlocks(order, type));

    /// <summary>Free pages in blocks of <paramref name="order"/> or larger.</summary>
    public long FreePagesAtOrAbove(int order)
    {
        long pages = 0;
        for (int o = order; o <= MaxOrder; o++) pages += FreeBlocks(o) << o;
        return pages;
    }

    /// <summary>Whether every counter of every zone matches (tests compare a snapshot before and after a refused call).</summary>
    internal bool SameAs(ArenaStatistics? other) => other is not null
        && PageSize == other.PageSize && MaxOrder == other.MaxOrder && Zones.Count == other.Zones.Count
        && Zones.Zip(other.Zones).All(pair => pair.First.SameAs(pair.Second))
        && OnlineSections == other.OnlineSections && SectionsAdded == other.SectionsAdded && SectionsRemoved == other.SectionsRemoved
        && CacheAllocations == other.CacheAllocations && CacheFrees == other.CacheFrees && ZeroSkippedBytes == other.ZeroSkippedBytes;
}
