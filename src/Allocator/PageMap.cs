using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>The arena's geometry with its page descriptors and per-pageblock migratetypes.</summary>
internal sealed unsafe class PageMap
{
    /// <summary>The byte that fills freed memory when poisoning is on.</summary>
    public const byte Poison = 0xA5;

    public readonly nint BaseAddress;
    public readonly int PageSize;
    public readonly int MaxOrder;
    public readonly int PageblockOrder;
    public readonly uint TotalPages;
    public readonly PageDescriptor* Descriptors;
    public readonly Migratetype* PageblockTypes;

    public PageMap(nint baseAddress, int pageSize, int maxOrder, int pageblockOrder, uint totalPages, PageDescriptor* descriptors, Migratetype* pageblockTypes)
    {
        BaseAddress = baseAddress;
        PageSize = pageSize;
        MaxOrder = maxOrder;
        PageblockOrder = pageblockOrder;
        TotalPages = totalPages;
        Descriptors = descriptors;
        PageblockTypes = pageblockTypes;
    }

    public nint AddressOf(uint page) => BaseAddress + (nint)page * PageSize;

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
