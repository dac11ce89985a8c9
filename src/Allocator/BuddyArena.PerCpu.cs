using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// Per-CPU lists for orders 0-3: the allocation and free fast paths take the current processor's
/// cache by trylock and touch no zone lock; refills and drains move a batch under one zone-lock
/// acquisition. A busy cache sends the caller down the zone path instead of waiting.
/// </summary>
public sealed unsafe partial class BuddyArena
{
    private readonly PerCpuCache[] caches;
    private readonly int cacheMask;

    private static PerCpuCache[] BuildCaches(ArenaOptions options, int zones)
    {
        if (!options.PerCpuLists) return [];
        int count = (int)System.Numerics.BitOperations.RoundUpToPowerOf2((uint)Environment.ProcessorCount);
        var caches = new PerCpuCache[count];
        for (int i = 0; i < count; i++) caches[i] = new PerCpuCache(zones);
        return caches;
    }

    /// <summary>Returns every block held by per-CPU caches to its zone, so it can merge and be reported.</summary>
    public void DrainPerCpuCaches()
    {
        using (gate.Enter()) DrainCaches();
    }

    /// <summary>Drains every cache (the caller is inside the gate); returns how many pages went home.</summary>
    private long DrainCaches()
    {
        long pages = 0;
        foreach (PerCpuCache cache in caches)
        {
            cache.Enter();
            try
            {
                for (int stack = 0; stack < (PerCpuCache.MaxOrder + 1) * PerCpuCache.Types; stack++)
                    pages += Drain(cache, stack, int.MaxValue);
            }
            finally
            {
                cache.Exit();
            }
        }
        return pages;
    }

    private uint AllocateFromCache(int order, Migratetype type, bool zeroed, out PageFlags memory)
    {
        memory = PageFlags.None;
        if (caches.Length == 0 || !PerCpuCache.Serves(order, type)) return PageDescriptor.None;
        int cpu = Thread.GetCurrentProcessorId();
        PerCpuCache cache = caches[cpu & cacheMask];
        if (!cache.TryEnter()) return PageDescriptor.None;
        try
        {
            int stack = PerCpuCache.Stack(order, type);
            if (cache.Count(stack) == 0) Refill(cache, stack, order, type, cpu);
            uint page = cache.Pop(map, stack);
            if (page == PageDescriptor.None) return page;
            ref PageDescriptor d = ref map[page];
            memory = d.Flags & PageStates.Memory;
            FlagsOf(ref d) = (uint)PageFlags.Head;
            cache.CachedByZone[ZoneOf(page).Index] -= 1L << order;
            cache.Allocations++;
            if (zeroed && (memory & PageFlags.Zeroed) != 0) cache.ZeroSkippedBytes += BytesOf(order);
            return page;
        }
        finally
        {
            cache.Exit();
        }
    }

    /// <summary>
    /// Frees into the current processor's cache. Returns false to send the caller down the zone
    /// path, which also reports every kind of bad free under the zone lock.
    /// </summary>
    private bool TryFreeToCache(uint page, Zone zone, int expectedOrder)
    {
        if (caches.Length == 0 || zone.Isolated) return false;
        ref PageDescriptor d = ref map[page];
        int order = d.Order;
        Migratetype type = map.PageblockType(page);
        if (Volatile.Read(ref FlagsOf(ref d)) != (uint)PageFlags.Head || !PerCpuCache.Serves(order, type)
            || (expectedOrder >= 0 && order != expectedOrder))
            return false;
        // The buddy-link half of ValidateOnFree needs the zone lock; the block's own descriptors do not.
        if (options.ValidateOnFree) DescriptorValidation.CheckBlock(zone, map, page, AddressOf(page));
        PerCpuCache cache = caches[Thread.GetCurrentProcessorId() & cacheMask];
        if (!cache.TryEnter()) return false;
        try
        {
            PageFlags state = PageFlags.PerCpu | (options.PoisonFreedMemory ? PageFlags.Poisoned : PageFlags.None);
            // Claiming the descriptor decides a racing double free: the loser takes the zone path and is refused there.
            if (Interlocked.CompareExchange(ref FlagsOf(ref d), (uint)state, (uint)PageFlags.Head) != (uint)PageFlags.Head) return false;
            if (options.PoisonFreedMemory) NativeMemory.Fill((void*)AddressOf(page), (nuint)BytesOf(order), PageMap.Poison);
            int stack = PerCpuCache.Stack(order, type);
            cache.Push(map, stack, page);
            cache.CachedByZone[zone.Index] += 1L << order;
            cache.Frees++;
            if (cache.Count(stack) > PerCpuCache.High) Drain(cache, stack, PerCpuCache.Batch);
            return true;
        }
        finally
        {
            cache.Exit();
        }
    }

