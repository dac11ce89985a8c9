using System.Runtime.InteropServices;

namespace Buddy.Cli.Workloads;

/// <summary>
/// A service-like burst: buffers of 64 KiB to 4 MiB pile up to a peak, every byte written. A share
/// of them are long-lived (Unmovable, kept after the burst, like a cache); the rest are request
/// buffers (Movable) that the end of the burst frees.
/// </summary>
public sealed unsafe class BurstWorkload
{
    private readonly BuddyArena arena;
    private readonly Random random;
    private readonly List<nint> longLived = [];
    private readonly List<nint> shortLived = [];

    public BurstWorkload(BuddyArena arena, int seed = 1)
    {
        this.arena = arena;
        random = new Random(seed);
    }

    public long LiveBytes { get; private set; }

    public long LongLivedBytes { get; private set; }

    public long Allocations { get; private set; }

    /// <summary>Allocates and touches buffers until <paramref name="peakBytes"/> are live, <paramref name="longLivedBytes"/> of them long-lived.</summary>
    public void Burst(long peakBytes, long longLivedBytes)
    {
        while (LiveBytes < peakBytes)
        {
            bool keep = LongLivedBytes < longLivedBytes && random.NextDouble() < (double)longLivedBytes / peakBytes;
            int order = random.Next(4, arena.MaxOrder + 1);
            long size = arena.BytesOfOrder(order);
            nint block = arena.Allocate(order, keep ? Migratetype.Unmovable : Migratetype.Movable);
            NativeMemory.Fill((void*)block, (nuint)size, (byte)(Allocations | 1));
            (keep ? longLived : shortLived).Add(block);
            LiveBytes += size;
            if (keep) LongLivedBytes += size;
            Allocations++;
        }
    }

    /// <summary>Frees every short-lived buffer, in random order.</summary>
    public void EndBurst()
    {
        random.Shuffle(CollectionsMarshal.AsSpan(shortLived));
        foreach (nint block in shortLived)
        {
            LiveBytes -= arena.SizeOfBlock(block);
            arena.Free(block);
        }
        shortLived.Clear();
    }

    /// <summary>Frees the long-lived buffers too.</summary>
    public void EndAll()
    {
        EndBurst();
        foreach (nint block in longLived)
        {
            LiveBytes -= arena.SizeOfBlock(block);
            arena.Free(block);
        }
        longLived.Clear();
        LongLivedBytes = 0;
    }
}
