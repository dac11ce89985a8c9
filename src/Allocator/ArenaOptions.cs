namespace Buddy;

/// <summary>Where an arena's memory comes from.</summary>
public enum ArenaBacking
{
    /// <summary>NativeMemory.AlignedAlloc: ordinary heap memory; limited by the commit policy.</summary>
    AlignedAlloc,
    /// <summary>Reserved address space (mmap MAP_NORESERVE; VirtualAlloc on Windows): larger than RAM is fine.</summary>
    Reserve,
}

/// <summary>Shape of a <see cref="BuddyArena"/>. Every value is checked when the arena is built.</summary>
public sealed record ArenaOptions
{
    /// <summary>Tells arenas apart in metrics (the <c>buddy.arena</c> tag); null names it arena-N.</summary>
    public string? Name { get; init; }

    /// <summary>Arena size in bytes: a positive multiple of the largest block (PageSize &lt;&lt; MaxOrder).</summary>
    public long Size { get; init; } = 1L << 30;

    /// <summary>Bytes per page: a power of two, at least the OS page size.</summary>
    public int PageSize { get; init; } = 4096;

    /// <summary>Largest block order: blocks are PageSize &lt;&lt; order bytes, 0 &lt;= order &lt;= MaxOrder.</summary>
    public int MaxOrder { get; init; } = 10;

    /// <summary>Order of a pageblock, the unit that carries a migratetype: at most MaxOrder.</summary>
    public int PageblockOrder { get; init; } = 9;

    /// <summary>Number of zones, each with its own lock; 0 picks one per processor, at least 64 MiB each.</summary>
    public int ZoneCount { get; init; }

    /// <summary>Where the memory comes from.</summary>
    public ArenaBacking Backing { get; init; } = ArenaBacking.AlignedAlloc;

    /// <summary>
    /// Percent of each zone kept back for <see cref="Migratetype.HighAtomic"/> requests (the min
    /// watermark), 0 to 50.
    /// </summary>
    public int AtomicReservePercent { get; init; }

    /// <summary>Cache blocks of orders 0-3 per processor, so small allocations skip the zone lock and the split.</summary>
    public bool PerCpuLists { get; init; } = true;

    /// <summary>Group pageblocks by migratetype; false treats every request as Movable.</summary>
    public bool GroupByMobility { get; init; } = true;

    /// <summary>
    /// Debug option: fill freed blocks with a poison pattern and check it when they are handed out
    /// again, to catch writes after free. Reported blocks are accepted as zero without being read.
    /// </summary>
    public bool PoisonFreedMemory { get; init; }

    /// <summary>
    /// Debug option: on every free, also check the block's tail descriptors and its buddy's list
    /// links, to catch descriptor corruption at the free that meets it rather than later.
    /// </summary>
    public bool ValidateOnFree { get; init; }

    /// <summary>
    /// How long an allocation waits for a block that is mid-report when no other memory is free,
    /// before it gives up with a <see cref="TimeoutException"/>.
    /// </summary>
    public TimeSpan ReportWaitTimeout { get; init; } = TimeSpan.FromSeconds(30);

    internal long LargestBlockBytes => (long)PageSize << MaxOrder;

    internal void Validate()
    {
        if (PageSize < Environment.SystemPageSize || (PageSize & (PageSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(PageSize), PageSize,
                $"PageSize must be a power of two of at least the OS page size ({Environment.SystemPageSize}).");
        if (MaxOrder is < 0 or > 20)
            throw new ArgumentOutOfRangeException(nameof(MaxOrder), MaxOrder, "MaxOrder must be between 0 and 20.");
        if (PageblockOrder < 0 || PageblockOrder > MaxOrder)
            throw new ArgumentOutOfRangeException(nameof(PageblockOrder), PageblockOrder, $"PageblockOrder must be between 0 and MaxOrder ({MaxOrder}).");
        if (Size <= 0 || Size % LargestBlockBytes != 0)
            throw new ArgumentOutOfRangeException(nameof(Size), Size,
                $"Size must be a positive multiple of the largest block ({LargestBlockBytes} bytes).");
        if (Size / PageSize >= uint.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(Size), Size, "Size must be under 2^32 pages.");
        long largestBlocks = Size / LargestBlockBytes;
        if (ZoneCount < 0 || ZoneCount > Math.Min(largestBlocks, ushort.MaxValue))
            throw new ArgumentOutOfRangeException(nameof(ZoneCount), ZoneCount,
                $"ZoneCount must be between 0 (automatic) and the number of largest blocks ({Math.Min(largestBlocks, ushort.MaxValue)}).");
        if (!Enum.IsDefined(Backing))
            throw new ArgumentOutOfRangeException(nameof(Backing), Backing, "Backing must be AlignedAlloc or Reserve.");
        if (AtomicReservePercent is < 0 or > 50)
            throw new ArgumentOutOfRangeException(nameof(AtomicReservePercent), AtomicReservePercent, "AtomicReservePercent must be between 0 and 50.");
        if (Name is not null && string.IsNullOrWhiteSpace(Name))
            throw new ArgumentException("Name must not be empty or white space; leave it null for an automatic name.", nameof(Name));
        if (ReportWaitTimeout <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(ReportWaitTimeout), ReportWaitTimeout, "ReportWaitTimeout must be positive.");
    }

    internal int ResolveZoneCount()
    {
        if (ZoneCount > 0) return ZoneCount;
        long largestBlocks = Size / LargestBlockBytes;
        long byMemory = Math.Max(1, Size / (64L << 20));
        return (int)Math.Clamp(Math.Min(Environment.ProcessorCount, byMemory), 1, largestBlocks);
    }
}
