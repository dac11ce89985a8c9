using System.Buffers;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// A <see cref="MemoryPool{T}"/> of bytes over an arena. <see cref="Rent(int)"/> hands out the smallest
/// block that holds the request, and the owner's memory is the whole block. Over a
/// <see cref="ArenaBacking.PinnedArray"/> arena every block's memory is array-backed
/// (<c>MemoryMarshal.TryGetArray</c> succeeds, as Kestrel's socket transport requires); over native
/// memory, <c>Pin</c> needs no GC handle.
/// <para>
/// Owner objects are reused, as Kestrel's own pool reuses its blocks, so a rent allocates nothing.
/// Disposing an owner frees its block once, however many times and from however many threads it is
/// disposed until the owner is rented again; a dispose after that frees the new renter's block, as
/// any use after dispose would touch it. <see cref="ArenaOptions.ValidateOnFree"/> turns reuse off,
/// so such a stale dispose is harmless there.
/// </para>
/// <para>
/// An owner dropped without a dispose (Kestrel does so on some connection aborts) is not lost: the
/// GC finalizes it and its block is freed then, counted in <see cref="AbandonedBlocks"/> and the
/// <c>buddy.pool.abandoned</c> counter. A pointer or array taken from an owner must not outlive it.
/// </para>
/// </summary>
public sealed class BuddyMemoryPool : MemoryPool<byte>
{
    /// <summary>What <c>Rent(-1)</c> hands out: one 4 KiB page, the size Kestrel and Pipelines ask for.</summary>
    public const int DefaultBufferSize = 4096;

    private readonly BuddyArena arena;
    private readonly bool ownsArena;
    private readonly bool arrayBacked;
    private readonly bool reuseOwners;
    private readonly PoolCounters counters;
    private int disposed;

    /// <param name="arena">Where the blocks come from.</param>
    /// <param name="ownsArena">Dispose the arena with the pool; otherwise the caller keeps it.</param>
    /// <param name="owner">Who rents from this pool (Kestrel says "kestrel"): the <c>buddy.pool.owner</c> tag of its metrics.</param>
    public BuddyMemoryPool(BuddyArena arena, bool ownsArena = false, string? owner = null)
    {
        ArgumentNullException.ThrowIfNull(arena);
        ObjectDisposedException.ThrowIf(arena.IsDisposed, arena);
        this.arena = arena;
        this.ownsArena = ownsArena;
        Owner = owner;
        counters = arena.PoolCountersOf(owner);
        arrayBacked = arena.Options.Backing == ArenaBacking.PinnedArray;
        reuseOwners = !arena.Options.ValidateOnFree;
        // Memory<byte> counts in int: the largest block that fits one.
        long largest = arena.LargestBlockBytes;
        while (largest > int.MaxValue) largest >>= 1;
        MaxBufferSize = (int)largest;
    }

    /// <summary>The arena the pool rents from.</summary>
    public BuddyArena Arena => arena;

    /// <summary>Who rents from this pool, as given when it was made.</summary>
    public string? Owner { get; }

    /// <summary>Blocks freed because their owner was garbage collected without a dispose, by every pool of this arena and owner name.</summary>
    public long AbandonedBlocks => counters.Abandoned;

    /// <summary>The largest block a rent can return (the arena's largest block, at most 1 GiB).</summary>
    public override int MaxBufferSize { get; }

    /// <summary>
    /// Rents the smallest block of at least <paramref name="minBufferSize"/> bytes (-1: <see cref="DefaultBufferSize"/>).
    /// Throws <see cref="ArenaExhaustedException"/> when the arena has no such block and cannot grow.
    /// </summary>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1) => Rent(minBufferSize, zeroed: false, exactLength: false);

