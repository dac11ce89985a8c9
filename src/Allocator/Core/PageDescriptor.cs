using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>State bits of a page descriptor. Only block heads carry flags; tail pages carry none.</summary>
[Flags]
internal enum PageFlags : uint
{
    None = 0,
    /// <summary>Head of a free block on a free area list.</summary>
    Buddy = 1 << 0,
    /// <summary>Head of an allocated block.</summary>
    Head = 1 << 1,
    /// <summary>Free block whose memory was handed back to the OS.</summary>
    Reported = 1 << 2,
    /// <summary>Free block isolated while it is being reported.</summary>
    Reporting = 1 << 3,
    /// <summary>Free block known to read as zero.</summary>
    Zeroed = 1 << 4,
    /// <summary>Free block filled with the poison pattern when it was freed (debug option).</summary>
    Poisoned = 1 << 5,
    /// <summary>Free block held by a thread cache; linked through Next on that cache's stack.</summary>
    Cached = 1 << 6,
    /// <summary>Free block whose memory was offered to the OS (MADV_FREE): kept until the OS needs it, gone after.</summary>
    Hinted = 1 << 7,
}

internal static class PageStates
{
    /// <summary>What a free block knows about its memory; kept by a split, kept by a merge only when both halves have it.</summary>
    public const PageFlags Memory = PageFlags.Reported | PageFlags.Hinted | PageFlags.Zeroed | PageFlags.Poisoned;
}

/// <summary>
/// One per page, in a native array apart from the arena, so the allocator never touches free memory.
/// Free lists link descriptors by 32-bit page index. Padded to 16 bytes so indexing is a shift.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = 16)]
internal struct PageDescriptor
{
    public const uint None = uint.MaxValue;

    public uint Next;
    public uint Prev;
    public PageFlags Flags;
    /// <summary>Block order; meaningful on heads only.</summary>
    public byte Order;
    /// <summary>The migratetype list a free block is on; meaningful on Buddy heads only.</summary>
    public Migratetype List;
    /// <summary>The zone's report round when the free block was last freed or merged; meaningful on Buddy heads only.</summary>
    public ushort FreedInRound;
}
