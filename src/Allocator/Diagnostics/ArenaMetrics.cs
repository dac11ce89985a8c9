using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Buddy;

/// <summary>
/// Names of the <c>Buddy.Allocator</c> meter. Its observable instruments are read at collection
/// time from the allocator's own counters, so the allocation path pays nothing for them. Every
/// measurement is tagged <c>buddy.arena</c> with the arena's name. The process's resident set is
/// the runtime's own <c>System.Runtime</c> instrument <c>dotnet.process.memory.working_set</c>.
/// </summary>
public static class ArenaMetrics
{
    /// <summary>The meter every Buddy instrument is on.</summary>
    public const string MeterName = "Buddy.Allocator";
    /// <summary>Tags every measurement with the arena's <see cref="BuddyArena.Name"/>.</summary>
    public const string ArenaTag = "buddy.arena";
    /// <summary>Tags per-order measurements with the block order.</summary>
    public const string OrderTag = "buddy.order";
    /// <summary>Tags <c>buddy.pool.*</c> measurements with the pool's owner ("kestrel" for Kestrel's pools).</summary>
    public const string PoolOwnerTag = "buddy.pool.owner";
}

/// <summary>
/// The arena instruments of one meter: the process-wide default, or one an <see cref="IMeterFactory"/>
/// made. Arenas register here; one statistics snapshot per arena serves every instrument of a collection.
/// </summary>
internal sealed class ArenaInstruments
{
    private static readonly Meter DefaultMeter = new(ArenaMetrics.MeterName);
    private static readonly ConditionalWeakTable<Meter, ArenaInstruments> ByMeter = [];

    private readonly Lock gate = new();
    private readonly List<BuddyArena> arenas = [];
    private readonly SnapshotCache cache;

    private ArenaInstruments(Meter meter)
    {
        Meter = meter;
        cache = new SnapshotCache(this);
        meter.CreateObservableUpDownCounter("buddy.arena.size", () => Observe(0, s => s.OnlineBytes), "By", "Bytes online in the arena's sections.");
        meter.CreateObservableUpDownCounter("buddy.memory.free", () => Observe(1, s => s.FreeBytes), "By", "Free bytes, never-used ones included.");
        meter.CreateObservableUpDownCounter("buddy.memory.allocated", () => Observe(2, s => s.AllocatedBytes), "By", "Allocated bytes.");
        meter.CreateObservableUpDownCounter("buddy.memory.reported", () => Observe(3, s => s.ReportedBytes), "By", "Free bytes handed back to the OS.");
        meter.CreateObservableUpDownCounter("buddy.memory.reporting", () => Observe(4, s => s.ReportingPages * s.PageSize), "By", "Free bytes mid-report.");
        meter.CreateObservableUpDownCounter("buddy.memory.free_by_order", ObserveFreeByOrder, "By", "Free bytes in blocks of each order.");
        meter.CreateObservableCounter("buddy.allocations", () => Observe(6, s => s.Allocations), "{allocation}", "Blocks allocated.");
        meter.CreateObservableCounter("buddy.frees", () => Observe(7, s => s.Frees), "{free}", "Blocks freed.");
        meter.CreateObservableCounter("buddy.allocation.failures", () => Observe(8, s => s.FailedAllocations), "{allocation}", "Allocations refused for want of memory.");
        meter.CreateObservableCounter("buddy.spin.waits", () => Observe(9, s => s.SpinWaits), "{wait}", "Allocations that waited for a block mid-report.");
        meter.CreateObservableCounter("buddy.spin.duration", ObserveSpinTime, "s", "Time allocations spent waiting for blocks mid-report.");
        meter.CreateObservableCounter("buddy.zeroing.skipped", () => Observe(11, s => s.ZeroSkippedBytes), "By", "Bytes of zeroed allocations known to be zero already.");
        meter.CreateObservableUpDownCounter("buddy.sections.online", () => Observe(12, s => s.OnlineSections), "{section}", "Sections online.");
        meter.CreateObservableCounter("buddy.sections.added", () => Observe(13, s => s.SectionsAdded), "{section}", "Sections brought online beyond the start size.");
        meter.CreateObservableCounter("buddy.sections.removed", () => Observe(14, s => s.SectionsRemoved), "{section}", "Sections taken offline.");
        meter.CreateObservableUpDownCounter("buddy.memory.cached", () => Observe(15, s => s.CachedPages * s.PageSize), "By", "Free bytes held in thread caches (counted in buddy.memory.free).");
        meter.CreateObservableUpDownCounter("buddy.memory.hinted", () => Observe(16, s => s.HintedBytes), "By", "Free bytes offered to the OS (MADV_FREE), which takes them only when it needs memory.");
        meter.CreateObservableUpDownCounter("buddy.memory.hinted_resident", ObserveHintedResident, "By",
            "Hinted bytes the OS has not taken yet: still resident, so reusing them costs nothing.");
        meter.CreateObservableUpDownCounter("buddy.pool.rented", () => ObservePools(c => c.RentedBytes), "By", "Bytes rented from memory pools and not yet returned.");
        meter.CreateObservableCounter("buddy.pool.rents", () => ObservePools(c => c.Rents), "{rent}", "Blocks rented from memory pools.");
        meter.CreateObservableCounter("buddy.pool.abandoned", () => ObservePools(c => c.Abandoned), "{block}", "Blocks freed because their owner was garbage collected without a dispose.");
    }

