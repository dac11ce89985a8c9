namespace Buddy;

/// <summary>
/// What a free page reporter needs from the allocator (Linux keeps the same calls inside mm/):
/// one cheap notification, and one call that isolates free blocks, hands them to a report and
/// always puts them back. Internal: only Buddy.Reporting uses them.
/// </summary>
public sealed unsafe partial class BuddyArena
{
    private sealed record Subscription(IFreeBlockListener Listener, int MinOrder);

    private volatile Subscription? subscription;

    /// <summary>
    /// Subscribes the one listener told when a free block of <paramref name="minOrder"/> or larger
    /// appears. A second listener is refused, and so is a disposed arena.
    /// </summary>
    internal void Subscribe(IFreeBlockListener listener, int minOrder)
    {
        ValidateOrder(minOrder);
        using (gate.Enter())
        {
            if (Interlocked.CompareExchange(ref subscription, new Subscription(listener, minOrder), null) is not null)
                throw new InvalidOperationException("The arena already has a free block listener (one reporter per arena).");
        }
    }

    /// <summary>Removes <paramref name="listener"/> if it is the one subscribed; allowed after disposal.</summary>
    internal void Unsubscribe(IFreeBlockListener listener)
    {
        Subscription? current = subscription;
        if (current is not null && ReferenceEquals(current.Listener, listener))
            Interlocked.CompareExchange(ref subscription, null, current);
    }

    /// <summary>
    /// Starts a new report round in every zone: blocks freed from here on are younger than any pass
    /// that asks for aged blocks only, until the next round.
    /// </summary>
    internal void AdvanceReportRound()
    {
        using (gate.Enter())
        {
            foreach (Zone zone in online.Zones)
                lock (zone.Lock) zone.Round++;
        }
    }

    /// <summary>Whether an unreported free block of <paramref name="minOrder"/> or larger was freed in its zone's current round.</summary>
    internal bool HasYoungFreeBlocks(int minOrder)
    {
        using (gate.Enter())
        {
            foreach (Zone zone in online.Zones)
                lock (zone.Lock)
                    if (zone.HasYoungBlocks(minOrder)) return true;
            return false;
        }
    }

    /// <summary>Hinted free bytes in listed blocks of <paramref name="minOrder"/> or larger, across zones.</summary>
    internal long HintedFreeBytes(int minOrder) => SumPages(minOrder, static (zone, order) => zone.HintedPages(order));

    /// <summary>Unreported free bytes in blocks of <paramref name="minOrder"/> or larger, across zones.</summary>
    public long UnreportedFreeBytes(int minOrder) => SumPages(minOrder, static (zone, order) => zone.UnreportedPages(order));

    /// <summary>Bytes of the pages <paramref name="count"/> finds in each online zone, under its lock.</summary>
    private long SumPages(int minOrder, Func<Zone, int, long> count)
    {
        ValidateOrder(minOrder);
        using (gate.Enter())
        {
            long pages = 0;
            foreach (Zone zone in online.Zones)
                lock (zone.Lock) pages += count(zone, minOrder);
            return pages * options.PageSize;
        }
    }

    /// <summary>
    /// Isolates up to <paramref name="scratch"/>.Length free blocks of <paramref name="minOrder"/> or
    /// larger that <paramref name="selection"/> names from one zone, calls <paramref name="report"/> on them outside the zone lock, and puts
    /// them back as its outcome says (as failed when it throws). The arena stays open until they are
    /// back, so the device never touches memory that is gone. Returns what was handed over and how it went.
    /// </summary>
    internal ReportedBatch ReportFreeBlocks(int zone, int minOrder, ReportingMode mode, Span<FreeBlock> scratch, ReportScatterlist report,
        bool agedOnly = false, FreeBlockSelection selection = FreeBlockSelection.Unreported)
    {
        ValidateZone(zone);
        ValidateOrder(minOrder);
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "Mode must be Isolate or InPlace.");
        if (!Enum.IsDefined(selection)) throw new ArgumentOutOfRangeException(nameof(selection), selection, "Selection must be Unreported, Hinted or Fresh.");
        ArgumentNullException.ThrowIfNull(report);
        using (gate.Enter())
        {
            // An offline slot, or a zone isolated for offlining, has nothing to report.
            Zone? target = zoneTable[zone];
            if (target is null) return default;
            Span<uint> pages = scratch.Length <= 1024 ? stackalloc uint[scratch.Length] : new uint[scratch.Length];
            int count;
            lock (target.Lock) count = target.Isolate(minOrder, mode == ReportingMode.InPlace, pages, agedOnly, selection);
            if (count == 0) return default;
            pages = pages[..count];
            long bytes = 0;
            for (int i = 0; i < count; i++)
            {
                scratch[i] = new FreeBlock(AddressOf(pages[i]), BytesOf(map[pages[i]].Order));
                bytes += scratch[i].Length;
            }
            ReportOutcome outcome = ReportOutcome.Failed;
            try
            {
                outcome = report(scratch[..count]);
            }
            finally
            {
                if (!Enum.IsDefined(outcome)) outcome = ReportOutcome.Failed;
                lock (target.Lock) target.PutBack(pages, outcome);
            }
            return new ReportedBatch(count, bytes, outcome);
        }
    }

    private void NotifyFreeBlock(Zone zone, int order)
    {
        Subscription? current = subscription;
        if (current is not null && order >= current.MinOrder) current.Listener.OnFreeBlock(zone.Index, order);
    }

    private void ValidateZone(int zone)
    {
        if ((uint)zone >= (uint)zoneTable.Length)
            throw new ArgumentOutOfRangeException(nameof(zone), zone, $"Zone must be between 0 and {zoneTable.Length - 1}.");
    }
}
