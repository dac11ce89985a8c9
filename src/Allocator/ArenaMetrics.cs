using System.Diagnostics.Metrics;
using Buddy.Interop;

namespace Buddy;

/// <summary>
/// The <c>Buddy.Allocator</c> meter: observable instruments read at collection time from the
/// allocator's own per-zone counters, so the allocation path pays nothing for them. Every
/// measurement is tagged <c>buddy.arena</c> with the arena's name.
/// </summary>
public static class ArenaMetrics
{
    public const string MeterName = "Buddy.Allocator";
    public const string ArenaTag = "buddy.arena";
    public const string OrderTag = "buddy.order";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Lock Gate = new();
    private static readonly List<BuddyArena> Arenas = [];

    static ArenaMetrics()
    {
        Meter.CreateObservableUpDownCounter("buddy.arena.size", () => Observe(s => s.TotalPages * s.PageSize), "By", "Bytes in the arena.");
        Meter.CreateObservableUpDownCounter("buddy.memory.free", () => Observe(s => s.FreeBytes), "By", "Free bytes, never-used ones included.");
        Meter.CreateObservableUpDownCounter("buddy.memory.allocated", () => Observe(s => s.AllocatedBytes), "By", "Allocated bytes.");
        Meter.CreateObservableUpDownCounter("buddy.memory.reported", () => Observe(s => s.ReportedBytes), "By", "Free bytes handed back to the OS.");
        Meter.CreateObservableUpDownCounter("buddy.memory.reporting", () => Observe(s => s.ReportingPages * s.PageSize), "By", "Free bytes mid-report.");
        Meter.CreateObservableUpDownCounter("buddy.memory.free_by_order", ObserveFreeByOrder, "By", "Free bytes in blocks of each order.");
        Meter.CreateObservableUpDownCounter("buddy.memory.resident", ObserveResident, "By", "Resident set of the process.");
        Meter.CreateObservableCounter("buddy.allocations", () => Observe(s => s.Allocations), "{allocation}", "Blocks allocated.");
        Meter.CreateObservableCounter("buddy.frees", () => Observe(s => s.Frees), "{free}", "Blocks freed.");
        Meter.CreateObservableCounter("buddy.allocation.failures", () => Observe(s => s.FailedAllocations), "{allocation}", "Allocations refused for want of memory.");
        Meter.CreateObservableCounter("buddy.spin.waits", () => Observe(s => s.SpinWaits), "{wait}", "Allocations that waited for a block mid-report.");
        Meter.CreateObservableCounter("buddy.spin.duration", ObserveSpinTime, "s", "Time allocations spent waiting for blocks mid-report.");
        Meter.CreateObservableCounter("buddy.zeroing.skipped", () => Observe(s => s.ZeroSkippedBytes), "By", "Bytes of zeroed allocations known to be zero already.");
    }

    internal static void Register(BuddyArena arena)
    {
        lock (Gate) Arenas.Add(arena);
    }

    internal static void Unregister(BuddyArena arena)
    {
        lock (Gate) Arenas.Remove(arena);
    }

    /// <summary>A statistics snapshot of every live arena, taken when an instrument is observed (about once a second).</summary>
    private static List<(string Arena, ArenaStatistics Stats)> Snapshots()
    {
        BuddyArena[] arenas;
        lock (Gate) arenas = Arenas.ToArray();
        var result = new List<(string, ArenaStatistics)>(arenas.Length);
        foreach (BuddyArena arena in arenas)
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

    private static IEnumerable<Measurement<long>> Observe(Func<ArenaStatistics, long> pick)
        => Snapshots().Select(s => new Measurement<long>(pick(s.Stats), new KeyValuePair<string, object?>(ArenaTag, s.Arena)));

    private static IEnumerable<Measurement<double>> ObserveSpinTime()
        => Snapshots().Select(s => new Measurement<double>(s.Stats.SpinTime.TotalSeconds, new KeyValuePair<string, object?>(ArenaTag, s.Arena)));

    private static IEnumerable<Measurement<long>> ObserveFreeByOrder()
        => Snapshots().SelectMany(s => Enumerable.Range(0, s.Stats.MaxOrder + 1).Select(order => new Measurement<long>(
            s.Stats.FreeBlocks(order) * ((long)s.Stats.PageSize << order),
            new KeyValuePair<string, object?>(ArenaTag, s.Arena), new KeyValuePair<string, object?>(OrderTag, order))));

    private static IEnumerable<Measurement<long>> ObserveResident()
    {
        yield return new Measurement<long>(ProcessMemory.ResidentBytes());
    }
}
