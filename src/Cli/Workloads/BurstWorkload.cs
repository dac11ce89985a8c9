using System.Runtime.InteropServices;

namespace Buddy.Cli.Workloads;

/// <summary>
/// A service-like burst: buffers of 64 KiB to 4 MiB pile up to a peak, every byte written, then
/// all but a small live set is freed.
/// </summary>
public sealed unsafe class BurstWorkload
{
    private readonly BuddyArena arena;
    private readonly Random random;
    private readonly List<nint> blocks = [];

    public BurstWorkload(BuddyArena arena, int seed = 1)
    {
        this.arena = arena;
        random = new Random(seed);
    }

    public long LiveBytes { get; private set; }

    public long Allocations { get; private set; }

    /// <summary>Allocates and touches buffers until <paramref name="bytes"/> are live.</summary>
    public void GrowTo(long bytes)
    {
        while (LiveBytes < bytes)
        {
            int order = random.Next(4, arena.MaxOrder + 1);
            nint block = arena.Allocate(order);
            long size = arena.BlockBytes(order);
            NativeMemory.Fill((void*)block, (nuint)size, (byte)(Allocations | 1));
            blocks.Add(block);
            LiveBytes += size;
            Allocations++;
        }
    }

    /// <summary>Frees buffers in random order until at most <paramref name="bytes"/> are live.</summary>
    public void ShrinkTo(long bytes)
    {
        random.Shuffle(CollectionsMarshal.AsSpan(blocks));
        while (LiveBytes > bytes && blocks.Count > 0)
        {
            nint block = blocks[^1];
            blocks.RemoveAt(blocks.Count - 1);
            LiveBytes -= arena.BlockSize(block);
            arena.Free(block);
        }
    }
}
