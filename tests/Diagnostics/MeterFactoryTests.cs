using System.Diagnostics.Metrics;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Buddy.Tests;

/// <summary>
/// Metrics through an injected <see cref="IMeterFactory"/>: each test has its own meter, so these
/// run in parallel with everything else and see only their own arenas.
/// </summary>
public class MeterFactoryTests
{
    [Fact]
    public void An_arena_publishes_on_the_factory_meter_and_a_collector_reads_it()
    {
        using var factory = new TestMeterFactory();
        using var arena = new BuddyArena(new ArenaOptions { Name = "factory", Size = 8 * Arenas.MiB }, factory);
        using var allocated = new MetricCollector<long>(factory, ArenaMetrics.MeterName, "buddy.memory.allocated");
        using var allocations = new MetricCollector<long>(factory, ArenaMetrics.MeterName, "buddy.allocations");
        nint block = arena.Allocate(4);

        allocated.RecordObservableInstruments();
        allocations.RecordObservableInstruments();
        CollectedMeasurement<long> measurement = Assert.Single(allocated.GetMeasurementSnapshot());
        Assert.Equal(64 * 1024, measurement.Value);
        Assert.Equal("factory", measurement.Tags[ArenaMetrics.ArenaTag]);
        Assert.Equal(1, allocations.LastMeasurement?.Value);

        arena.Free(block);
        allocated.RecordObservableInstruments();
        Assert.Equal(0, allocated.LastMeasurement?.Value);
    }

    [Fact]
    public void One_collection_takes_one_statistics_snapshot_for_every_instrument()
    {
        using var factory = new TestMeterFactory();
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB }, factory);
        int measured = 0;
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter.Scope, factory)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => measured++);
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => measured++);
        listener.Start();

        long before = arena.Instruments.Snapshots;
        listener.RecordObservableInstruments();
        Assert.Equal(before + 1, arena.Instruments.Snapshots);
        Assert.True(measured >= 12, $"{measured} measurements");
        listener.RecordObservableInstruments();
        Assert.Equal(before + 2, arena.Instruments.Snapshots);
    }

    [Fact]
    public void The_reporter_publishes_on_its_arena_meter()
    {
        using var factory = new TestMeterFactory();
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1 }, factory);
        arena.Free(arena.Allocate(10));
        using var bytes = new MetricCollector<long>(factory, ArenaMetrics.MeterName, "buddy.report.bytes");
        using var duration = new MetricCollector<double>(factory, ArenaMetrics.MeterName, "buddy.report.duration");
        using var reporter = new PageReporter(arena, new NullReportingDevice());
        reporter.ReportNow();
        bytes.RecordObservableInstruments();
        Assert.Equal(4 * Arenas.MiB, bytes.LastMeasurement?.Value);
        Assert.Single(duration.GetMeasurementSnapshot());
    }
}
