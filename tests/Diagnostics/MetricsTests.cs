using System.Diagnostics.Metrics;
using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>
/// The Buddy.Allocator meter, read in-process through a real MeterListener. It observes every
/// arena in the process, taking their thread cache locks for a moment, so it runs alone.
/// </summary>
[Collection(ResidentSetCollection.Name)]
public class MetricsTests
{
    private static Dictionary<(string Instrument, string? Arena, string? Order), double> Collect()
    {
        var values = new Dictionary<(string, string?, string?), double>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == ArenaMetrics.MeterName) l.EnableMeasurementEvents(instrument);
        };
        void Record(Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? arena = null, order = null;
            foreach (var tag in tags)
            {
                if (tag.Key == ArenaMetrics.ArenaTag) arena = (string?)tag.Value;
                if (tag.Key == ArenaMetrics.OrderTag) order = tag.Value?.ToString();
            }
            values[(instrument.Name, arena, order)] = value;
        }
        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        listener.RecordObservableInstruments();
        return values;
    }

    [Fact]
    public void Instruments_follow_the_arena_and_tell_arenas_apart_by_name()
    {
        using var first = new BuddyArena(new ArenaOptions { Name = "metrics-first", Size = 8 * Arenas.MiB });
        using var second = new BuddyArena(new ArenaOptions { Name = "metrics-second", Size = 16 * Arenas.MiB });
        nint block = first.Allocate(4);
        var values = Collect();
        Assert.Equal(8 * Arenas.MiB, values[("buddy.arena.size", "metrics-first", null)]);
        Assert.Equal(16 * Arenas.MiB, values[("buddy.arena.size", "metrics-second", null)]);
        Assert.Equal(64 * 1024, values[("buddy.memory.allocated", "metrics-first", null)]);
        Assert.Equal(0, values[("buddy.memory.allocated", "metrics-second", null)]);
        Assert.Equal(1, values[("buddy.allocations", "metrics-first", null)]);
        Assert.Equal(4 * Arenas.MiB, values[("buddy.memory.free_by_order", "metrics-first", "10")]);

        first.Free(block);
        values = Collect();
        Assert.Equal(0, values[("buddy.memory.allocated", "metrics-first", null)]);
        Assert.Equal(1, values[("buddy.frees", "metrics-first", null)]);
    }

    [Fact]
    public void The_cached_instrument_shows_bytes_in_thread_caches_until_they_are_drained()
    {
        using var arena = new BuddyArena(new ArenaOptions { Name = "metrics-cached", Size = 8 * Arenas.MiB, ZoneCount = 1 });
        arena.Free(arena.Allocate(0));
        long cached = arena.GetStatistics().CachedPages * Arenas.Page;
        Assert.True(cached > 0);
        Assert.Equal(cached, Collect()[("buddy.memory.cached", "metrics-cached", null)]);
        arena.DrainThreadCaches();
        Assert.Equal(0, Collect()[("buddy.memory.cached", "metrics-cached", null)]);
    }

    [Fact]
    public void Section_instruments_show_sections_and_bytes_online_as_the_arena_grows_and_shrinks()
    {
        using var arena = new BuddyArena(new ArenaOptions
        {
            Name = "metrics-sections", Size = 4 * Arenas.MiB, SectionSize = 4 * Arenas.MiB, MaximumSize = 16 * Arenas.MiB,
            SectionIdleTime = Timeout.InfiniteTimeSpan,
        });
        nint[] blocks = [arena.Allocate(10), arena.Allocate(10), arena.Allocate(10)];
        var values = Collect();
        Assert.Equal(3, values[("buddy.sections.online", "metrics-sections", null)]);
        Assert.Equal(2, values[("buddy.sections.added", "metrics-sections", null)]);
        Assert.Equal(12 * Arenas.MiB, values[("buddy.arena.size", "metrics-sections", null)]);

        foreach (nint block in blocks) arena.Free(block);
        arena.RemoveFreeSections();
        values = Collect();
        Assert.Equal(1, values[("buddy.sections.online", "metrics-sections", null)]);
        Assert.Equal(2, values[("buddy.sections.removed", "metrics-sections", null)]);
        Assert.Equal(4 * Arenas.MiB, values[("buddy.arena.size", "metrics-sections", null)]);
    }

    [Fact]
    public void Reporter_instruments_count_passes_calls_and_bytes_and_time_each_call()
    {
        using var arena = new BuddyArena(new ArenaOptions { Name = "metrics-reporter", Size = 8 * Arenas.MiB, ZoneCount = 1 });
        arena.Free(arena.Allocate(10));
        double durations = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "buddy.report.duration") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<double>((_, value, tags, _) =>
        {
            foreach (var tag in tags)
                if (tag.Key == ArenaMetrics.ArenaTag && (string?)tag.Value == "metrics-reporter") durations++;
        });
        listener.Start();
        using var reporter = new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        reporter.ReportNow();
        listener.Dispose();

        var values = Collect();
        Assert.Equal(1, durations);
        Assert.Equal(1, values[("buddy.report.passes", "metrics-reporter", null)]);
        Assert.Equal(1, values[("buddy.report.device_calls", "metrics-reporter", null)]);
        Assert.Equal(4 * Arenas.MiB, values[("buddy.report.bytes", "metrics-reporter", null)]);
        Assert.Equal(4 * Arenas.MiB, values[("buddy.memory.reported", "metrics-reporter", null)]);
    }

    [Fact]
    public void A_disposed_arena_leaves_the_meter()
    {
        var arena = new BuddyArena(new ArenaOptions { Name = "metrics-gone", Size = 4 * Arenas.MiB });
        Assert.Contains(("buddy.arena.size", "metrics-gone", (string?)null), Collect().Keys);
        arena.Dispose();
        Assert.DoesNotContain(("buddy.arena.size", "metrics-gone", (string?)null), Collect().Keys);
    }
}
