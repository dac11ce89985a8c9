using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Buddy.Interop;

namespace Buddy;

/// <summary>
/// One section of an arena (Linux's mem_section): largest-block-aligned memory with its own zones,
/// brought online and taken offline as a unit. Its pages own a fixed slot of the arena's page-index
/// space, so descriptors stay in one array and buddy arithmetic never leaves a section.
/// </summary>
internal sealed unsafe class Section
{
    public readonly int Slot;
    public readonly uint FirstPage;
    public readonly uint Pages;
    public readonly nint Base;
    public readonly long Bytes;
    /// <summary>Base minus FirstPage pages: a page's address is Bias + page * PageSize.</summary>
    public readonly nint Bias;
    public readonly Zone[] Zones;
    /// <summary>The pinned array the section lives in (PinnedArray backing), reachable while online.</summary>
    public readonly byte[]? Array;
    /// <summary>Where <see cref="Base"/> lies in <see cref="Array"/>.</summary>
    public readonly int ArrayOffset;

    private readonly int maxOrder;
    private readonly uint zoneQuotient;
    private readonly uint zoneRemainder;
    private readonly ArenaBacking backing;

    /// <summary>Since when (a timestamp) the idle check has seen the section free, or null. Section lock held.</summary>
    public long? FreeSince;
    /// <summary>Blocks taken from its zones when the idle check last looked. Section lock held.</summary>
    public long TakesSeen;

    private Section(int slot, ArenaOptions options, PageMap map, int pageShift, int zoneBase, nint address, byte[]? array, int arrayOffset)
    {
        Slot = slot;
        Bytes = options.ResolvedSectionSize;
        Pages = (uint)(Bytes >> pageShift);
        FirstPage = (uint)((ulong)slot << options.SectionIndexShift);
        Base = address;
        Bias = address - ((nint)FirstPage << pageShift);
        Array = array;
        ArrayOffset = arrayOffset;
        maxOrder = options.MaxOrder;
        backing = options.Backing;
        int count = options.ResolveZoneCount();
        uint blocks = Pages >> maxOrder;
        zoneQuotient = blocks / (uint)count;
        zoneRemainder = blocks % (uint)count;
        Zones = new Zone[count];
        uint start = FirstPage;
        for (int i = 0; i < count; i++)
        {
            uint size = (zoneQuotient + (i < zoneRemainder ? 1u : 0u)) << maxOrder;
            Zones[i] = new Zone(zoneBase + i, start, start + size, map, options);
            start += size;
        }
    }

