using System.Diagnostics;

namespace Buddy;

/// <summary>What memory pools over the arena need from it: their counters, and a block's array.</summary>
public sealed partial class BuddyArena
{
    private readonly Lock poolCountersLock = new();
    /// <summary>One entry per owner name pools were made with; replaced whole, so readers take it without the lock.</summary>
    private volatile PoolCounters[] poolCounters = [];

    /// <summary>The counters every pool of <paramref name="owner"/> over this arena shares, made on first use.</summary>
    internal PoolCounters PoolCountersOf(string? owner)
    {
        lock (poolCountersLock)
        {
            foreach (PoolCounters counters in poolCounters)
                if (counters.Owner == owner) return counters;
            var made = new PoolCounters(owner);
            poolCounters = [.. poolCounters, made];
            return made;
        }
    }

    internal PoolCounters[] PoolCounters => poolCounters;

    /// <summary>
    /// The pinned array holding a block the caller has allocated and not freed, and the block's
    /// offset in it. No gate and no descriptor read: a section with a block allocated stays online.
    /// </summary>
    internal byte[] ArrayOfOwnedBlock(nint address, out int offset)
    {
        Section? section = online.Find(address);
        Debug.Assert(section?.Array is not null, "an allocated block of a PinnedArray arena");
        offset = section!.ArrayOffset + (int)(address - section.Base);
        return section.Array!;
    }
}
