namespace Buddy;

/// <summary>
/// What libbuddy's C fast path (src/Native/fastpath/buddy_fast.c) reads of the arena: each thread
/// cache's state carries a view of the arena's geometry, and a table of section bases lets the C
/// path find a freed block's page without the managed section set.
/// </summary>
public sealed unsafe partial class BuddyArena
{
    /// <summary>
    /// Per slot, the base of its section while online, else 0; one more word after them counts the
    /// slots ever used. Native, for libbuddy's C fast path, which finds a freed block's section here.
    /// </summary>
    private readonly nint* sectionBases;
    private readonly ThreadCache.FastPathView cacheView;

    /// <summary>
    /// The calling thread's cache with a reference for a C thread binding (libbuddy's fast path), or
    /// null when the arena keeps none. The binding drops the reference when it is replaced or its thread exits.
    /// </summary>
    internal ThreadCache.Hot* BindThreadCache()
    {
        ObjectDisposedException.ThrowIf(IsDisposed, this);
        if (cachedOrders == 0 || StateOfThisThread() is not (var state and not null)) return null;
        // The thread's last cache holds its object, so the state cannot go meanwhile.
        Interlocked.Increment(ref state->References);
        return state;
    }

    private int* SlotsInUse => (int*)(sectionBases + slots.Length);

    /// <summary>Publishes a section's base for the C fast path, before the section is published to allocation.</summary>
    private void PublishSectionBase(int slot, nint sectionBase)
    {
        Volatile.Write(ref sectionBases[slot], sectionBase);
        // After the base: a reader that sees the count sees every base below it.
        if (slot >= *SlotsInUse) Volatile.Write(ref *SlotsInUse, slot + 1);
    }

    private ThreadCache.FastPathView ViewForCaches()
    {
        var view = new ThreadCache.FastPathView
        {
            Descriptors = map.Descriptors,
            PageblockTypes = map.PageblockTypes,
            SectionBases = sectionBases,
            SlotsInUse = SlotsInUse,
            ReservationBase = reservation?.Base ?? 0,
            SectionBytes = options.ResolvedSectionSize,
            CacheBytesPerThread = options.CacheBytesPerThread,
            PageShift = pageShift,
            PageblockOrder = options.PageblockOrder,
            SectionShift = options.SectionIndexShift,
            CachedOrders = cachedOrders,
            FastFree = options.ValidateOnFree || options.PoisonFreedMemory ? 0 : 1,
            SlowMemory = (uint)(PageFlags.Poisoned | (options.PopulateReportedBlocks ? PageFlags.Reported : PageFlags.None)),
        };
        for (int order = 0; order < cachedOrders; order++) view.High[order] = cacheHigh[order];
        return view;
    }
}
