using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// Thread caches for blocks up to 2 MiB: allocation and free touch only the calling thread's cache
/// with plain loads and stores (see <see cref="ThreadCache"/>); refills and drains move a batch under
/// one zone-lock acquisition. Everything that reaches into other threads' caches (drains, statistics,
/// the checker, sections going offline, Dispose) holds the cache lock and claims them.
/// </summary>
public sealed unsafe partial class BuddyArena
{
    [ThreadStatic] private static ThreadCache? lastCache;
    /// <summary>The state of <see cref="lastCache"/>, which keeps it alive.</summary>
    [ThreadStatic] private static ThreadCache.Hot* lastState;
    private static long serials;
    /// <summary>Unique for the process's lifetime, unlike <see cref="cacheId"/>: a thread's last state names its arena by it.</summary>
    private readonly long serial = Interlocked.Increment(ref serials);
    [ThreadStatic] private static ThreadCache?[]? cachesOfThread;

    private readonly Lock cacheLock = new();
    private readonly List<ThreadCache> threadCaches = [];
    /// <summary>Index into each thread's cache table, unique among live arenas; -1 without caches.</summary>
    private readonly int cacheId = -1;
    /// <summary>Orders 0 to cachedOrders - 1 are cached.</summary>
    private readonly int cachedOrders;
    private readonly int[] cacheHigh = [];
    private readonly int[] cacheBatch = [];
    private bool cachesClosed;
    private static readonly Lock CacheIdLock = new();
    private static readonly Stack<int> FreeCacheIds = new();
    private static int nextCacheId;
    private long retiredAllocations, retiredFrees, retiredZeroSkipped;

    /// <summary>
    /// Sizes the caches: orders up to 2 MiB that fit the byte budget; a stack holds about a quarter
    /// of the budget (1 to 64 blocks) and moves a quarter of that per refill or drain.
    /// </summary>
    private static (int Orders, int[] High, int[] Batch) CacheShape(ArenaOptions options)
    {
        if (!options.ThreadCaches) return (0, [], []);
        long largest = Math.Min(ThreadCache.LargestCachedBytes, options.CacheBytesPerThread);
        int orders = 0;
        while (orders <= options.MaxOrder && (long)options.PageSize << orders <= largest) orders++;
        System.Diagnostics.Debug.Assert(orders * ThreadCache.Types <= ThreadCache.MaxStacks, "2 MiB of pages of at least 4 KiB is 10 orders");
        var high = new int[orders];
        var batch = new int[orders];
        for (int order = 0; order < orders; order++)
        {
            high[order] = (int)Math.Clamp(options.CacheBytesPerThread / 4 / ((long)options.PageSize << order), 1, 64);
            batch[order] = Math.Max(1, high[order] / 4);
        }
        return (orders, high, batch);
    }

    /// <summary>Small ids, reused after Dispose, so each thread's table is as long as the most arenas alive at once.</summary>
    private static int TakeCacheId()
    {
        lock (CacheIdLock) return FreeCacheIds.TryPop(out int id) ? id : nextCacheId++;
    }

    private void ReturnCacheId()
    {
        if (cacheId < 0) return;
        lock (CacheIdLock) FreeCacheIds.Push(cacheId);
    }

    internal int CachedOrders => cachedOrders;
    internal int CacheBatchOf(int order) => cacheBatch[order];
    internal int ThreadCacheCount
    {
        get { lock (cacheLock) return threadCaches.Count; }
    }

    /// <summary>
    /// Allocations and frees so far, zones' and thread caches' (racy reads, no locks): a reporter compares
    /// two readings to tell whether the arena was idle in between, and nothing else relies on it.
    /// </summary>
    internal long OperationCount()
    {
        using (gate.Enter())
        {
            long operations = Volatile.Read(ref offlineTotals.Allocations) + Volatile.Read(ref offlineTotals.Frees);
            foreach (Zone zone in online.Zones) operations += Volatile.Read(ref zone.Allocations) + Volatile.Read(ref zone.Frees);
            lock (cacheLock)
            {
                foreach (ThreadCache cache in threadCaches) operations += cache.Operations;
                operations += retiredAllocations + retiredFrees;
            }
            return operations;
        }
    }