    public Meter Meter { get; }

    /// <summary>Statistics snapshots taken for collections so far.</summary>
    internal long Snapshots => Interlocked.Read(ref snapshotsTaken);

    private long snapshotsTaken;

    /// <summary>The instruments on the factory's <c>Buddy.Allocator</c> meter, or on the default one.</summary>
    public static ArenaInstruments For(IMeterFactory? factory)
    {
        Meter meter = factory?.Create(ArenaMetrics.MeterName) ?? DefaultMeter;
        return ByMeter.GetValue(meter, m => new ArenaInstruments(m));
    }

    public void Register(BuddyArena arena)
    {
        lock (gate) arenas.Add(arena);
        cache.Clear();
    }

    public void Unregister(BuddyArena arena)
    {
        lock (gate) arenas.Remove(arena);
        cache.Clear();
    }

    private IEnumerable<Measurement<long>> Observe(int instrument, Func<ArenaStatistics, long> pick)
        => cache.Take(instrument).Select(s => new Measurement<long>(pick(s.Stats), Tag(s.Arena)));

    private IEnumerable<Measurement<double>> ObserveSpinTime()
        => cache.Take(10).Select(s => new Measurement<double>(s.Stats.SpinTime.TotalSeconds, Tag(s.Arena)));

    private IEnumerable<Measurement<long>> ObserveFreeByOrder()
        => cache.Take(5).SelectMany(s => Enumerable.Range(0, s.Stats.MaxOrder + 1).Select(order => new Measurement<long>(
            s.Stats.FreeBlocks(order) * ((long)s.Stats.PageSize << order),
            Tag(s.Arena), new KeyValuePair<string, object?>(ArenaMetrics.OrderTag, order))));

    /// <summary>Pool counts are read as they stand, per arena and owner name: no snapshot, no arena lock.</summary>
    private IEnumerable<Measurement<long>> ObservePools(Func<PoolCounters, long> pick)
    {
        BuddyArena[] current;
        lock (gate) current = [.. arenas];
        foreach (BuddyArena arena in current)
            foreach (PoolCounters counters in arena.PoolCounters)
                yield return new Measurement<long>(pick(counters), Tag(arena.Name), new(ArenaMetrics.PoolOwnerTag, counters.Owner));
    }

    /// <summary>Measured per arena at collection time (a residency call per hinted block), outside the snapshot.</summary>
    private IEnumerable<Measurement<long>> ObserveHintedResident()
    {
        BuddyArena[] current;
        lock (gate) current = [.. arenas];
        var result = new List<Measurement<long>>(current.Length);
        foreach (BuddyArena arena in current)
        {
            try
            {
                result.Add(new Measurement<long>(arena.MeasureHintedResidentBytes(), Tag(arena.Name)));
            }
            catch (ObjectDisposedException)
            {
                // Disposed between the copy and the read: it has left the meter.
            }
        }
        return result;
    }

    private static KeyValuePair<string, object?> Tag(string arena) => new(ArenaMetrics.ArenaTag, arena);

    private List<(string Arena, ArenaStatistics Stats)> TakeSnapshots()
    {
        Interlocked.Increment(ref snapshotsTaken);
        BuddyArena[] current;
        lock (gate) current = arenas.ToArray();
        var result = new List<(string, ArenaStatistics)>(current.Length);
        foreach (BuddyArena arena in current)
        {
            try
            {
                result.Add((arena.Name, arena.GetStatistics()));
            }
            catch (ObjectDisposedException)
            {
                // Disposed between the copy and the read: it has left the meter.
            }
        }
        return result;
    }

    /// <summary>
    /// One snapshot per collection: an instrument that has already read the current snapshot takes a
    /// new one, so however many instruments a listener enables, each collection reads each arena once.
    /// A snapshot older than <see cref="MaxAge"/> is never served, so an instrument first read long
    /// after the others still sees the present.
    /// </summary>
    private sealed class SnapshotCache(ArenaInstruments owner)
    {
        private const long MaxAge = 250; // milliseconds: far less than any collection interval

        private readonly Lock gate = new();
        private List<(string Arena, ArenaStatistics Stats)>? snapshots;
        private long takenAt;
        private int readers;

        public void Clear()
        {
            lock (gate) snapshots = null;
        }

        public List<(string Arena, ArenaStatistics Stats)> Take(int instrument)
        {
            lock (gate)
            {
                int bit = 1 << instrument;
                long now = Environment.TickCount64;
                if (snapshots is null || (readers & bit) != 0 || now - takenAt > MaxAge)
                {
                    snapshots = owner.TakeSnapshots();
                    takenAt = now;
                    readers = 0;
                }
                readers |= bit;
                return snapshots;
            }
        }
    }
}
