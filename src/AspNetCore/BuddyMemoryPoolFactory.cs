using System.Buffers;
using Microsoft.AspNetCore.Connections;

namespace Buddy.AspNetCore;

/// <summary>
/// Serves every memory pool Kestrel asks for (one per I/O queue) from one shared arena; each pool's
/// <c>buddy.pool.*</c> metrics carry the owner Kestrel names ("kestrel").
/// </summary>
public sealed class BuddyMemoryPoolFactory(BuddyArena arena) : IMemoryPoolFactory<byte>
{
    private int poolsCreated;

    /// <summary>The arena every pool rents from.</summary>
    public BuddyArena Arena { get; } = arena ?? throw new ArgumentNullException(nameof(arena));

    /// <summary>Pools made so far.</summary>
    public int PoolsCreated => Volatile.Read(ref poolsCreated);

    /// <inheritdoc/>
    public MemoryPool<byte> Create(MemoryPoolOptions? options = null)
    {
        var pool = new BuddyMemoryPool(Arena, ownsArena: false, owner: options?.Owner);
        Interlocked.Increment(ref poolsCreated);
        return pool;
    }
}
