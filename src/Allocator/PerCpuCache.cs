using System.Runtime.InteropServices;

namespace Buddy;

/// <summary>
/// One processor's cache of small free blocks (Linux's per_cpu_pages): a stack per order and
/// migratetype, linked through the descriptors, behind a trylock. A thread that finds the lock
/// taken (another thread on the same processor slot) uses the zone path instead of waiting.
/// </summary>
internal sealed class PerCpuCache
{
    public const int MaxOrder = 3;
    public const int Types = 3; // Unmovable, Movable, Reclaimable
    /// <summary>Blocks moved per refill or drain, under one zone-lock acquisition.</summary>
    public const int Batch = 8;
    /// <summary>Above this many blocks on one stack, a batch goes back to the zones.</summary>
    public const int High = 32;

    private readonly uint[] heads = new uint[(MaxOrder + 1) * Types];
    private readonly int[] counts = new int[(MaxOrder + 1) * Types];
    private int locked;

    /// <summary>Pages cached per zone: the per-CPU share of each zone's AllocatedPages.</summary>
    public readonly long[] CachedByZone;
    public long Allocations;
    public long Frees;
    public long ZeroSkippedBytes;

    public PerCpuCache(int zones)
    {
        Array.Fill(heads, PageDescriptor.None);
        CachedByZone = new long[zones];
    }

    public static bool Serves(int order, Migratetype type) => order <= MaxOrder && type <= Migratetype.Reclaimable;

    public bool TryEnter() => Interlocked.CompareExchange(ref locked, 1, 0) == 0;

    /// <summary>Waits for the lock: for statistics and drains, never on the allocation path.</summary>
    public void Enter()
    {
        var spinner = new SpinWait();
        while (!TryEnter()) spinner.SpinOnce();
    }

    public void Exit() => Volatile.Write(ref locked, 0);

    public static int Stack(int order, Migratetype type) => order * Types + (int)type;

    public int Count(int stack) => counts[stack];

    public uint Head(int stack) => heads[stack];

    // The lock is held: these are plain list operations.
    public void Push(PageMap map, int stack, uint page)
    {
        map[page].Next = heads[stack];
        heads[stack] = page;
        counts[stack]++;
    }

    public uint Pop(PageMap map, int stack)
    {
        uint page = heads[stack];
        if (page == PageDescriptor.None) return page;
        heads[stack] = map[page].Next;
        map[page].Next = PageDescriptor.None;
        counts[stack]--;
        return page;
    }
}
