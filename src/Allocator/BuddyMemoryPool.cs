using System.Buffers;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// A <see cref="MemoryPool{T}"/> of bytes over an arena. <see cref="Rent"/> hands out the smallest
/// block that holds the request, and the owner's memory is the whole block. Disposing an owner frees
/// its block exactly once, however many times and from however many threads it is disposed. Over a
/// <see cref="ArenaBacking.PinnedArray"/> arena every block's memory is array-backed
/// (<c>MemoryMarshal.TryGetArray</c> succeeds, as Kestrel's socket transport requires); over native
/// memory, <c>Pin</c> needs no GC handle.
/// </summary>
public sealed class BuddyMemoryPool : MemoryPool<byte>
{
    /// <summary>What <c>Rent(-1)</c> hands out: one 4 KiB page, the size Kestrel and Pipelines ask for.</summary>
    public const int DefaultBufferSize = 4096;

    private readonly BuddyArena arena;
    private readonly bool ownsArena;
    private readonly bool arrayBacked;
    private int disposed;

    /// <param name="arena">Where the blocks come from.</param>
    /// <param name="ownsArena">Dispose the arena with the pool; otherwise the caller keeps it.</param>
    public BuddyMemoryPool(BuddyArena arena, bool ownsArena = false)
    {
        ArgumentNullException.ThrowIfNull(arena);
        ObjectDisposedException.ThrowIf(arena.IsDisposed, arena);
        this.arena = arena;
        this.ownsArena = ownsArena;
        arrayBacked = arena.Options.Backing == ArenaBacking.PinnedArray;
        // Memory<byte> counts in int: the largest block that fits one.
        long largest = arena.LargestBlockBytes;
        while (largest > int.MaxValue) largest >>= 1;
        MaxBufferSize = (int)largest;
    }

    public BuddyArena Arena => arena;

    /// <summary>The largest block a rent can return (the arena's largest block, at most 1 GiB).</summary>
    public override int MaxBufferSize { get; }

    /// <summary>
    /// Rents the smallest block of at least <paramref name="minBufferSize"/> bytes (-1: <see cref="DefaultBufferSize"/>).
    /// Throws <see cref="ArenaExhaustedException"/> when the arena has no such block and cannot grow.
    /// </summary>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        if (minBufferSize == -1) minBufferSize = DefaultBufferSize;
        else if (minBufferSize < 0 || minBufferSize > MaxBufferSize)
            throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize,
                $"minBufferSize must be -1 (the default, {DefaultBufferSize} bytes) or between 0 and MaxBufferSize ({MaxBufferSize}).");
        int order = arena.OrderForSize(Math.Max(1, minBufferSize));
        nint address = arena.Allocate(order);
        int length = (int)arena.BytesOfOrder(order);
        if (!arrayBacked) return new Block(arena, address, length, null, 0);
        ArraySegment<byte> segment = arena.GetArraySegment(address);
        return new Block(arena, address, length, segment.Array, segment.Offset);
    }

    /// <summary>Later rents throw; blocks still rented can be returned, and are freed while the arena lives.</summary>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0) return;
        if (ownsArena) arena.Dispose();
    }

    /// <summary>One rented block. The address is taken by exchange on dispose, so only one dispose frees it.</summary>
    private sealed unsafe class Block(BuddyArena arena, nint address, int length, byte[]? array, int arrayOffset) : MemoryManager<byte>
    {
        private nint address = address;

        public override Memory<byte> Memory => CreateMemory(length);

        public override Span<byte> GetSpan() => new((void*)Address(), length);

        /// <summary>Arena memory never moves, so pinning is a pointer and nothing else.</summary>
        public override MemoryHandle Pin(int elementIndex = 0)
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)elementIndex, (uint)length, nameof(elementIndex));
            return new MemoryHandle((void*)(Address() + elementIndex));
        }

        public override void Unpin()
        {
        }

        protected override bool TryGetArray(out ArraySegment<byte> segment)
        {
            Address();
            segment = array is null ? default : new ArraySegment<byte>(array, arrayOffset, length);
            return array is not null;
        }

        protected override void Dispose(bool disposing)
        {
            nint block = Interlocked.Exchange(ref address, 0);
            if (block == 0 || arena.IsDisposed) return;
            try
            {
                arena.Free(block);
            }
            catch (ObjectDisposedException) when (arena.IsDisposed)
            {
                // The arena went away between the check and the free: its memory went with it.
            }
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private nint Address()
        {
            nint block = Volatile.Read(ref address);
            ObjectDisposedException.ThrowIf(block == 0, this);
            return block;
        }
    }
}