    /// <summary>
    /// A rent whose block is all zero (known-zero blocks, reported or never used, are not cleared again)
    /// and whose memory is <paramref name="minBufferSize"/> bytes rather than the whole block when
    /// <paramref name="exactLength"/> is set, as Arrow's allocators hand out their buffers.
    /// </summary>
    internal IMemoryOwner<byte> Rent(int minBufferSize, bool zeroed, bool exactLength)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed) != 0, this);
        if (minBufferSize == -1) minBufferSize = DefaultBufferSize;
        else if ((uint)minBufferSize > (uint)MaxBufferSize) ThrowBadSize(minBufferSize);
        int order = arena.OrderForSize(Math.Max(1, minBufferSize));
        nint address = zeroed ? arena.AllocateZeroed(order) : arena.Allocate(order);
        int blockBytes = arena.PageSize << order;
        int length = exactLength ? minBufferSize : blockBytes;
        Block owner = (reuseOwners ? Spares.TryTake() : null) ?? new Block();
        if (arrayBacked) owner.Assign(this, address, length, blockBytes, arena.ArrayOfOwnedBlock(address, out int offset), offset);
        else owner.Assign(this, address, length, blockBytes, null, 0);
        counters.Rented(blockBytes);
        return owner;
    }

    /// <summary>Later rents throw; blocks still rented can be returned, and are freed while the arena lives.</summary>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0) return;
        if (ownsArena) arena.Dispose();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowBadSize(int minBufferSize)
        => throw new ArgumentOutOfRangeException(nameof(minBufferSize), minBufferSize,
            $"minBufferSize must be -1 (the default, {DefaultBufferSize} bytes) or between 0 and MaxBufferSize ({MaxBufferSize}).");

    private void Return(Block owner, nint address, int blockBytes, bool finalized)
    {
        counters.Returned(blockBytes, finalized);
        if (!arena.IsDisposed)
        {
            try
            {
                // The finalizer thread frees past thread caches: it has no use for the block.
                if (finalized) arena.FreeUncached(address);
                else arena.Free(address);
            }
            catch (ObjectDisposedException) when (arena.IsDisposed)
            {
                // The arena went away between the check and the free: its memory went with it.
            }
        }
        if (!finalized && reuseOwners)
        {
            owner.Release();
            Spares.Add(owner);
        }
    }

    /// <summary>
    /// One rented block. The address is taken by exchange on dispose, so of the disposes before the
    /// owner's next rent only one frees it. It re-implements <see cref="IDisposable"/> so that a
    /// dispose leaves the finalizer registered: a reused owner that is later dropped is still caught.
    /// </summary>
    private sealed unsafe class Block : MemoryManager<byte>, IDisposable
    {
        private BuddyMemoryPool? pool;
        private nint address;
        private int length, blockBytes;
        private byte[]? array;
        private int arrayOffset;
        /// <summary>The next spare owner, while this one is spare.</summary>
        public Block? NextSpare;

        /// <summary>
        /// Lets go of the pool and the section's array before the owner waits as a spare, so a spare
        /// never keeps a disposed pool, its arena, or an offline section's pinned array alive.
        /// </summary>
        public void Release() => (pool, array) = (null, null);

        /// <summary>Makes a spare owner the owner of a block (a new one, or one no one else can reach).</summary>
        public void Assign(BuddyMemoryPool pool, nint address, int length, int blockBytes, byte[]? array, int arrayOffset)
        {
            Debug.Assert(this.address == 0 && NextSpare is null, "only a spare owner is assigned");
            Debug.Assert(length <= blockBytes, "the memory lies within the block");
            this.pool = pool;
            this.length = length;
            this.blockBytes = blockBytes;
            this.array = array;
            this.arrayOffset = arrayOffset;
            Volatile.Write(ref this.address, address);
        }

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

        void IDisposable.Dispose() => Dispose(disposing: true);

        /// <summary>
        /// The safety net for an owner dropped without a dispose; the pool and arena it reaches are
        /// still alive. <see cref="Memory"/> refers to this object and keeps it alive; a span or
        /// pointer alone does not, which is why a caller keeps the owner or its Memory while it uses them.
        /// </summary>
#pragma warning disable CA2015 // A leak for good is worse: an owner nobody can reach is no longer in use by a caller that keeps its contract.
        ~Block() => Dispose(disposing: false);
#pragma warning restore CA2015

        protected override void Dispose(bool disposing)
        {
            nint block = Interlocked.Exchange(ref address, 0);
            if (block != 0) pool!.Return(this, block, blockBytes, finalized: !disposing);
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private nint Address()
        {
            nint block = Volatile.Read(ref address);
            ObjectDisposedException.ThrowIf(block == 0, this);
            return block;
        }
    }

    /// <summary>
    /// Spare owners, shared by every pool: a short stack per thread, taken and filled with plain
    /// loads and stores, and a bounded shared queue that evens out threads that rent more than they
    /// return (Kestrel rents on I/O threads and returns wherever the application reads).
    /// </summary>
    private static class Spares
    {
        private const int PerThread = 64;
        private const int Shared = 4096;

        [ThreadStatic] private static Block? head;
        [ThreadStatic] private static int count;
        private static readonly ConcurrentQueue<Block> Overflow = new();
        private static int overflowCount;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Block? TryTake()
        {
            Block? spare = head;
            if (spare is null) return TakeShared();
            head = spare.NextSpare;
            spare.NextSpare = null;
            count--;
            return spare;
        }

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static void Add(Block owner)
        {
            if (count >= PerThread)
            {
                AddShared(owner);
                return;
            }
            owner.NextSpare = head;
            head = owner;
            count++;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static Block? TakeShared()
        {
            if (Volatile.Read(ref overflowCount) == 0 || !Overflow.TryDequeue(out Block? spare)) return null;
            Interlocked.Decrement(ref overflowCount);
            return spare;
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void AddShared(Block owner)
        {
            if (Volatile.Read(ref overflowCount) >= Shared)
            {
                // Beyond the bound the owner goes to the GC, with no block for a finalizer to free.
                GC.SuppressFinalize(owner);
                return;
            }
            Interlocked.Increment(ref overflowCount);
            Overflow.Enqueue(owner);
        }
    }
}
