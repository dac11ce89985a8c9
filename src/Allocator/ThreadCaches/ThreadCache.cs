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
internal sealed class ThreadCache
{
    public const int Types = 3; // Unmovable, Movable, Reclaimable
    /// <summary>Blocks up to 2 MiB are cached: the transparent-huge-page order Linux's per-CPU lists keep since 5.13.</summary>
    public const long LargestCachedBytes = 2L << 20;
    public const int MaxStacks = 48;

    /// <summary>The owner's state on cache lines of its own, so two threads' caches never share one.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public unsafe struct Hot
    {
        private fixed byte leading[64];
        /// <summary>Written only by the owner: 1 while it works on the stacks.</summary>
        public int Inside;
        /// <summary>Written only by drainers (one at a time, under the arena's cache lock), and for good by Dispose.</summary>
        public int Claimed;
        public long CachedBytes;
        public long Allocations;
        public long Frees;
        public long ZeroSkippedBytes;
        public fixed uint Heads[MaxStacks];
        public fixed int Counts[MaxStacks];
        private fixed byte trailing[64];
    }

    public Hot State;
    public readonly BuddyArena Arena;
    public readonly Thread Owner;
    /// <summary>Allocations plus frees at the last idle check (drainers only).</summary>
    public long OperationsSeen = -1;

    public unsafe ThreadCache(BuddyArena arena, Thread owner)
    {
        Arena = arena;
        Owner = owner;
        for (int i = 0; i < MaxStacks; i++) State.Heads[i] = PageDescriptor.None;
    }

    public long Operations => Volatile.Read(ref State.Allocations) + Volatile.Read(ref State.Frees);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Stack(int order, Migratetype type) => order * Types + (int)type;

    /// <summary>Enters as the owner; false (and not inside) when a drainer holds the cache.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryEnter()
    {
        Volatile.Write(ref State.Inside, 1);
        if (Volatile.Read(ref State.Claimed) == 0) return true;
        Volatile.Write(ref State.Inside, 0);
        return false;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit() => Volatile.Write(ref State.Inside, 0);

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
        foreach (ThreadCache cache in caches) Volatile.Write(ref cache.State.Claimed, 0);
    }

    // The caller is the owner inside, or a drainer holding the claim: plain list operations.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe void Push(PageMap map, int stack, uint page, int order)
    {
        Debug.Assert(State.Inside != 0 || State.Claimed != 0, "the cache is held");
        map[page].Next = State.Heads[stack];
        State.Heads[stack] = page;
        State.Counts[stack]++;
        State.CachedBytes += (long)map.PageSize << order;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe uint Pop(PageMap map, int stack, int order)
    {
        Debug.Assert(State.Inside != 0 || State.Claimed != 0, "the cache is held");
        uint page = State.Heads[stack];
        if (page == PageDescriptor.None) return page;
        ref PageDescriptor d = ref map[page];
        State.Heads[stack] = d.Next;
        d.Next = PageDescriptor.None;
        State.Counts[stack]--;
        State.CachedBytes -= (long)map.PageSize << order;
        return page;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe int Count(int stack) => State.Counts[stack];

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public unsafe uint Head(int stack) => State.Heads[stack];
}
