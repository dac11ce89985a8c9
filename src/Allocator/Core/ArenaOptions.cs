using System.Diagnostics.CodeAnalysis;

namespace Buddy;

/// <summary>Where an arena's memory comes from.</summary>
public enum ArenaBacking
{
    /// <summary>NativeMemory.AlignedAlloc: ordinary heap memory; limited by the commit policy.</summary>
    AlignedAlloc,
    /// <summary>
    /// Reserved address space (mmap MAP_NORESERVE; VirtualAlloc on Windows), reserved once for
    /// <see cref="ArenaOptions.MaximumSize"/>: larger than RAM is fine.
    /// </summary>
    Reserve,
    /// <summary>
    /// One pinned <c>byte[]</c> per section, so blocks can be handed out as array-backed
    /// <see cref="Memory{T}"/> (<see cref="BuddyArena.GetArraySegment"/>). The GC counts each array as
    /// committed heap, so start small and let the arena grow.
    /// </summary>
    PinnedArray,
}

/// <summary>Shape of a <see cref="BuddyArena"/>. Every value is checked when the arena is built.</summary>
public sealed record ArenaOptions
{
    /// <summary>Tells arenas apart in metrics (the <c>buddy.arena</c> tag); null names it arena-N.</summary>
    public string? Name { get; init; }

    /// <summary>
    /// Bytes the arena starts with, which stay online for its lifetime: a positive multiple of
    /// <see cref="SectionSize"/> (and so of the largest block, PageSize &lt;&lt; MaxOrder).
    /// </summary>
    public long Size { get; init; } = 1L << 30;

    /// <summary>
    /// The most the arena may grow to, one section at a time, when an allocation finds nothing free:
    /// a multiple of <see cref="SectionSize"/>, at least <see cref="Size"/>. 0 means <see cref="Size"/>: never grows.
    /// </summary>
    public long MaximumSize { get; init; }

    /// <summary>
    /// Bytes per section, the unit brought online and taken offline: a positive multiple of the largest
    /// block that divides <see cref="Size"/>. 0 means <see cref="Size"/>: the arena is one section.
    /// </summary>
    public long SectionSize { get; init; }

