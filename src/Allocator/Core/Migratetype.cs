namespace Buddy;

/// <summary>
/// What an allocation's lifetime is expected to be. Pageblocks are grouped by migratetype so that
/// long-lived blocks do not pin every large free region, and large free blocks keep forming.
/// </summary>
public enum Migratetype : byte
{
    /// <summary>Long-lived allocations.</summary>
    Unmovable = 0,
    /// <summary>Short-lived allocations: the default.</summary>
    Movable = 1,
    /// <summary>Caches the owner can drop under pressure.</summary>
    Reclaimable = 2,
    /// <summary>Must-not-fail allocations; may dip below the zone's minimum watermark.</summary>
    HighAtomic = 3,
}

internal static class Migratetypes
{
    /// <summary>Pageblocks taken out of service: never allocated from and never a fallback. Callers cannot name it.</summary>
    public const Migratetype Isolate = (Migratetype)4;

    public const int Count = 5;

    private static readonly Migratetype[][] FallbackTable =
    [
        [Migratetype.Reclaimable, Migratetype.Movable, Migratetype.HighAtomic],
        [Migratetype.Reclaimable, Migratetype.Unmovable, Migratetype.HighAtomic],
        [Migratetype.Unmovable, Migratetype.Movable, Migratetype.HighAtomic],
        [Migratetype.Unmovable, Migratetype.Reclaimable, Migratetype.Movable],
        [],
    ];

    /// <summary>The lists an allocation of <paramref name="type"/> steals from, in order (Linux's fallbacks[]).</summary>
    public static ReadOnlySpan<Migratetype> Fallbacks(Migratetype type) => FallbackTable[(int)type];

    public static bool IsAllocatable(Migratetype type) => type is >= Migratetype.Unmovable and <= Migratetype.HighAtomic;
}