    /// <summary>
    /// Takes a batch for one stack from the processor's zone of the first section that has room,
    /// under one lock acquisition.
    /// </summary>
    private void Refill(PerCpuCache cache, int stack, int order, Migratetype type, int cpu)
    {
        Zone? zone = null;
        foreach (Section section in online.BySlot)
        {
            Zone candidate = section.Zones[(uint)cpu % (uint)zonesPerSection];
            if (Volatile.Read(ref candidate.FreePages) - (PerCpuCache.Batch << order) < candidate.LowWatermark) continue;
            zone = candidate;
            break;
        }
        if (zone is null) return;
        lock (zone.Lock)
        {
            for (int i = 0; i < PerCpuCache.Batch; i++)
            {
                TakenBlock taken = zone.Take(order, type, zone.LowWatermark);
                if (!taken.Found) break;
                zone.HandToCache(taken.Page, taken.Memory);
                cache.Push(map, stack, taken.Page);
                cache.CachedByZone[zone.Index] += 1L << order;
            }
        }
    }

    /// <summary>Returns up to <paramref name="count"/> blocks of one stack to their zones (cache lock held); returns the pages moved.</summary>
    private long Drain(PerCpuCache cache, int stack, int count)
    {
        int order = stack / PerCpuCache.Types;
        long pages = 0;
        Zone? held = null;
        Zone? notifyZone = null;
        int notifyOrder = -1;
        try
        {
            for (int i = 0; i < count; i++)
            {
                uint page = cache.Pop(map, stack);
                if (page == PageDescriptor.None) break;
                Zone zone = ZoneOf(page);
                if (zone != held)
                {
                    held?.Lock.Exit();
                    held = zone;
                    zone.Lock.Enter();
                    // Before the blocks are listed, as a report's put-back is: a search that missed them sees the count change.
                    Interlocked.Increment(ref putBacks);
                }
                PageFlags memory = map[page].Flags & PageStates.Memory;
                cache.CachedByZone[zone.Index] -= 1L << order;
                int merged = zone.Free(page, order, memory, fromCache: true);
                pages += 1L << order;
                if (merged > notifyOrder) (notifyZone, notifyOrder) = (zone, merged);
            }
        }
        finally
        {
            held?.Lock.Exit();
        }
        if (notifyZone is not null) NotifyFreeBlock(notifyZone, notifyOrder);
        return pages;
    }

    /// <summary>Takes every cache lock, for a consistent view; release with <see cref="ExitCaches"/>.</summary>
    private void EnterCaches()
    {
        foreach (PerCpuCache cache in caches) cache.Enter();
    }

    private void ExitCaches()
    {
        foreach (PerCpuCache cache in caches) cache.Exit();
    }

    private long CachedPagesOf(Zone zone)
    {
        long pages = 0;
        foreach (PerCpuCache cache in caches) pages += cache.CachedByZone[zone.Index];
        return pages;
    }

    /// <summary>The flags word of a descriptor as a uint, for Volatile and Interlocked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref uint FlagsOf(ref PageDescriptor d) => ref Unsafe.As<PageFlags, uint>(ref d.Flags);
}
