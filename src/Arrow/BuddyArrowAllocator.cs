using System.Buffers;
using Apache.Arrow.Memory;

namespace Buddy.Arrow;

/// <summary>
/// An Arrow <see cref="MemoryAllocator"/> over a Buddy arena: every buffer of a record batch is a
/// block of the arena, page-aligned (well past Arrow's 64 bytes), its requested bytes zeroed as Arrow's
/// own allocator zeroes its buffers; the rest of the block is never touched, so it costs no page.
/// Disposing the batch frees its blocks, and the arena's reporter gives them back to the OS; Arrow's
/// <see cref="NativeMemoryAllocator"/> adds GC memory pressure per buffer and never hands memory back
/// while the process keeps its heap. A buffer's memory is exactly the length asked for; the rest of
/// its block is counted in <see cref="MemoryAllocator.Statistics"/>.
/// </summary>
public sealed class BuddyArrowAllocator : MemoryAllocator, IDisposable
{
    private readonly BuddyMemoryPool pool;

    /// <param name="arena">Where the buffers come from.</param>
    /// <param name="ownsArena">Dispose the arena with the allocator; otherwise the caller keeps it.</param>
    public BuddyArrowAllocator(BuddyArena arena, bool ownsArena = false) : base(DefaultAlignment)
    {
        ArgumentNullException.ThrowIfNull(arena);
        pool = new BuddyMemoryPool(arena, ownsArena, owner: "arrow");
    }

    /// <summary>The arena buffers come from.</summary>
    public BuddyArena Arena => pool.Arena;

    /// <summary>The largest buffer one allocation can return: the arena's largest block, at most 1 GiB.</summary>
    public int MaxBufferSize => pool.MaxBufferSize;

    /// <inheritdoc/>
    protected override IMemoryOwner<byte> AllocateInternal(int length, out int bytesAllocated)
    {
        if (length > pool.MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(length), length,
                $"An Arrow buffer of {length} bytes is larger than the arena's largest block ({pool.MaxBufferSize} bytes): raise ArenaOptions.MaxOrder.");
        // Only the bytes asked for are cleared: the rest of a power-of-two block stays untouched, and unfaulted.
        IMemoryOwner<byte> owner = pool.Rent(length, zeroed: false, exactLength: true);
        owner.Memory.Span.Clear();
        bytesAllocated = (int)Arena.BytesOfOrder(Arena.OrderForSize(Math.Max(1, length)));
        return owner;
    }

    /// <summary>Later allocations throw; buffers still alive are freed when their batches are disposed.</summary>
    public void Dispose() => pool.Dispose();
}