    /// <summary>Free bytes in thread caches now, read without claiming them: a hint, exact only when they are quiet.</summary>
    internal long CachedBytes()
    {
        lock (cacheLock)
        {
            long bytes = 0;
            foreach (ThreadCache cache in threadCaches) bytes += Volatile.Read(ref cache.State.CachedBytes);
            return bytes;
        }
    }

    /// <summary>Returns every block held by thread caches to its zone, so it can merge and be reported.</summary>
    public void DrainThreadCaches()
    {
        using (gate.Enter()) DrainCaches();
    }

    /// <summary>
    /// The calling thread's cache state, made on first use; null when the arena keeps none or is
    /// closing. The state's address is kept beside the cache object, which keeps it alive, so a hit
    /// is one thread-static load and one compare, as a field of the object would be.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ThreadCache.Hot* StateOfThisThread()
    {
        ThreadCache.Hot* state = lastState;
        return state != null && state->ArenaSerial == serial ? state : FindCache();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private ThreadCache.Hot* FindCache()
    {
        ThreadCache?[]? table = cachesOfThread;
        ThreadCache? cache = table is not null && cacheId < table.Length ? table[cacheId] : null;
        if (cache is null || cache.Arena != this)
        {
            cache = Register();
            if (cache is null) return null;
            if (table is null || cacheId >= table.Length) Array.Resize(ref cachesOfThread, Math.Max(4, cacheId * 2 + 1));
            cachesOfThread![cacheId] = cache;
        }
        lastCache = cache;
        lastState = cache.StateAddress;
        return lastState;
    }

    private ThreadCache? Register()
    {
        lock (cacheLock)
        {
            if (cachesClosed) return null;
            // Threads come and go: a new one is the moment to send home what exited ones left.
            RetireExited([.. threadCaches.Where(c => !c.Owner.IsAlive)], claimed: false);
            var cache = new ThreadCache(this, serial, Thread.CurrentThread, cacheView);
            threadCaches.Add(cache);
            return cache;
        }
    }

    private bool TryAllocateCached(ref ThreadCache.Hot state, int order, Migratetype type, bool zeroed, out nint address)
    {
        address = 0;
        if (!state.TryEnter()) return false;
        string? damage = null;
        try
        {
            int stack = ThreadCache.Stack(order, type);
            if (state.Counts[stack] == 0 && !Refill(ref state, stack, order, type)) return false;
            uint page = state.Pop(map, stack, order);
            ref PageDescriptor d = ref map[page];
            PageFlags memory = d.Flags & PageStates.Memory;
            FlagsOf(ref d) = (uint)PageFlags.Head;
            state.Allocations++;
            address = AddressOf(page);
            // Memory is touched inside: Dispose waits for the owner to leave before it frees anything.
            if ((memory & PageFlags.Poisoned) != 0) damage = FindPoisonDamage(address, order);
            if ((memory & PageFlags.Reported) != 0 && order >= populateOrder) Populate(address, order);
            if (zeroed && (memory & PageFlags.Zeroed) != 0) state.ZeroSkippedBytes += BytesOf(order);
            else if (zeroed) NativeMemory.Clear((void*)address, (nuint)BytesOf(order));
        }
        finally
        {
            state.Exit();
        }
        if (damage is not null) throw PoisonDamaged(address, damage);
        return true;
    }

    /// <summary>
    /// Frees into the calling thread's cache. Returns false to send the caller down the zone path,
    /// which also reports every kind of bad free under the zone lock.
    /// </summary>
    private bool TryFreeCached(ref ThreadCache.Hot state, nint address, int expectedOrder)
    {
        if (!state.TryEnter()) return false;
        try
        {
            if (online.Find(address) is not { } section) return false;
            nint offset = address - section.Base;
            if ((offset & (options.PageSize - 1)) != 0) return false;
            uint page = section.FirstPage + (uint)(offset >> pageShift);
            ref PageDescriptor d = ref map[page];
            int order = d.Order;
            // Only an allocated head goes to the cache: a second free of it finds Cached and takes the zone path, which refuses it.
            if (FlagsOf(ref d) != (uint)PageFlags.Head || order >= cachedOrders || (expectedOrder >= 0 && order != expectedOrder)) return false;
            Migratetype type = map.PageblockType(page);
            if (type > Migratetype.Reclaimable) return false;
            var flags = (uint)(PageFlags.Cached | (options.PoisonFreedMemory ? PageFlags.Poisoned : PageFlags.None));
            if (options.ValidateOnFree)
            {
                DescriptorValidation.CheckBlock(section.ZoneOf(page), map, page, address);
                // Claimed by exchange: of two racing frees, the loser takes the zone path and is refused there.
                if (Interlocked.CompareExchange(ref FlagsOf(ref d), flags, (uint)PageFlags.Head) != (uint)PageFlags.Head) return false;
            }
            else FlagsOf(ref d) = flags;
            if (options.PoisonFreedMemory) NativeMemory.Fill((void*)address, (nuint)BytesOf(order), PageMap.Poison);
            int stack = ThreadCache.Stack(order, type);
            state.Push(map, stack, page, order);
            state.Frees++;
            if (state.Counts[stack] > cacheHigh[order]) Drain(ref state, stack, cacheBatch[order]);
            else if (state.CachedBytes > options.CacheBytesPerThread) Shrink(ref state);
            return true;
        }
        finally
        {
            state.Exit();
        }
    }

    /// <summary>
    /// Takes up to a batch for one stack, under one lock acquisition, from the first zone with a block
    /// to spare, in the order the zone path searches: sections in slot order, so added ones can drain;
    /// in each, the processor's zone first, above the low watermark and then above the min.
    /// </summary>
    private bool Refill(ref ThreadCache.Hot state, int stack, int order, Migratetype type)
    {
        int first = FirstZone();
        foreach (Section section in online.BySlot)
        {
            Zone[] zones = section.Zones;
            for (int pass = 0; pass < 2; pass++)
            {
                for (int i = 0; i < zones.Length; i++)
                {
                    Zone zone = zones[(first + i) % zones.Length];
                    long keepFree = pass == 0 ? zone.LowWatermark : zone.MinWatermark;
                    if (Volatile.Read(ref zone.FreePages) - (1L << order) < keepFree) continue;
                    lock (zone.Lock)
                    {
                        for (int taken = 0; taken < cacheBatch[order]; taken++)
                        {
                            TakenBlock block = zone.Take(order, type, keepFree);
                            if (!block.Found) break;
                            zone.HandToCache(block.Page, block.Memory);
                            state.Push(map, stack, block.Page, order);
                        }
                    }
                    if (state.Counts[stack] > 0) return true;
                }
            }
        }
        return false;
    }

    /// <summary>
    /// Returns up to <paramref name="count"/> blocks of one stack to their zones (cache held); returns the
    /// pages moved. <paramref name="aged"/>: the cache sat idle since the last look, so its blocks are older
    /// than this round; a busy cache's were maybe freed a moment ago, and are as young as a free.
    /// </summary>
    private long Drain(ref ThreadCache.Hot state, int stack, int count, bool aged = false)
    {
        int order = stack / ThreadCache.Types;
        long pages = 0;
        Zone? held = null;
        Zone? notifyZone = null;
        int notifyOrder = -1;
        try
        {
            for (int i = 0; i < count; i++)
            {
                uint page = state.Pop(map, stack, order);
                if (page == PageDescriptor.None) break;
                Zone zone = ZoneOf(page);
                if (zone != held)
                {
                    held?.Lock.Exit();
                    held = zone;
                    zone.Lock.Enter();
                }
                PageFlags memory = map[page].Flags & PageStates.Memory;
                int merged = zone.Free(page, order, memory, fromCache: true, aged);
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

    private long DrainAll(ThreadCache cache, bool aged = false)
    {
        long pages = 0;
        for (int stack = 0; stack < cachedOrders * ThreadCache.Types; stack++) pages += Drain(ref cache.State, stack, int.MaxValue, aged);
        return pages;
    }

    /// <summary>Over its byte budget: largest blocks go home first, until the cache holds half the budget.</summary>
    private void Shrink(ref ThreadCache.Hot state)
    {
        for (int stack = cachedOrders * ThreadCache.Types - 1; stack >= 0 && state.CachedBytes > options.CacheBytesPerThread / 2; stack--)
            Drain(ref state, stack, int.MaxValue);
    }

    /// <summary>Drains every cache (the caller is inside the gate); returns how many pages went home.</summary>
    private long DrainCaches()
    {
        lock (cacheLock)
        {
            if (cachesClosed) return 0;
            ThreadCache[] all = [.. threadCaches];
            ThreadCache.Claim(all);
            long pages = 0;
            try
            {
                foreach (ThreadCache cache in all) pages += DrainAll(cache);
                RetireExited(Array.FindAll(all, c => !c.Owner.IsAlive), claimed: true);
            }
            finally
            {
                ThreadCache.Release(all);
            }
            return pages;
        }
    }

    /// <summary>
    /// Drains the caches of threads that neither allocated nor freed since the last call, and of
    /// threads that exited; busy caches keep their blocks, for their owners will want them. Returns
    /// the pages drained and the bytes busy caches still hold, so a reporter can look again later.
    /// </summary>
    internal (long DrainedPages, long BusyBytes) DrainIdleCaches()
    {
        using (gate.Enter())
        lock (cacheLock)
        {
            if (cachesClosed) return (0, 0);
            var idle = new List<ThreadCache>();
            long busyBytes = 0, drained = 0;
            foreach (ThreadCache cache in threadCaches)
            {
                long operations = cache.Operations;
                bool wasIdle = operations == cache.OperationsSeen || !cache.Owner.IsAlive;
                cache.OperationsSeen = operations;
                if (wasIdle && Volatile.Read(ref cache.State.CachedBytes) > 0) idle.Add(cache);
                else if (!wasIdle) busyBytes += Volatile.Read(ref cache.State.CachedBytes);
            }
            ThreadCache.Claim(CollectionsMarshal.AsSpan(idle));
            try
            {
                foreach (ThreadCache cache in idle) drained += DrainAll(cache, aged: true);
                RetireExited([.. idle.Where(c => !c.Owner.IsAlive)], claimed: true);
            }
            finally
            {
                ThreadCache.Release(CollectionsMarshal.AsSpan(idle));
            }
            return (drained, busyBytes);
        }
    }

    /// <summary>Sends home the caches of exited threads and forgets them, keeping their counts (cache lock held).</summary>
    private void RetireExited(ThreadCache[] exited, bool claimed)
    {
        if (exited.Length == 0) return;
        if (!claimed) ThreadCache.Claim(exited);
        foreach (ThreadCache cache in exited)
        {
            DrainAll(cache, aged: true);
            retiredAllocations += cache.State.Allocations;
            retiredFrees += cache.State.Frees;
            retiredZeroSkipped += cache.State.ZeroSkippedBytes;
            threadCaches.Remove(cache);
        }
        // Nothing reaches these caches now: not the list, not their dead owners' thread statics.
        foreach (ThreadCache cache in exited) cache.Retire();
    }

    /// <summary>Takes the cache lock and claims every cache, for a consistent view; release with <see cref="ExitCaches"/>.</summary>
    /// <remarks>
    /// Once Dispose has closed the caches they stay claimed for good and still hold their blocks: a
    /// call that entered before Dispose's gate closed sees them as they are, not as empty.
    /// </remarks>
    private ThreadCache[] EnterCaches()
    {
        cacheLock.Enter();
        ThreadCache[] all = [.. threadCaches];
        if (!cachesClosed) ThreadCache.Claim(all);
        return all;
    }

    private void ExitCaches(ThreadCache[] all)
    {
        Debug.Assert(cacheLock.IsHeldByCurrentThread, "EnterCaches took the cache lock");
        if (!cachesClosed) ThreadCache.Release(all);
        cacheLock.Exit();
    }

    /// <summary>Pages each zone has in thread caches, by zone index (caches claimed).</summary>
    private long[] CachedPagesByZone(ThreadCache[] all)
    {
        var pages = new long[zoneTable.Length];
        foreach (ThreadCache cache in all)
            for (int stack = 0; stack < cachedOrders * ThreadCache.Types; stack++)
                for (uint p = cache.Head(stack); p != PageDescriptor.None; p = map[p].Next)
                    pages[ZoneOf(p).Index] += 1L << (stack / ThreadCache.Types);
        return pages;
    }

    /// <summary>Claims every cache for good: after this no owner enters one, and new threads get none.</summary>
    private void CloseCaches()
    {
        lock (cacheLock)
        {
            cachesClosed = true;
            ThreadCache.Claim(CollectionsMarshal.AsSpan(threadCaches));
        }
    }

    /// <summary>The flags word of a descriptor as a uint, for Volatile and Interlocked.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ref uint FlagsOf(ref PageDescriptor d) => ref Unsafe.As<PageFlags, uint>(ref d.Flags);
}
