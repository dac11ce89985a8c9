using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// The <c>buddy.pool.*</c> counts of one arena's pools of one owner name. Each thread counts in a
/// cell of its own with plain stores (only its owner writes a cell, so nothing is lost, and a rent
/// on one thread and its return on another still sum right); observable instruments add the cells
/// up when they are collected, so a listener costs the rent path nothing. The cells of exited
/// threads are folded into retired totals when a new thread comes.
/// </summary>
internal sealed class PoolCounters(string? owner)
{
    private sealed class Cell
    {
        public readonly Thread Owner = Thread.CurrentThread;
        public long RentedBytes, Rents, Abandoned;
    }

    /// <summary>The cells this thread used last, by counters: a short list, searched in order.</summary>
    [ThreadStatic] private static (PoolCounters? Counters, Cell? Cell)[]? cellsOfThread;

    private const int CellsPerThread = 4;

    private readonly Lock gate = new();
    private readonly List<Cell> cells = [];
    private long retiredRentedBytes, retiredRents, retiredAbandoned;

    /// <summary>The owner name pools of these counts were made with (the <c>buddy.pool.owner</c> tag).</summary>
    public string? Owner { get; } = owner;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Rented(int bytes)
    {
        Cell cell = CellOfThisThread();
        cell.RentedBytes += bytes;
        cell.Rents++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Returned(int bytes, bool abandonedBlock)
    {
        Cell cell = CellOfThisThread();
        cell.RentedBytes -= bytes;
        if (abandonedBlock) cell.Abandoned++;
    }

    /// <summary>Bytes rented and not returned: exact when no rent or return is in flight.</summary>
    public long RentedBytes => Sum(c => Volatile.Read(ref c.RentedBytes), ref retiredRentedBytes);

    public long Rents => Sum(c => Volatile.Read(ref c.Rents), ref retiredRents);

    public long Abandoned => Sum(c => Volatile.Read(ref c.Abandoned), ref retiredAbandoned);

    private long Sum(Func<Cell, long> pick, ref long retired)
    {
        lock (gate)
        {
            long total = retired;
            foreach (Cell cell in cells) total += pick(cell);
            return total;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private Cell CellOfThisThread()
    {
        (PoolCounters? Counters, Cell? Cell)[]? recent = cellsOfThread;
        if (recent is not null && recent[0].Counters == this) return recent[0].Cell!;
        return FindCell();
    }

    /// <summary>Moves this counters' cell to the front of the thread's list, making the cell if the thread has none.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private Cell FindCell()
    {
        (PoolCounters? Counters, Cell? Cell)[] recent = cellsOfThread ??= new (PoolCounters?, Cell?)[CellsPerThread];
        int found = Array.FindIndex(recent, entry => entry.Counters == this);
        (PoolCounters? Counters, Cell? Cell) entry = found >= 0 ? recent[found] : (this, CellOf(Thread.CurrentThread));
        Array.Copy(recent, 0, recent, 1, found >= 0 ? found : CellsPerThread - 1);
        recent[0] = entry;
        return entry.Cell!;
    }

    private Cell CellOf(Thread thread)
    {
        lock (gate)
        {
            foreach (Cell existing in cells)
                if (existing.Owner == thread) return existing;
            // A new thread is the moment to fold in what exited ones counted: they write no more.
            cells.RemoveAll(cell =>
            {
                if (cell.Owner.IsAlive) return false;
                retiredRentedBytes += cell.RentedBytes;
                retiredRents += cell.Rents;
                retiredAbandoned += cell.Abandoned;
                return true;
            });
            var made = new Cell();
            cells.Add(made);
            return made;
        }
    }
}
