using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Buddy.Interop;

namespace Buddy;

/// <summary>
/// A buddy allocator over native memory in sections: the ones the arena starts with, plus any it
/// adds up to its maximum when it runs dry. Blocks are PageSize &lt;&lt; order bytes, aligned to their
/// size. Thread-safe. Dispose frees every section: there is no finalizer, because freeing memory
/// that callers may still point into would be worse than leaking it.
/// </summary>
/// <remarks>
/// The arena's parts live in folders of their own: Core (zones, descriptors, the gate), ThreadCaches,
/// Sections, Reporting (the seam a reporter uses, and nothing else), Diagnostics and Buffers.
/// <para>
/// Lock order, outermost first; each may be taken while holding those above it, never below:
/// the operation <c>gate</c> (shared by every call, closed by Dispose); <c>sectionLock</c> (sections
/// online and offline); <c>cacheLock</c> (the set of thread caches, whose claims it takes); one
/// <see cref="Zone.Lock"/> at a time, except that taking a section offline isolates its zones in index
/// order. A thread cache's own claim is a flag its owner takes without waiting, never a lock to wait
/// on. No lock is held across a call out of the arena (a reporting device, a SectionChanged handler).
/// </para>
/// </remarks>
public sealed unsafe partial class BuddyArena : IDisposable
{
    private readonly ArenaOptions options;
    private readonly int pageShift;
    private readonly Mapping? reservation;
    private readonly Mapping descriptorMapping;
    private readonly PageMap map;
    private readonly OperationGate gate = new();
    private readonly TimeProvider time;
    private readonly ArenaInstruments instruments;
    private int disposed;

    /// <param name="options">The arena's shape; null takes the defaults.</param>
    /// <param name="meterFactory">Where the <c>Buddy.Allocator</c> meter comes from; null publishes on a process-wide meter.</param>
    /// <param name="timeProvider">The clock for waits, their timeouts and section idle times; null is the system clock.</param>
    public BuddyArena(ArenaOptions? options = null, IMeterFactory? meterFactory = null, TimeProvider? timeProvider = null)
    {
        options ??= new ArenaOptions();
        options.Validate();
        this.options = options;
        time = timeProvider ?? TimeProvider.System;
        // Before any memory is taken, so a factory that throws leaks nothing.
        instruments = ArenaInstruments.For(meterFactory);
        pageShift = BitOperations.Log2((uint)options.PageSize);
        int slotCount = options.MaximumSections;
        zonesPerSection = options.ResolveZoneCount();
        slots = new Section?[slotCount];
        zoneTable = new Zone?[slotCount * zonesPerSection];
        try
        {
            sectionBases = (nint*)NativeMemory.AllocZeroed((nuint)slotCount + 1, (nuint)sizeof(nint));
            if (options.Backing == ArenaBacking.Reserve)
                reservation = VirtualMemory.Map((nuint)options.ResolvedMaximumSize, (nuint)options.LargestBlockBytes);
            // Zero-filled and lazily backed: descriptors of untouched blocks, and of slots never online, cost nothing.
            nuint indexPages = (nuint)options.IndexPages;
            descriptorMapping = VirtualMemory.Map(indexPages * (nuint)sizeof(PageDescriptor)
                + Math.Max(1, indexPages >> options.PageblockOrder), (nuint)Environment.SystemPageSize);
            var descriptors = (PageDescriptor*)descriptorMapping.Base;
            map = new PageMap(options.PageSize, options.MaxOrder, options.PageblockOrder, options.SectionIndexShift, slotCount,
                (uint)indexPages, descriptors, (Migratetype*)(descriptors + indexPages));
            var start = new Section[options.StartSections];
            for (int slot = 0; slot < start.Length; slot++) start[slot] = BringOnline(slot);
            online = new SectionSet(start);
        }
        catch
        {
            ReleaseArenaMemory();
            throw;
        }
        // Pinned sections are GC heap: when the GC runs short, free added ones should not hold it back.
        if (options.Backing == ArenaBacking.PinnedArray && options.MaximumSections > options.StartSections)
            GcCallback.Register(static arena => ((BuddyArena)arena).AfterCollection(), this);
        (cachedOrders, cacheHigh, cacheBatch) = CacheShape(options);
        cacheView = ViewForCaches();
        populateOrder = options.PopulateReportedBlocks ? options.PageblockOrder : int.MaxValue;
        if (cachedOrders > 0) cacheId = TakeCacheId();
        Name = options.Name ?? $"arena-{Interlocked.Increment(ref arenaCount)}";
        instruments.Register(this);
    }