    /// <summary>
    /// How long a section added beyond <see cref="Size"/> must stay entirely free before it goes
    /// offline. <see cref="Timeout.InfiniteTimeSpan"/> keeps sections online until
    /// <see cref="BuddyArena.RemoveFreeSections"/> is called.
    /// </summary>
    public TimeSpan SectionIdleTime { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Bytes per page: a power of two, at least the OS page size.</summary>
    public int PageSize { get; init; } = 4096;

    /// <summary>Largest block order: blocks are PageSize &lt;&lt; order bytes, 0 &lt;= order &lt;= MaxOrder.</summary>
    public int MaxOrder { get; init; } = 10;

    /// <summary>Order of a pageblock, the unit that carries a migratetype: at most MaxOrder.</summary>
    public int PageblockOrder { get; init; } = 9;

    /// <summary>Zones per section, each with its own lock; 0 picks one per processor, at least 64 MiB each.</summary>
    public int ZoneCount { get; init; }

    /// <summary>Where the memory comes from.</summary>
    public ArenaBacking Backing { get; init; } = ArenaBacking.AlignedAlloc;

    /// <summary>
    /// Percent of each zone kept back for <see cref="Migratetype.HighAtomic"/> requests (the min
    /// watermark), 0 to 50.
    /// </summary>
    public int AtomicReservePercent { get; init; }

    /// <summary>
    /// Keep per-thread caches of free blocks up to 2 MiB (Linux's per-CPU lists, kept per thread), so
    /// most allocations and frees take no lock, no interlocked operation and no split.
    /// </summary>
    public bool ThreadCaches { get; init; } = true;

    /// <summary>
    /// The most free memory one thread's cache holds, 64 KiB to 1 GiB; orders whose blocks exceed it
    /// (or 2 MiB) are not cached. Idle and exited threads' caches go home before report passes.
    /// </summary>
    public long CacheBytesPerThread { get; init; } = 4L << 20;

    /// <summary>
    /// Ask the kernel to back each section with transparent huge pages (madvise MADV_HUGEPAGE; Linux
    /// only, where THP is in <c>madvise</c> or <c>always</c> mode). A reporter of such an arena hints
    /// and reports no block below a pageblock (2 MiB at 4 KiB pages), so it never splits a huge page.
    /// </summary>
    public bool TransparentHugePages { get; init; }

    /// <summary>
    /// Fault a reported block of a pageblock or more back in with one MADV_POPULATE_WRITE call when it
    /// is handed out (Linux 5.14), instead of one fault per page as the caller first writes it.
    /// </summary>
    public bool PopulateReportedBlocks { get; init; }

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

    /// <summary>The transparent huge page a huge-page arena's reporter never splits (x64 and 4 KiB-page arm64).</summary>
    internal const long HugePageBytes = 2L << 20;

    internal long ResolvedSectionSize => SectionSize == 0 ? Size : SectionSize;

    internal long ResolvedMaximumSize => MaximumSize == 0 ? Size : MaximumSize;

    internal int StartSections => (int)(Size / ResolvedSectionSize);

    internal int MaximumSections => (int)(ResolvedMaximumSize / ResolvedSectionSize);

    /// <summary>
    /// Page indices reserved per section slot: a power of two, so a page's slot is one shift away.
    /// The indices past a section's pages are holes that cost only descriptor address space.
    /// </summary>
    internal int SectionIndexShift => 64 - System.Numerics.BitOperations.LeadingZeroCount((ulong)(ResolvedSectionSize / PageSize) - 1);

    /// <summary>Page indices in use: every slot but the last in full, the last up to its section's end.</summary>
    internal long IndexPages => ((long)(MaximumSections - 1) << SectionIndexShift) + ResolvedSectionSize / PageSize;

    /// <summary>Zone indices across every slot: the size of the zone table.</summary>
    internal const int MaxZoneSlots = 1 << 16;

    /// <summary>
    /// Checks every value, as building an arena does: throws an <see cref="ArgumentException"/> whose
    /// parameter name is the option that is wrong, and says what it must be.
    /// </summary>
    public void Validate() => FirstError()?.Throw();

    /// <summary>Checks every value without throwing: the first wrong one, by name and value, and what it must be.</summary>
    public bool TryValidate([NotNullWhen(false)] out OptionError? error) => (error = FirstError()) is null;

    private OptionError? FirstError()
    {
        if (PageSize < Environment.SystemPageSize || (PageSize & (PageSize - 1)) != 0)
            return new OptionError(nameof(PageSize), PageSize,
                $"PageSize must be a power of two of at least the OS page size ({Environment.SystemPageSize}).");
        if (MaxOrder is < 0 or > 20)
            return new OptionError(nameof(MaxOrder), MaxOrder, "MaxOrder must be between 0 and 20.");
        if (PageblockOrder < 0 || PageblockOrder > MaxOrder)
            return new OptionError(nameof(PageblockOrder), PageblockOrder, $"PageblockOrder must be between 0 and MaxOrder ({MaxOrder}).");
        if (Size <= 0 || Size % LargestBlockBytes != 0)
            return new OptionError(nameof(Size), Size,
                $"Size must be a positive multiple of the largest block ({LargestBlockBytes} bytes).");
        if (SectionSize < 0 || SectionSize % LargestBlockBytes != 0 || (SectionSize > 0 && Size % SectionSize != 0))
            return new OptionError(nameof(SectionSize), SectionSize,
                $"SectionSize must be 0 (one section of Size) or a positive multiple of the largest block ({LargestBlockBytes} bytes) that divides Size ({Size}).");
        if (MaximumSize != 0 && (MaximumSize < Size || MaximumSize % ResolvedSectionSize != 0))
            return new OptionError(nameof(MaximumSize), MaximumSize,
                $"MaximumSize must be 0 (never grow) or a multiple of the section size ({ResolvedSectionSize} bytes) of at least Size ({Size}).");
        if (ResolvedSectionSize / PageSize >= uint.MaxValue)
            return new OptionError(SectionSize == 0 ? nameof(Size) : nameof(SectionSize), ResolvedSectionSize, "A section must be under 2^32 pages.");
        if (ResolvedMaximumSize / ResolvedSectionSize > MaxZoneSlots || IndexPages >= uint.MaxValue)
            return new OptionError(nameof(MaximumSize), ResolvedMaximumSize,
                $"MaximumSize must be at most {MaxZoneSlots} sections and under 2^32 pages, counting each section but the last as {1L << SectionIndexShift} pages (its size rounded up to a power of two).");
        if (Backing == ArenaBacking.PinnedArray && ResolvedSectionSize + LargestBlockBytes > Array.MaxLength)
            return new OptionError(SectionSize == 0 ? nameof(Size) : nameof(SectionSize), ResolvedSectionSize,
                $"With PinnedArray backing, a section (SectionSize, or Size when SectionSize is 0) plus one largest block ({LargestBlockBytes} bytes, for alignment) must fit one array ({Array.MaxLength} bytes).");
        if (CacheBytesPerThread is < 64 << 10 or > 1L << 30)
            return new OptionError(nameof(CacheBytesPerThread), CacheBytesPerThread, "CacheBytesPerThread must be between 64 KiB and 1 GiB.");
        if (SectionIdleTime < TimeSpan.Zero && SectionIdleTime != Timeout.InfiniteTimeSpan)
            return new OptionError(nameof(SectionIdleTime), SectionIdleTime, "SectionIdleTime must be zero or more, or Timeout.InfiniteTimeSpan.");
        long largestBlocks = ResolvedSectionSize / LargestBlockBytes;
        if (ZoneCount < 0 || ZoneCount > Math.Min(largestBlocks, ushort.MaxValue))
            return new OptionError(nameof(ZoneCount), ZoneCount,
                $"ZoneCount must be between 0 (automatic) and the number of largest blocks per section ({Math.Min(largestBlocks, ushort.MaxValue)}).");
        // One section's zones always fit the table: only growth (MaximumSize) can ask for too many.
        if ((long)MaximumSections * ResolveZoneCount() > MaxZoneSlots)
            return new OptionError(nameof(MaximumSize), ResolvedMaximumSize,
                $"MaximumSize allows {MaximumSections} sections of {ResolveZoneCount()} zones; at most {MaxZoneSlots} zones in all. Use larger sections or fewer zones.");
        if (!Enum.IsDefined(Backing))
            return new OptionError(nameof(Backing), Backing, "Backing must be AlignedAlloc, Reserve or PinnedArray.");
        if (AtomicReservePercent is < 0 or > 50)
            return new OptionError(nameof(AtomicReservePercent), AtomicReservePercent, "AtomicReservePercent must be between 0 and 50.");
        if (Name is not null && string.IsNullOrWhiteSpace(Name))
            return new OptionError(nameof(Name), null, "Name must not be empty or white space; leave it null for an automatic name.");
        if (ReportWaitTimeout <= TimeSpan.Zero)
            return new OptionError(nameof(ReportWaitTimeout), ReportWaitTimeout, "ReportWaitTimeout must be positive.");
        // Blocks smaller than a huge page would be hinted and reported, splitting the huge pages under them.
        if (TransparentHugePages && LargestBlockBytes < HugePageBytes)
            return new OptionError(nameof(TransparentHugePages), TransparentHugePages,
                $"TransparentHugePages needs blocks of at least a huge page ({HugePageBytes} bytes); the largest block is {LargestBlockBytes} bytes (PageSize << MaxOrder).");
        return null;
    }

    /// <summary>Zones per section.</summary>
    internal int ResolveZoneCount()
    {
        if (ZoneCount > 0) return ZoneCount;
        long largestBlocks = ResolvedSectionSize / LargestBlockBytes;
        long byMemory = Math.Max(1, ResolvedSectionSize / (64L << 20));
        return (int)Math.Clamp(Math.Min(Environment.ProcessorCount, byMemory), 1, largestBlocks);
    }
}
