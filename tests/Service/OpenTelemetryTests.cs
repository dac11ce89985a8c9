using System.Buffers;
using Buddy.Hosting;
using Buddy.Reporting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Buddy.Tests.Service;

/// <summary>The real OpenTelemetry SDK in a host, collecting Buddy with one line.</summary>
public sealed class OpenTelemetryTests
{
    [Fact]
    public async Task AddBuddyInstrumentation_exports_the_arena_reporter_and_pool_instruments_with_their_units_and_tags()
    {
        var exported = new List<Metric>();
        HostApplicationBuilder builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Buddy:Arena:Name"] = "otel",
            ["Buddy:Arena:Size"] = "16777216",
            ["Buddy:Arena:SectionSize"] = "16777216",
            ["Buddy:Arena:MaximumSize"] = "33554432",
        });
        builder.Services.AddBuddy();
        builder.Services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddBuddyInstrumentation().AddInMemoryExporter(exported));
        using IHost host = builder.Build();
        await host.StartAsync(TestContext.Current.CancellationToken);
        var pool = new BuddyMemoryPool(host.Services.GetRequiredService<BuddyArena>(), owner: "otel-test");
        using IMemoryOwner<byte> rented = pool.Rent(65536);
        host.Services.GetRequiredService<PageReporter>().ReportNow();

        Assert.True(host.Services.GetRequiredService<MeterProvider>().ForceFlush());

        Assert.Equal("By", Find(exported, "buddy.memory.allocated").Unit);
        Assert.Equal("{allocation}", Find(exported, "buddy.allocations").Unit);
        Assert.Equal("{pass}", Find(exported, "buddy.report.passes").Unit);
        Metric rents = Find(exported, "buddy.pool.rents");
        Assert.Equal("{rent}", rents.Unit);
        Metric rentedBytes = Find(exported, "buddy.pool.rented");
        Assert.Equal("By", rentedBytes.Unit);
        // The pool's rent carries both tags, and its value is what it rented.
        MetricPoint point = Points(rentedBytes).Single(p => Tag(p, ArenaMetrics.PoolOwnerTag) as string == "otel-test");
        Assert.Equal("otel", Tag(point, ArenaMetrics.ArenaTag));
        Assert.Equal(65536, point.GetSumLong());
        Assert.Contains(Points(Find(exported, "buddy.memory.allocated")), p => Tag(p, ArenaMetrics.ArenaTag) as string == "otel" && p.GetSumLong() >= 65536);
        await host.StopAsync(TestContext.Current.CancellationToken);
    }

    private static Metric Find(List<Metric> exported, string name)
        => exported.LastOrDefault(m => m.Name == name) ?? throw new Xunit.Sdk.XunitException(
            $"{name} was not exported; exported: {string.Join(", ", exported.Select(m => m.Name).Distinct())}");

    private static List<MetricPoint> Points(Metric metric)
    {
        var points = new List<MetricPoint>();
        foreach (ref readonly MetricPoint point in metric.GetMetricPoints()) points.Add(point);
        return points;
    }

    private static object? Tag(MetricPoint point, string key)
    {
        foreach (KeyValuePair<string, object?> tag in point.Tags)
            if (tag.Key == key) return tag.Value;
        return null;
    }
}