    private static int arenaCount;

    /// <summary>The name metrics tag this arena with (<c>buddy.arena</c>).</summary>
    public string Name { get; }

    /// <summary>Where the first section starts; the start sections stay online for the arena's lifetime.</summary>
    public nint BaseAddress => online.BySlot is [var first, ..] ? first.Base : 0;
    /// <summary>Bytes the arena started with (<see cref="ArenaOptions.Size"/>).</summary>
    public long Size => options.Size;
    /// <summary>The most the arena may grow to.</summary>
    public long MaximumSize => options.ResolvedMaximumSize;
    /// <summary>Bytes in each section: the unit the arena grows and shrinks by.</summary>
    public long SectionSize => options.ResolvedSectionSize;
    /// <summary>Sections online now.</summary>
    public int OnlineSections => online.BySlot.Length;
    /// <summary>Bytes online now: the start size plus the sections added and not yet removed.</summary>
    public long OnlineBytes => online.Bytes;
    /// <summary>Bytes in a page: a block of order n is PageSize &lt;&lt; n bytes.</summary>
    public int PageSize => options.PageSize;
    /// <summary>The largest order handed out.</summary>
    public int MaxOrder => options.MaxOrder;
    /// <summary>The order of a pageblock: the unit a migratetype owns, and the default report order.</summary>
    public int PageblockOrder => options.PageblockOrder;
    /// <summary>Zone indices: every section slot's zones, online or not (offline ones hold nothing).</summary>
    public int ZoneCount => zoneTable.Length;
    /// <summary>Pages online now.</summary>
    public long TotalPages => online.Bytes >> pageShift;
    /// <summary>The options the arena was built with.</summary>
    public ArenaOptions Options => options;
    /// <summary>Bytes in a block of <see cref="MaxOrder"/>.</summary>
    public long LargestBlockBytes => options.LargestBlockBytes;
    /// <summary>Whether Dispose has begun: every call but statistics and Dispose then throws.</summary>
    public bool IsDisposed => Volatile.Read(ref disposed) != 0;

    internal PageMap PageMap => map;
    internal TimeProvider TimeProvider => time;
    internal Meter Meter => instruments.Meter;
    internal ArenaInstruments Instruments => instruments;
    internal IReadOnlyList<Zone> Zones => online.Zones;

    /// <summary>Bytes in every block of <paramref name="order"/>.</summary>
    public long BytesOfOrder(int order)
    {
        ValidateOrder(order);
        return BytesOf(order);
    }

    /// <summary>The smallest order whose blocks hold <paramref name="size"/> bytes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int OrderForSize(long size)
    {
        if (size <= 0 || size > options.LargestBlockBytes) ThrowBadSize(size);
        ulong pages = (ulong)((size + options.PageSize - 1) >> pageShift);
        return pages <= 1 ? 0 : 64 - BitOperations.LeadingZeroCount(pages - 1);
    }

    /// <summary>Allocates a block of <paramref name="order"/>; throws <see cref="ArenaExhaustedException"/> when none is free.</summary>
    public nint Allocate(int order, Migratetype migratetype = Migratetype.Movable)
        => TryAllocate(order, out nint address, migratetype) ? address : throw Exhausted(order, migratetype);

