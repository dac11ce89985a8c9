using System.Buffers;
using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// A <see cref="MemoryPool{T}"/> of bytes over an arena. <see cref="Rent"/> hands out the smallest
/// block that holds the request, and the owner's memory is the whole block. Disposing an owner frees
/// its block exactly once, however many times and from however many threads it is disposed. Over a
/// <see cref="ArenaBacking.PinnedArray"/> arena every block's memory is array-backed
/// (<c>MemoryMarshal.TryGetArray</c> succeeds, as Kestrel's socket transport requires); over native
/// memory, <c>Pin</c> needs no GC handle.
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
    private readonly PoolInstruments instruments;
    private readonly KeyValuePair<string, object?> arenaTag, ownerTag;
    private int disposed;
    private long abandoned;

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
        instruments = PoolInstruments.For(arena.Meter);
        arenaTag = new(ArenaMetrics.ArenaTag, arena.Name);
        ownerTag = new(ArenaMetrics.PoolOwnerTag, owner);
        arrayBacked = arena.Options.Backing == ArenaBacking.PinnedArray;
        // Memory<byte> counts in int: the largest block that fits one.
        long largest = arena.LargestBlockBytes;
        while (largest > int.MaxValue) largest >>= 1;
        MaxBufferSize = (int)largest;
    }

    public BuddyArena Arena => arena;

    /// <summary>Who rents from this pool, as given when it was made.</summary>
    public string? Owner { get; }

    /// <summary>Blocks freed because their owner was garbage collected without a dispose.</summary>
    public long AbandonedBlocks => Interlocked.Read(ref abandoned);

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
        // A block counted as rented is counted back on return, even if the listener has gone meanwhile.
        bool counted = instruments.Rented.Enabled;
        if (counted) instruments.Rented.Add(length, arenaTag, ownerTag);
        if (instruments.Rents.Enabled) instruments.Rents.Add(1, arenaTag, ownerTag);
        if (!arrayBacked) return new Block(this, address, length, counted, null, 0);
        ArraySegment<byte> segment = arena.GetArraySegment(address);
        return new Block(this, address, length, counted, segment.Array, segment.Offset);
    }

    /// <summary>Later rents throw; blocks still rented can be returned, and are freed while the arena lives.</summary>
    protected override void Dispose(bool disposing)
    {
        if (Interlocked.Exchange(ref disposed, 1) != 0) return;
        if (ownsArena) arena.Dispose();
    }

    private void Return(nint address, int length, bool counted, bool finalized)
    {
        if (counted) instruments.Rented.Add(-length, arenaTag, ownerTag);
        if (finalized)
        {
            Interlocked.Increment(ref abandoned);
            instruments.Abandoned.Add(1, arenaTag, ownerTag);
        }
        if (arena.IsDisposed) return;
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

    /// <summary>One rented block. The address is taken by exchange on dispose, so only one dispose frees it.</summary>
    private sealed unsafe class Block(BuddyMemoryPool pool, nint address, int length, bool counted, byte[]? array, int arrayOffset) : MemoryManager<byte>
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
            // IDisposable.Dispose of MemoryManager suppresses the finalizer after this returns.
            if (block != 0) pool.Return(block, length, counted, finalized: !disposing);
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

/// <summary>
/// The pool instruments of one meter. Unlike the arena's, these are counted as rents happen, and
/// only while a listener is enabled, since the arena cannot tell a pool's blocks from others.
/// </summary>
internal sealed class PoolInstruments
{
    private static readonly ConditionalWeakTable<Meter, PoolInstruments> ByMeter = [];

    private PoolInstruments(Meter meter)
    {
        Rented = meter.CreateUpDownCounter<long>("buddy.pool.rented", "By", "Bytes rented from memory pools and not yet returned.");
        Rents = meter.CreateCounter<long>("buddy.pool.rents", "{rent}", "Blocks rented from memory pools.");
        Abandoned = meter.CreateCounter<long>("buddy.pool.abandoned", "{block}", "Blocks freed because their owner was garbage collected without a dispose.");
    }

    public UpDownCounter<long> Rented { get; }

    public Counter<long> Rents { get; }

    public Counter<long> Abandoned { get; }

    public static PoolInstruments For(Meter meter) => ByMeter.GetValue(meter, m => new PoolInstruments(m));
}