    /// <summary>
    /// Brings the section of <paramref name="slot"/> online: inside the reservation, or in memory of its
    /// own. Its descriptors are zero (never used, or reset when it last went offline).
    /// </summary>
    public static Section Create(int slot, ArenaOptions options, PageMap map, int pageShift, int zoneBase, Mapping? reservation)
    {
        long bytes = options.ResolvedSectionSize;
        switch (options.Backing)
        {
            case ArenaBacking.Reserve:
                return new Section(slot, options, map, pageShift, zoneBase, reservation!.Value.Base + (nint)(slot * bytes), null, 0);
            case ArenaBacking.PinnedArray:
            {
                byte[] array;
                try
                {
                    // Uninitialized: the allocator promises nothing about fresh memory, and zeroing would touch it all.
                    array = GC.AllocateUninitializedArray<byte>(checked((int)(bytes + options.LargestBlockBytes)), pinned: true);
                }
                catch (OutOfMemoryException e)
                {
                    // Pinned sections are GC heap: in a container the GC's hard limit (75% of the memory limit by default) caps them.
                    GCMemoryInfo gc = GC.GetGCMemoryInfo();
                    throw new OutOfMemoryException(
                        $"The GC could not provide a pinned section of {bytes} bytes: PinnedArray sections count toward the GC heap, " +
                        $"which had {gc.TotalCommittedBytes} bytes committed of the {gc.TotalAvailableMemoryBytes} it may use (its hard limit in a container). " +
                        "Lower the arena's MaximumSize, raise the memory limit or GCHeapHardLimitPercent, or use Reserve backing where arrays are not needed.", e);
                }
                nint data = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(array));
                nint aligned = (nint)(((nuint)data + (nuint)options.LargestBlockBytes - 1) & ~((nuint)options.LargestBlockBytes - 1));
                // The array header lies before the data, so below Base: no block covers it and no report discards it.
                return new Section(slot, options, map, pageShift, zoneBase, aligned, array, (int)(aligned - data));
            }
            default:
                try
                {
                    nint memory = (nint)NativeMemory.AlignedAlloc((nuint)bytes, (nuint)options.LargestBlockBytes);
                    try
                    {
                        return new Section(slot, options, map, pageShift, zoneBase, memory, null, 0);
                    }
                    catch
                    {
                        NativeMemory.AlignedFree((void*)memory);
                        throw;
                    }
                }
                catch (OutOfMemoryException e)
                {
                    throw new OutOfMemoryException(
                        $"NativeMemory.AlignedAlloc could not provide a section of {bytes} bytes; ArenaBacking.Reserve serves arenas larger than the commit limit.", e);
                }
        }
    }

    public nint End => Base + (nint)Bytes;

    /// <summary>The zone holding <paramref name="page"/>: zones hold whole largest blocks, the first <c>zoneRemainder</c> one more.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Zone ZoneOf(uint page)
    {
        Debug.Assert(page - FirstPage < Pages, "page lies in the section");
        uint block = (page - FirstPage) >> maxOrder;
        uint bigZones = zoneRemainder * (zoneQuotient + 1);
        return Zones[block < bigZones ? block / (zoneQuotient + 1) : zoneRemainder + (block - bigZones) / zoneQuotient];
    }

    /// <summary>Blocks taken from the section's zones so far (racy read): any change means it was used.</summary>
    public long Takes()
    {
        long takes = 0;
        foreach (Zone zone in Zones) takes += Volatile.Read(ref zone.Takes);
        return takes;
    }

    /// <summary>
    /// Isolates every zone (Linux's start_isolate_page_range), or none: a zone with anything allocated,
    /// cached by a thread or mid-report makes the attempt fail and the zones already isolated come back.
    /// </summary>
    public bool TryIsolate()
    {
        int isolated = 0;
        try
        {
            for (; isolated < Zones.Length; isolated++)
                lock (Zones[isolated].Lock)
                    if (!Zones[isolated].TryIsolate()) break;
        }
        finally
        {
            if (isolated < Zones.Length)
                for (int j = 0; j < isolated; j++)
                    lock (Zones[j].Lock) Zones[j].UndoIsolation();
        }
        return isolated == Zones.Length;
    }

    /// <summary>
    /// Gives the memory back and zeroes the section's descriptors for the slot's next use. Called once
    /// the section is isolated and unpublished: no allocation can reach its memory any more.
    /// </summary>
    public void Release(PageMap map)
    {
        ResetNative((nint)(map.Descriptors + FirstPage), (nuint)Pages * (nuint)sizeof(PageDescriptor));
        NativeMemory.Clear(map.PageblockTypes + (FirstPage >> map.PageblockOrder), (nuint)(Pages >> map.PageblockOrder));
        switch (backing)
        {
            case ArenaBacking.Reserve:
                // Pristine Reserve memory must read as zero: reset it rather than merely discard it.
                VirtualMemory.Reset(Base, (nuint)Bytes);
                break;
            case ArenaBacking.AlignedAlloc:
                NativeMemory.AlignedFree((void*)Base);
                break;
            // PinnedArray: the array becomes garbage once the arena drops this section.
        }
    }

    /// <summary>Zeroes a range of a lazily backed mapping, dropping the whole pages rather than touching them.</summary>
    private static void ResetNative(nint address, nuint length)
    {
        nuint page = (nuint)VirtualMemory.PageSize;
        nint first = (nint)(((nuint)address + page - 1) & ~(page - 1));
        nint last = (nint)(((nuint)address + length) & ~(page - 1));
        if (last <= first)
        {
            NativeMemory.Clear((void*)address, length);
            return;
        }
        NativeMemory.Clear((void*)address, (nuint)(first - address));
        VirtualMemory.Reset(first, (nuint)(last - first));
        NativeMemory.Clear((void*)last, (nuint)(address + (nint)length - last));
    }
}

/// <summary>
/// The sections online, published as one immutable snapshot: allocation walks them by slot (the
/// start sections first, so later ones can drain), and address lookup by binary search on base.
/// </summary>
internal sealed class SectionSet
{
    public readonly Section[] BySlot;
    public readonly Section[] ByAddress;
    public readonly Zone[] Zones;

    public static readonly SectionSet Empty = new([]);

    public SectionSet(IEnumerable<Section> sections)
    {
        BySlot = sections.OrderBy(s => s.Slot).ToArray();
        ByAddress = BySlot.OrderBy(s => s.Base).ToArray();
        Zones = BySlot.SelectMany(s => s.Zones).ToArray();
    }

    public long Bytes => BySlot.Length == 0 ? 0 : BySlot.Length * BySlot[0].Bytes;

    /// <summary>The section holding <paramref name="address"/>, or null; allocation-free, O(log sections).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Section? Find(nint address)
    {
        Section[] sections = ByAddress;
        if (sections.Length == 0) return null;
        int low = 0, high = sections.Length - 1;
        while (low < high)
        {
            int middle = (low + high + 1) >>> 1;
            if (sections[middle].Base <= address) low = middle;
            else high = middle - 1;
        }
        Section candidate = sections[low];
        return (nuint)(address - candidate.Base) < (nuint)candidate.Bytes ? candidate : null;
    }
}