    /// <summary>Allocates a block of <paramref name="order"/> whose bytes are all zero.</summary>
    public nint AllocateZeroed(int order, Migratetype migratetype = Migratetype.Movable)
        => TryAllocate(order, out nint address, migratetype, zeroed: true) ? address : throw Exhausted(order, migratetype);

    /// <summary>Allocates the smallest block that holds <paramref name="size"/> bytes.</summary>
    public nint AllocateBytes(long size, Migratetype migratetype = Migratetype.Movable, bool zeroed = false)
    {
        int order = OrderForSize(size);
        return TryAllocate(order, out nint address, migratetype, zeroed) ? address : throw Exhausted(order, migratetype);
    }

    /// <summary>Like <see cref="AllocateBytes"/>, but returns false when the arena is exhausted.</summary>
    public bool TryAllocateBytes(long size, out nint address, Migratetype migratetype = Migratetype.Movable, bool zeroed = false)
        => TryAllocate(OrderForSize(size), out address, migratetype, zeroed);

    /// <summary>Allocates a block of <paramref name="order"/>, or returns false when none is free.</summary>
    public bool TryAllocate(int order, out nint address, Migratetype migratetype = Migratetype.Movable, bool zeroed = false)
    {
        ValidateOrder(order);
        ValidateMigratetype(migratetype);
        // Without grouping every block shares the Movable lists; the HighAtomic reserve stays HighAtomic's.
        Migratetype listType = options.GroupByMobility ? migratetype : Migratetype.Movable;
        if (order < cachedOrders && listType <= Migratetype.Reclaimable && StateOfThisThread() is var state && state != null
            && TryAllocateCached(ref *state, order, listType, zeroed, out address))
            return true;
        return TryAllocateFromZones(order, listType, migratetype == Migratetype.HighAtomic, zeroed, out address);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // keeps the cache path's frame small
    private bool TryAllocateFromZones(int order, Migratetype listType, bool mayUseReserve, bool zeroed, out nint address)
    {
        string? damage = null;
        using (gate.Enter())
        {
            uint page = AllocateOrGrow(order, listType, mayUseReserve, zeroed, out PageFlags memory);
            if (page == PageDescriptor.None)
            {
                address = 0;
                return false;
            }
            address = AddressOf(page);
            if ((memory & PageFlags.Poisoned) != 0) damage = FindPoisonDamage(address, order);
            if ((memory & PageFlags.Reported) != 0 && order >= populateOrder) Populate(address, order);
            if (zeroed && (memory & PageFlags.Zeroed) == 0) NativeMemory.Clear((void*)address, (nuint)BytesOf(order));
        }
        if (damage is not null) throw PoisonDamaged(address, damage);
        return true;
    }

    /// <summary>
    /// The smallest reported block faulted in at once when handed out (<see cref="ArenaOptions.PopulateReportedBlocks"/>);
    /// int.MaxValue once the kernel has refused (before Linux 5.14), so it is not asked again. Racy by design.
    /// </summary>
    private int populateOrder;

    /// <summary>Faults a reported block in with one call; a kernel that refuses leaves it, and the rest, to fault page by page.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void Populate(nint address, int order)
    {
        if (!VirtualMemory.PopulateWrite(address, (nuint)BytesOf(order))) populateOrder = int.MaxValue;
    }

    /// <summary>Frees a block; its order comes from its descriptor.</summary>
    public void Free(nint address) => Free(address, expectedOrder: -1, size: 0);

    /// <summary>Frees a block, checking that <paramref name="size"/> is the size it was allocated for.</summary>
    public void Free(nint address, long size) => Free(address, OrderForSize(size), size);

    /// <summary>Frees straight to the block's zone, for a thread that will not allocate again (a finalizer).</summary>
    internal void FreeUncached(nint address) => FreeToZone(address, expectedOrder: -1, size: 0);

    /// <summary>Bytes of the allocated block that starts at <paramref name="address"/>.</summary>
    public long SizeOfBlock(nint address)
    {
        using (gate.Enter())
        {
            uint page = PageOf(address, out Section section);
            Zone zone = section.ZoneOf(page);
            lock (zone.Lock)
            {
                CheckOnline(zone, address);
                ref PageDescriptor d = ref map[page];
                if ((d.Flags & PageFlags.Head) == 0) throw NotAllocated(address, d.Flags);
                return BytesOf(d.Order);
            }
        }
    }

    /// <summary>A consistent snapshot: sections neither come nor go while it is taken.</summary>
    public ArenaStatistics GetStatistics()
    {
        using (gate.Enter())
        lock (sectionLock)
        {
            ThreadCache[] all = EnterCaches();
            try
            {
                SectionSet set = online;
                long[] cached = CachedPagesByZone(all);
                var snapshots = new ZoneStatistics[set.Zones.Length];
                for (int i = 0; i < snapshots.Length; i++)
                    lock (set.Zones[i].Lock) snapshots[i] = new ZoneStatistics(set.Zones[i], options.MaxOrder, cached[set.Zones[i].Index]);
                long allocations = retiredAllocations, frees = retiredFrees, zeroSkipped = retiredZeroSkipped;
                foreach (ThreadCache cache in all)
                {
                    allocations += cache.State.Allocations;
                    frees += cache.State.Frees;
                    zeroSkipped += cache.State.ZeroSkippedBytes;
                }
                var sections = new SectionCounts(set.BySlot.Length, options.MaximumSections,
                    Volatile.Read(ref sectionsAddedCount), Volatile.Read(ref sectionsRemovedCount), sectionFailure);
                return new ArenaStatistics(options.PageSize, options.MaxOrder, snapshots, allocations, frees, zeroSkipped, sections, offlineTotals);
            }
            finally
            {
                ExitCaches(all);
            }
        }
    }

    /// <summary>Walks every zone and throws <see cref="ArenaCorruptionException"/> if any invariant is broken.</summary>
    public void CheckInvariants()
    {
        // The section lock keeps sections from coming or going: an offline section's descriptors are reset unlocked.
        using (gate.Enter())
        lock (sectionLock)
        {
            var problems = new List<string>();
            ThreadCache[] all = EnterCaches();
            try
            {
                SectionSet set = online;
                for (int i = 0; i < all.Length; i++) InvariantChecker.CheckCache(all[i], i, cachedOrders, map, slots, problems);
                if (problems.Count > 0) throw new ArenaCorruptionException(problems);
                long[] cached = CachedPagesByZone(all);
                foreach (Zone zone in set.Zones)
                    lock (zone.Lock) InvariantChecker.CheckZone(zone, map, problems, cached[zone.Index]);
            }
            finally
            {
                ExitCaches(all);
            }
            if (problems.Count > 0) throw new ArenaCorruptionException(problems);
        }
    }

    /// <summary>Waits for operations in flight, then frees the arena. Later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0) return;
        instruments.Unregister(this);
        CloseCaches();
        gate.Close();
        ReturnCacheId();
        lock (sectionLock) StopIdleTimer();
        ReleaseArenaMemory();
        // Drops the pinned arrays too, so the GC can take them back while the arena object lives on.
        online = SectionSet.Empty;
    }

