using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// One thread's cache of free blocks of one arena (Linux's per_cpu_pages, kept per thread: in user
/// space a thread, unlike a processor, can own its cache outright). A stack per order and
/// migratetype, linked through the descriptors.
/// <para>
/// Ownership is an asymmetric Dekker handshake. The owner stores <see cref="Hot.Inside"/> = 1, then
/// reads <see cref="Hot.Claimed"/>: plain moves on x64, no interlocked operation and no fence. A
/// drainer stores Claimed = 1, issues one process-wide barrier for all the caches it claims, then
/// waits for Inside = 0. The barrier makes the store-load pair sequentially consistent: either the
/// owner saw the claim and left, or the drainer sees the owner inside and waits.
/// </para>
/// </summary>
internal sealed unsafe class ThreadCache
{
    public const int Types = 3; // Unmovable, Movable, Reclaimable
    /// <summary>Blocks up to 2 MiB are cached: the transparent-huge-page order Linux's per-CPU lists keep since 5.13.</summary>
    public const long LargestCachedBytes = 2L << 20;
    public const int MaxStacks = 48;

    /// <summary>
    /// The owner's state, in native memory aligned to a cache line, so two threads' caches never share
    /// one and libbuddy's C fast path (src/Native/fastpath) can pop and push without entering managed
    /// code. The layout is shared with that C code: change both, and <c>ThreadCacheStateTests</c>.
    /// </summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct Hot
    {
        /// <summary>Written only by the owner: 1 while it works on the stacks.</summary>
        public int Inside;
        /// <summary>Written only by drainers (one at a time, under the arena's cache lock), and for good by Dispose.</summary>
        public int Claimed;
        public long CachedBytes;
        public long Allocations;
        public long Frees;
        public long ZeroSkippedBytes;
        /// <summary>The arena's serial, never reused: the managed path's check that a thread's last state is this arena's.</summary>
        public long ArenaSerial;
        /// <summary>Holders of this memory: the <see cref="ThreadCache"/> object and any C thread binding; the last one frees it.</summary>
        public int References;
        private int padding;
        public fixed uint Heads[MaxStacks];
        public fixed int Counts[MaxStacks];
        /// <summary>The arena's geometry, written before the cache is published and never again.</summary>
        public FastPathView View;

        /// <summary>Enters as the owner; false (and not inside) when a drainer holds the cache.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public bool TryEnter()
        {
            Volatile.Write(ref Inside, 1);
            if (Volatile.Read(ref Claimed) == 0) return true;
            Volatile.Write(ref Inside, 0);
            return false;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Exit() => Volatile.Write(ref Inside, 0);

        // The caller is the owner inside, or a drainer holding the claim: plain list operations.
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public void Push(PageMap map, int stack, uint page, int order)
        {
            Debug.Assert(Inside != 0 || Claimed != 0, "the cache is held");
            map[page].Next = Heads[stack];
            Heads[stack] = page;
            Counts[stack]++;
            CachedBytes += (long)map.PageSize << order;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public uint Pop(PageMap map, int stack, int order)
        {
            Debug.Assert(Inside != 0 || Claimed != 0, "the cache is held");
            uint page = Heads[stack];
            if (page == PageDescriptor.None) return page;
            ref PageDescriptor d = ref map[page];
            Heads[stack] = d.Next;
            d.Next = PageDescriptor.None;
            Counts[stack]--;
            CachedBytes -= (long)map.PageSize << order;
            return page;
        }
    }

    /// <summary>What the C fast path needs to know of the arena; pointers stay valid until Dispose, which claims every cache first.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct FastPathView
    {
        public PageDescriptor* Descriptors;
        public Migratetype* PageblockTypes;
        /// <summary>Per slot, the base of its section while online, else 0 (<see cref="SectionBases"/>).</summary>
        public nint* SectionBases;
        /// <summary>Slots ever brought online: the bound of a search through <see cref="SectionBases"/>.</summary>
        public int* SlotsInUse;
        /// <summary>The reservation holding every slot at base + slot * SectionBytes, or 0 when sections lie anywhere.</summary>
        public nint ReservationBase;
        public long SectionBytes;
        public long CacheBytesPerThread;
        public int PageShift;
        public int PageblockOrder;
        public int SectionShift;
        public int CachedOrders;
        /// <summary>1 when a free may be cached without checks the C path does not make (validation, poisoning).</summary>
        public int FastFree;
        /// <summary>Memory flags that send an allocation to the managed path (poison checks, populating reported blocks).</summary>
        public uint SlowMemory;
        public fixed int High[MaxOrders];
    }

    public const int MaxOrders = MaxStacks / Types;

    /// <summary>Whole cache lines: the next allocation never shares the owner's.</summary>
    private static nuint AllocatedBytes => (nuint)((sizeof(Hot) + 63) & ~63);

    private readonly Hot* hot;
    public readonly BuddyArena Arena;
    public readonly Thread Owner;
    /// <summary>Allocations plus frees at the last idle check (drainers only).</summary>
    public long OperationsSeen = -1;

    public ThreadCache(BuddyArena arena, long arenaSerial, Thread owner, in FastPathView view)
    {
        Arena = arena;
        Owner = owner;
        hot = (Hot*)NativeMemory.AlignedAlloc(AllocatedBytes, 64);
        NativeMemory.Clear(hot, AllocatedBytes);
        hot->References = 1;
        hot->ArenaSerial = arenaSerial;
        hot->View = view;
        for (int i = 0; i < MaxStacks; i++) hot->Heads[i] = PageDescriptor.None;
    }

    /// <summary>The object's reference goes when nothing managed can reach it; a C binding may keep the memory longer.</summary>
    ~ThreadCache()
    {
        // Null when the constructor's allocation threw.
        if (hot != null) ReleaseState(hot);
    }

    /// <summary>
    /// Lets go of the state when the owner has exited and the arena has forgotten the cache, rather
    /// than at some later collection: a process whose threads come and go keeps no states behind.
    /// </summary>
    public void Retire()
    {
        retired = true;
        GC.SuppressFinalize(this);
        ReleaseState(hot);
    }

    /// <summary>Set by <see cref="Retire"/> (cache lock held): a drainer's release then skips the state it no longer holds.</summary>
    private bool retired;

    /// <summary>The state, for the owner inside or a drainer holding the claim.</summary>
    public ref Hot State
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => ref *hot;
    }

    /// <summary>The state's address, for the owner's thread-static copy; the object keeps it valid.</summary>
    public Hot* StateAddress => hot;

    /// <summary>Drops a reference; the last frees the memory (NativeMemory.AlignedFree is free() on Unix, as the C side assumes).</summary>
    public static void ReleaseState(Hot* state)
    {
        if (Interlocked.Decrement(ref state->References) == 0) NativeMemory.AlignedFree(state);
    }

    public long Operations => Volatile.Read(ref State.Allocations) + Volatile.Read(ref State.Frees);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Stack(int order, Migratetype type) => order * Types + (int)type;

    /// <summary>Claims every cache with one process-wide barrier and waits until no owner is inside (cache lock held).</summary>
    public static void Claim(ReadOnlySpan<ThreadCache> caches)
    {
        if (caches.IsEmpty) return;
        foreach (ThreadCache cache in caches) Volatile.Write(ref cache.State.Claimed, 1);
        Interlocked.MemoryBarrierProcessWide();
        foreach (ThreadCache cache in caches)
        {
            var spinner = new SpinWait();
            while (Volatile.Read(ref cache.State.Inside) != 0) spinner.SpinOnce();
        }
    }

    public static void Release(ReadOnlySpan<ThreadCache> caches)
    {
        foreach (ThreadCache cache in caches)
            if (!cache.retired) Volatile.Write(ref cache.State.Claimed, 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe int Count(int stack) => State.Counts[stack];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe uint Head(int stack) => State.Heads[stack];
}
