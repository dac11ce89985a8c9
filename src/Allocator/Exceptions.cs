namespace Buddy;

/// <summary>No zone had a free block of the requested order.</summary>
public sealed class ArenaExhaustedException : OutOfMemoryException
{
    public ArenaExhaustedException(int order, long blockBytes, Migratetype migratetype, long freePages)
        : base($"The arena has no free block of order {order} ({blockBytes} bytes) for {migratetype}; {freePages} pages are free in smaller or reserved blocks.")
    {
        Order = order;
        Migratetype = migratetype;
    }

    public int Order { get; }

    public Migratetype Migratetype { get; }
}

/// <summary>The invariant checker found the allocator's structures inconsistent.</summary>
public sealed class ArenaCorruptionException : Exception
{
    public ArenaCorruptionException(IReadOnlyList<string> problems)
        : base($"Arena invariants violated ({problems.Count}):{Environment.NewLine}{string.Join(Environment.NewLine, problems.Take(20))}")
    {
        Problems = problems;
    }

    public IReadOnlyList<string> Problems { get; }
}
