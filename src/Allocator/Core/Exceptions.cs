namespace Buddy;

/// <summary>No zone had a free block of the requested order, and the arena could not grow.</summary>
public sealed class ArenaExhaustedException : OutOfMemoryException
{
    /// <summary>Says what was asked for, what is free, and why the arena could not grow.</summary>
    public ArenaExhaustedException(int order, long blockBytes, Migratetype migratetype, long freePages, long maximumBytes, string? growthFailure = null)
        : base($"The arena has no free block of order {order} ({blockBytes} bytes) for {migratetype}; {freePages} pages are free in smaller or reserved blocks. "
            + (growthFailure is null
                ? $"It is at its maximum size of {maximumBytes} bytes."
                : $"It could not grow towards its maximum size of {maximumBytes} bytes: {growthFailure}"))
    {
        Order = order;
        Migratetype = migratetype;
        MaximumBytes = maximumBytes;
    }

    /// <summary>The most the arena may grow to (<see cref="ArenaOptions.MaximumSize"/>).</summary>
    public long MaximumBytes { get; }

    /// <summary>The order that was asked for.</summary>
    public int Order { get; }

    /// <summary>The migratetype that was asked for.</summary>
    public Migratetype Migratetype { get; }
}

/// <summary>The invariant checker found the allocator's structures inconsistent.</summary>
public sealed class ArenaCorruptionException : Exception
{
    /// <summary>Reports the inconsistencies the checker found.</summary>
    public ArenaCorruptionException(IReadOnlyList<string> problems)
        : base($"Arena invariants violated ({problems.Count}):{Environment.NewLine}{string.Join(Environment.NewLine, problems.Take(20))}")
    {
        Problems = problems;
    }

    /// <summary>Every inconsistency found, one per line of the message (the first 20).</summary>
    public IReadOnlyList<string> Problems { get; }
}

/// <summary>
/// An address that is not the start of a block the caller owns: outside the arena, not page aligned,
/// inside a block, or already free (a double free). The arena is left exactly as it was.
/// </summary>
public sealed class InvalidAddressException : ArgumentException
{
    /// <summary>Refuses <paramref name="address"/>, saying why.</summary>
    public InvalidAddressException(nint address, string message) : base(message, "address") => Address = address;

    /// <summary>The address that was refused.</summary>
    public nint Address { get; }
}

/// <summary>An option that is wrong: its name, the value it had (null when not a number or span), and what it must be.</summary>
public sealed record OptionError(string Option, object? Value, string Problem)
{
    /// <summary>The exception Validate throws for it: out of range when it has a value, else an argument error.</summary>
    public ArgumentException ToException() => Value is null
        ? new ArgumentException(Problem, Option)
        : new ArgumentOutOfRangeException(Option, Value, Problem);

    internal void Throw() => throw ToException();
}
