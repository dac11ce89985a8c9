namespace Buddy;

/// <summary>
/// What a free page reporter needs from the allocator: one cheap notification, and a way to take
/// unreported free blocks out for a report and put them back marked reported.
/// </summary>
public sealed unsafe partial class BuddyArena
{
    private sealed record Subscription(IFreeBlockListener Listener, int MinOrder);

    private volatile Subscription? subscription;

    /// <summary>Batches taken by BeginReport and not yet returned; each holds one gate entry.</summary>
    private int batchesInHand;

    /// <summary>
    /// Subscribes the one listener told when a free block of <paramref name="minOrder"/> or larger
    /// appears; null unsubscribes. A second listener is refused.
    /// </summary>
    public void SetFreeBlockListener(IFreeBlockListener? listener, int minOrder = 0)
    {
        ValidateOrder(minOrder);
        if (listener is null)
        {
            subscription = null;
            return;
        }
        var next = new Subscription(listener, minOrder);
        if (Interlocked.CompareExchange(ref subscription, next, null) is { } current && !ReferenceEquals(current.Listener, listener))
            throw new InvalidOperationException("The arena already has a free block listener (one reporter per arena).");
        subscription = next;
    }

    /// <summary>Unreported free bytes in blocks of <paramref name="minOrder"/> or larger, across zones (racy read).</summary>
    public long UnreportedFreeBytes(int minOrder)
    {
        ValidateOrder(minOrder);
        int stripe = gate.Enter();
        try
        {
            long pages = 0;
            foreach (Zone zone in zones)
                lock (zone.Lock) pages += zone.UnreportedPages(minOrder);
            return pages * options.PageSize;
        }
        finally
        {
            gate.Exit(stripe);
        }
    }

    /// <summary>
    /// Takes up to <paramref name="blocks"/>.Length unreported free blocks of <paramref name="minOrder"/>
    /// or larger from one zone and marks them mid-report. When any are taken, the batch must come back
    /// in one <see cref="EndReport"/> call; until then <see cref="Dispose"/> waits, so the memory
    /// stays mapped while the device works on it. Returns how many were taken.
    /// </summary>
    public int BeginReport(int zone, int minOrder, ReportingMode mode, Span<FreeBlock> blocks)
    {
        ValidateZone(zone);
        ValidateOrder(minOrder);
        if (!Enum.IsDefined(mode)) throw new ArgumentOutOfRangeException(nameof(mode), mode, "Mode must be Isolate or InPlace.");
        int stripe = gate.Enter();
        int count = 0;
        try
        {
            Span<uint> pages = blocks.Length <= 256 ? stackalloc uint[blocks.Length] : new uint[blocks.Length];
            lock (zones[zone].Lock) count = zones[zone].BeginReport(minOrder, mode == ReportingMode.InPlace, pages);
            for (int i = 0; i < count; i++)
                blocks[i] = new FreeBlock(AddressOf(pages[i]), (long)options.PageSize << map[pages[i]].Order);
            return count;
        }
        finally
        {
            // A batch in hand keeps the gate entered; EndReport leaves it.
            if (count == 0) gate.Exit(stripe);
            else Interlocked.Increment(ref batchesInHand);
        }
    }

    /// <summary>
    /// Puts back the batch taken by one <see cref="BeginReport"/>: marked Reported when
    /// <paramref name="reported"/> (and known to read as zero when <paramref name="zeroed"/>), else unreported
    /// with nothing known of their contents.
    /// </summary>
    public void EndReport(int zone, ReadOnlySpan<FreeBlock> blocks, bool reported, bool zeroed)
    {
        ValidateZone(zone);
        if (zeroed && !reported) throw new ArgumentException("Only reported blocks can be known to be zero.", nameof(zeroed));
        if (blocks.IsEmpty) throw new ArgumentException("A batch from BeginReport is never empty.", nameof(blocks));
        // Without a batch in hand nothing keeps the memory mapped: refuse before reading a descriptor.
        if (Volatile.Read(ref batchesInHand) == 0)
        {
            ObjectDisposedException.ThrowIf(IsDisposed, this);
            throw new InvalidOperationException("No report batch is in hand: EndReport returns what BeginReport took.");
        }
        Span<uint> pages = blocks.Length <= 256 ? stackalloc uint[blocks.Length] : new uint[blocks.Length];
        Zone target = zones[zone];
        lock (target.Lock)
        {
            for (int i = 0; i < blocks.Length; i++)
            {
                pages[i] = PageOf(blocks[i].Address);
                if (!target.IsReporting(pages[i]) || blocks[i].Length != (long)options.PageSize << map[pages[i]].Order)
                    throw new ArgumentException($"The block at 0x{blocks[i].Address:x} is not a block of zone {zone} that is mid-report.", nameof(blocks));
                if (pages[..i].Contains(pages[i]))
                    throw new ArgumentException($"The block at 0x{blocks[i].Address:x} is listed twice.", nameof(blocks));
            }
            target.EndReport(pages, reported, zeroed);
        }
        Interlocked.Decrement(ref batchesInHand);
        gate.Exit(0);
    }

    private void NotifyFreeBlock(Zone zone, int order)
    {
        Subscription? current = subscription;
        if (current is not null && order >= current.MinOrder) current.Listener.OnFreeBlock(zone.Index, order);
    }

    private void ValidateZone(int zone)
    {
        if ((uint)zone >= (uint)zones.Length)
            throw new ArgumentOutOfRangeException(nameof(zone), zone, $"Zone must be between 0 and {zones.Length - 1}.");
    }
}
