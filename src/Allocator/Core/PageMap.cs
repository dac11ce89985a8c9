using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// The arena's geometry with its page descriptors and per-pageblock migratetypes, indexed by page
/// across every section slot, online or not.
/// </summary>
internal sealed unsafe class PageMap
{
    /// <summary>The byte that fills freed memory when poisoning is on.</summary>
    public const byte Poison = 0xA5;

    public readonly int PageSize;
    public readonly int PageShift;
    /// <summary>Page-index bits per section slot: a page's slot is page &gt;&gt; SectionShift.</summary>
    public readonly int SectionShift;
    /// <summary>Per slot, the address of page index 0 as that slot's section sees it; written when a section comes online.</summary>
    public readonly nint[] SectionBias;
    public readonly int MaxOrder;
    public readonly int PageblockOrder;
    /// <summary>Pages of index space: every slot's, holes and offline sections included.</summary>
    public readonly uint TotalPages;
    public readonly PageDescriptor* Descriptors;
    public readonly Migratetype* PageblockTypes;

    public PageMap(int pageSize, int maxOrder, int pageblockOrder, int sectionShift, int slots, uint totalPages, PageDescriptor* descriptors, Migratetype* pageblockTypes)
    {
        PageSize = pageSize;
        PageShift = System.Numerics.BitOperations.Log2((uint)pageSize);
        SectionShift = sectionShift;
        SectionBias = new nint[slots];
        MaxOrder = maxOrder;
        PageblockOrder = pageblockOrder;
        TotalPages = totalPages;
        Descriptors = descriptors;
        PageblockTypes = pageblockTypes;
    }

    /// <summary>The address of a page of an online section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public nint AddressOf(uint page) => SectionBias[SlotOf(page)] + ((nint)page << PageShift);

    /// <summary>The slot of a page: a 64-bit shift, since a one-section arena's shift may be 32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int SlotOf(uint page) => (int)((ulong)page >> SectionShift);

    public uint LargestBlockPages => 1u << MaxOrder;

    public uint PageblockPages => 1u << PageblockOrder;

    // Callers pass indices below TotalPages: every index comes from a validated address or a list link.
    public ref PageDescriptor this[uint page]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            Debug.Assert(page < TotalPages, "descriptor index out of range");
            return ref Descriptors[page];
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Migratetype PageblockType(uint page)
    {
        Debug.Assert(page < TotalPages, "pageblock index out of range");
        return PageblockTypes[page >> PageblockOrder];
    }

    /// <summary>Gives every pageblock of a block of at least pageblock order one type (Linux's change_pageblock_range).</summary>
    public void SetPageblockTypes(uint page, int order, Migratetype type)
    {
        uint first = page >> PageblockOrder;
        uint count = order > PageblockOrder ? 1u << (order - PageblockOrder) : 1u;
        for (uint i = 0; i < count; i++) PageblockTypes[first + i] = type;
    }
}
