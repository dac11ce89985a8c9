namespace Buddy;

/// <summary>A consistent snapshot of one zone, taken under its lock.</summary>
public sealed class ZoneStatistics : IEquatable<ZoneStatistics>
{
    private readonly long[] freeBlocks;

    internal ZoneStatistics(Zone zone, int maxOrder)
    {
        Index = zone.Index;
        StartPage = zone.StartPage;
        Pages = zone.Pages;
        FreePages = zone.FreePages;
        AllocatedPages = zone.AllocatedPages;
        PristinePages = zone.PristinePages;
        Allocations = zone.Allocations;
        Frees = zone.Frees;
        FailedAllocations = zone.FailedAllocations;
        MinWatermark = zone.MinWatermark;
        LowWatermark = zone.LowWatermark;
        MaxOrder = maxOrder;
        freeBlocks = new long[(maxOrder + 1) * Migratetypes.Count];
        for (int order = 0; order <= maxOrder; order++)
            for (int type = 0; type < Migratetypes.Count; type++)
                freeBlocks[order * Migratetypes.Count + type] = zone.BlockCount(order, (Migratetype)type);
    }

    public int Index { get; }
    public long StartPage { get; }
    public long Pages { get; }
    /// <summary>Free pages, pristine ones included.</summary>
    public long FreePages { get; }
    public long AllocatedPages { get; }
    /// <summary>Free pages in largest blocks never handed out since the arena was built.</summary>
    public long PristinePages { get; }
    public long Allocations { get; }
    public long Frees { get; }
    public long FailedAllocations { get; }
    public long MinWatermark { get; }
    public long LowWatermark { get; }
    public int MaxOrder { get; }

    /// <summary>Free blocks of one order on one migratetype's list (pristine blocks are on no list).</summary>
    public long FreeBlocks(int order, Migratetype type) => freeBlocks[order * Migratetypes.Count + (int)type];

    /// <summary>Free blocks of one order on any list, plus pristine blocks at the largest order.</summary>
    public long FreeBlocks(int order)
    {
        long sum = order == MaxOrder ? PristinePages >> MaxOrder : 0;
        for (int type = 0; type < Migratetypes.Count; type++) sum += FreeBlocks(order, (Migratetype)type);
        return sum;
    }

    public bool Equals(ZoneStatistics? other) => other is not null
        && Index == other.Index && StartPage == other.StartPage && Pages == other.Pages
        && FreePages == other.FreePages && AllocatedPages == other.AllocatedPages
        && PristinePages == other.PristinePages && Allocations == other.Allocations
        && Frees == other.Frees && FailedAllocations == other.FailedAllocations
        && freeBlocks.AsSpan().SequenceEqual(other.freeBlocks);

    public override bool Equals(object? obj) => Equals(obj as ZoneStatistics);

    public override int GetHashCode() => HashCode.Combine(Index, FreePages, AllocatedPages, Allocations, Frees);
}

/// <summary>Allocator statistics: totals and per-zone detail by order and migratetype.</summary>
public sealed class ArenaStatistics : IEquatable<ArenaStatistics>
{
    internal ArenaStatistics(int pageSize, int maxOrder, IReadOnlyList<ZoneStatistics> zones)
    {
        PageSize = pageSize;
        MaxOrder = maxOrder;
        Zones = zones;
        foreach (ZoneStatistics zone in zones)
        {
            TotalPages += zone.Pages;
            FreePages += zone.FreePages;
            AllocatedPages += zone.AllocatedPages;
            PristinePages += zone.PristinePages;
            Allocations += zone.Allocations;
            Frees += zone.Frees;
            FailedAllocations += zone.FailedAllocations;
        }
    }

    public int PageSize { get; }
    public int MaxOrder { get; }
    public IReadOnlyList<ZoneStatistics> Zones { get; }
    public long TotalPages { get; }
    public long FreePages { get; }
    public long AllocatedPages { get; }
    public long PristinePages { get; }
    public long Allocations { get; }
    public long Frees { get; }
    public long FailedAllocations { get; }

    public long FreeBytes => FreePages * PageSize;
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

    public bool Equals(ArenaStatistics? other) => other is not null
        && PageSize == other.PageSize && MaxOrder == other.MaxOrder && Zones.SequenceEqual(other.Zones);

    public override bool Equals(object? obj) => Equals(obj as ArenaStatistics);

    public override int GetHashCode() => HashCode.Combine(TotalPages, FreePages, AllocatedPages, Allocations);
}