    private void Free(nint address, int expectedOrder, long size)
    {
        if (cachedOrders > 0 && StateOfThisThread() is var state && state != null && TryFreeCached(ref *state, address, expectedOrder)) return;
        FreeToZone(address, expectedOrder, size);
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // keeps the cache path's frame small
    private void FreeToZone(nint address, int expectedOrder, long size)
    {
        using (gate.Enter())
        {
            uint page = PageOf(address, out Section section);
            Zone zone = section.ZoneOf(page);
            int merged;
            lock (zone.Lock)
            {
                CheckOnline(zone, address);
                ref PageDescriptor d = ref map[page];
                if ((d.Flags & PageFlags.Head) == 0) throw NotAllocated(address, d.Flags);
                if (expectedOrder >= 0 && d.Order != expectedOrder)
                    throw new ArgumentException(
                        $"Size {size} (order {expectedOrder}) does not match the block at 0x{address:x}, which has order {d.Order} ({BytesOf(d.Order)} bytes).",
                        nameof(size));
                if (options.ValidateOnFree) DescriptorValidation.CheckBeforeFree(zone, map, page, address);
                // Claimed by exchange (as the cache path does with ValidateOnFree), so of two racing frees one is refused.
                if (Interlocked.CompareExchange(ref FlagsOf(ref d), (uint)PageFlags.None, (uint)PageFlags.Head) != (uint)PageFlags.Head)
                    throw NotAllocated(address, d.Flags);
                // Poisoned under the lock: once listed, the block may belong to someone else.
                if (options.PoisonFreedMemory) NativeMemory.Fill((void*)address, (nuint)BytesOf(d.Order), PageMap.Poison);
                merged = zone.Free(page, d.Order, options.PoisonFreedMemory ? PageFlags.Poisoned : PageFlags.None);
            }
            NotifyFreeBlock(zone, merged);
        }
    }

    /// <summary>The zone path; when nothing is free online, adds a section and searches again, up to the maximum.</summary>
    private uint AllocateOrGrow(int order, Migratetype type, bool mayUseReserve, bool zeroed, out PageFlags memory)
    {
        while (true)
        {
            int epochSeen = Volatile.Read(ref sectionEpoch);
            uint page = AllocatePage(order, type, mayUseReserve, zeroed, out memory);
            if (page != PageDescriptor.None || !TryGrow(epochSeen, order, mayUseReserve))
            {
                if (page == PageDescriptor.None) RecordFailure();
                return page;
            }
        }
    }

    /// <summary>
    /// Fails only when nothing that could serve the request was free, mid-report or in a thread cache
    /// during the search. A block mid-report is waited for (the report ends); blocks in caches are
    /// sent home by a search that holds every cache, so no owner can take them back before it looks.
    /// </summary>
    private uint AllocatePage(int order, Migratetype type, bool mayUseReserve, bool zeroed, out PageFlags memory)
    {
        int first = FirstZone();
        long waitStart = 0;
        while (true)
        {
            TakenBlock taken = TryZones(first, order, type, mayUseReserve, zeroed, out Zone? served);
            if (!taken.Found && taken.BusyPage == PageDescriptor.None && cachedOrders > 0)
                taken = TryZonesWithCachesHeld(first, order, type, mayUseReserve, zeroed, out served);
            if (taken.Found || taken.BusyPage == PageDescriptor.None)
            {
                if (waitStart != 0)
                {
                    Zone accounted = served ?? online.BySlot[0].Zones[first];
                    lock (accounted.Lock) accounted.RecordSpin(time.GetElapsedTime(waitStart).Ticks);
                }
                memory = taken.Memory;
                return taken.Page;
            }
            // The only memory that can serve this is mid-report: wait for its page flag, then retry. The
            // timeout is per block (a device that answers each call is answering); the spin counts it all.
            if (waitStart == 0) waitStart = time.GetTimestamp();
            WaitWhileReporting(taken.BusyPage, time.GetTimestamp());
        }
    }

    /// <summary>The zone of each section a search starts at: the processor's, to spread the lock load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int FirstZone() => (int)((uint)Thread.GetCurrentProcessorId() % (uint)zonesPerSection);

    /// <summary>
    /// Sections are tried in slot order, so the start sections serve first and added ones can drain.
    /// In each, pass 0 spreads load: it skips zones below their low watermark. Pass 1 may go down to
    /// the min watermark, and HighAtomic requests below it. A block chosen but mid-report in place
    /// stops the search. With nothing free, the result names a block isolated for a report that
    /// could serve the request, if there is one: a zone's lists and its isolated blocks are read under
    /// one hold of its lock, so a block a report puts back meanwhile is seen in one place or the other.
    /// </summary>
    private TakenBlock TryZones(int first, int order, Migratetype type, bool mayUseReserve, bool zeroed, out Zone? served)
    {
        uint isolated = PageDescriptor.None;
        foreach (Section section in online.BySlot)
        {
            for (int pass = 0; pass < 2; pass++)
            {
                Zone[] zones = section.Zones;
                for (int i = 0; i < zones.Length; i++)
                {
                    served = zones[(first + i) % zones.Length];
                    long keepFree = pass == 0 ? served.LowWatermark : mayUseReserve ? 0 : served.MinWatermark;
                    // Isolated blocks stay counted in FreePages, so a zone that could serve from them is locked here.
                    if (Volatile.Read(ref served.FreePages) - (1L << order) < keepFree) continue;
                    TakenBlock taken;
                    lock (served.Lock)
                    {
                        taken = served.Take(order, type, keepFree);
                        if (taken.Found) served.HandOut(taken.Page, zeroed, taken.Memory);
                        else if (pass == 1 && isolated == PageDescriptor.None) isolated = served.FindIsolated(order);
                    }
                    if (taken.Found || taken.BusyPage != PageDescriptor.None) return taken;
                }
            }
        }
        served = null;
        return isolated == PageDescriptor.None ? TakenBlock.Nothing : TakenBlock.Nothing with { BusyPage = isolated };
    }

    /// <summary>
    /// The last search before a refusal: every thread cache is claimed and sent home, and stays
    /// claimed while the zones are searched, so the blocks it held cannot go back into a cache first.
    /// Lock order: cache lock, then zone locks.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private TakenBlock TryZonesWithCachesHeld(int first, int order, Migratetype type, bool mayUseReserve, bool zeroed, out Zone? served)
    {
        ThreadCache[] all = EnterCaches();
        try
        {
            if (!cachesClosed)
                foreach (ThreadCache cache in all) DrainAll(cache);
            return TryZones(first, order, type, mayUseReserve, zeroed, out served);
        }
        finally
        {
            ExitCaches(all);
        }
    }

    /// <summary>Counts an allocation refused for want of memory, on the zone it would have tried first.</summary>
    private void RecordFailure()
    {
        Zone zone = online.BySlot[0].Zones[FirstZone()];
        lock (zone.Lock) zone.FailedAllocations++;
    }

    private void WaitWhileReporting(uint page, long since)
    {
        var spinner = new SpinWait();
        while ((Volatile.Read(ref Unsafe.As<PageFlags, uint>(ref map[page].Flags)) & (uint)PageFlags.Reporting) != 0)
        {
            if (time.GetElapsedTime(since) > options.ReportWaitTimeout)
                throw new TimeoutException(
                    $"Waited {options.ReportWaitTimeout.TotalSeconds:F1} s for the block at 0x{AddressOf(page):x} to come back from a report; the reporting device is not answering.");
            spinner.SpinOnce();
        }
    }

    /// <summary>Checks a poisoned block in spans an int can count, since a block may exceed 2 GiB; null when intact.</summary>
    private string? FindPoisonDamage(nint address, int order)
    {
        long length = BytesOf(order);
        for (long offset = 0; offset < length; offset += MaxSpan)
        {
            var bytes = new ReadOnlySpan<byte>((void*)(address + (nint)offset), (int)Math.Min(MaxSpan, length - offset));
            int changed = bytes.IndexOfAnyExcept(PageMap.Poison);
            if (changed >= 0) return $"byte {offset + changed} is 0x{bytes[changed]:x2}, not the poison 0x{PageMap.Poison:x2}";
        }
        return null;
    }

    /// <summary>Gives the damaged block back, so the arena stays whole, and says what was found.</summary>
    private ArenaCorruptionException PoisonDamaged(nint address, string damage)
    {
        Free(address);
        return new ArenaCorruptionException([$"The block at 0x{address:x} was written after it was freed: {damage}."]);
    }

    private const int MaxSpan = 1 << 30;

    /// <summary>Bytes of a block of <paramref name="order"/>, in 64 bits: blocks of 4 GiB and more exist.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private long BytesOf(int order) => (long)options.PageSize << order;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nint AddressOf(uint page) => map.AddressOf(page);

    /// <summary>The page index of an address in an online section, and that section.</summary>
    private uint PageOf(nint address, out Section section)
    {
        SectionSet set = online;
        section = set.Find(address)!;
        if (section is null) throw OutsideArena(address, set);
        nint offset = address - section.Base;
        if ((offset & (options.PageSize - 1)) != 0)
            throw new InvalidAddressException(address, $"Address 0x{address:x} is not page aligned, so it is not the start of a block.");
        return section.FirstPage + (uint)(offset >> pageShift);
    }

    private static InvalidAddressException OutsideArena(nint address, SectionSet set) => new(address, set.BySlot.Length == 1
        ? $"Address 0x{address:x} is outside the arena [0x{set.BySlot[0].Base:x}, 0x{set.BySlot[0].End:x})."
        : $"Address 0x{address:x} is outside the arena: it lies in none of its {set.BySlot.Length} online sections.");

    /// <summary>
    /// Refuses an address whose section went offline after the caller found it (zone lock held): its
    /// zone stays isolated for good, and the slot's next section has zones of its own.
    /// </summary>
    private void CheckOnline(Zone zone, nint address)
    {
        if (zone.Isolated) throw new InvalidAddressException(address, $"Address 0x{address:x} is outside the arena: its section is offline or going offline.");
    }

    private void ReleaseArenaMemory()
    {
        foreach (Section? section in slots)
            if (section is not null && options.Backing == ArenaBacking.AlignedAlloc) NativeMemory.AlignedFree((void*)section.Base);
        Array.Clear(slots);
        if (descriptorMapping.Base != 0) VirtualMemory.Unmap(descriptorMapping);
        if (reservation is { } mapping) VirtualMemory.Unmap(mapping);
        NativeMemory.Free(sectionBases);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ValidateOrder(int order)
    {
        if ((uint)order > (uint)options.MaxOrder) ThrowBadOrder(order);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadSize(long size)
        => throw new ArgumentOutOfRangeException(nameof(size), size, $"Size must be between 1 and {options.LargestBlockBytes} bytes.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadOrder(int order)
        => throw new ArgumentOutOfRangeException(nameof(order), order, $"Order must be between 0 and {options.MaxOrder}.");

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void ValidateMigratetype(Migratetype migratetype)
    {
        if (!Migratetypes.IsAllocatable(migratetype)) ThrowBadMigratetype(migratetype);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowBadMigratetype(Migratetype migratetype)
        => throw new ArgumentOutOfRangeException(nameof(migratetype), migratetype, "Migratetype must be Unmovable, Movable, Reclaimable or HighAtomic.");

    private static InvalidAddressException NotAllocated(nint address, PageFlags flags) => new(address, (flags & (PageFlags.Buddy | PageFlags.Cached)) != 0
        ? $"Double free: the block at 0x{address:x} is already free."
        : $"Address 0x{address:x} is not the start of an allocated block (never allocated, already freed, or inside a block).");

    private ArenaExhaustedException Exhausted(int order, Migratetype migratetype)
    {
        long free = 0;
        foreach (Zone zone in online.Zones) free += Volatile.Read(ref zone.FreePages);
        string? whyNotGrown = online.BySlot.Length < options.MaximumSections ? growthFailure ?? "no section could be added" : null;
        return new ArenaExhaustedException(order, BytesOf(order), migratetype, free, options.ResolvedMaximumSize, whyNotGrown);
    }
}
