using System.Diagnostics.Metrics;
using System.Globalization;
using Buddy;
using Buddy.Interop;

namespace BufferService;

/// <summary>
/// The process's memory as the load benchmark and tests see it: RSS, the GC's committed bytes, the
/// arena and both pools' counters. With <c>BufferService:SampleFile</c> set, appends a CSV row every
/// <c>BufferService:SampleIntervalMs</c> (100 ms).
/// </summary>
internal sealed class MemorySampler(IServiceProvider services, IConfiguration configuration) : BackgroundService
{
    private readonly MeterListener listener = new();
    private long kestrelPooled, kestrelAllocated, kestrelEvicted, buddyRented;
    private Timer? collection;

    public Sample Current()
    {
        // buddy.pool.rented is observed whole, once per owner name: summed afresh on every read.
        Interlocked.Exchange(ref buddyRented, 0);
        listener.RecordObservableInstruments();
        BuddyArena? arena = services.GetService<BuddyArena>();
        ArenaStatistics? arenaStats = arena?.GetStatistics();
        return new Sample(
            ProcessMemory.ResidentBytes(),
            GC.GetGCMemoryInfo().TotalCommittedBytes,
            GC.GetTotalMemory(false),
            arenaStats?.OnlineBytes ?? 0,
            arenaStats?.AllocatedBytes ?? 0,
            arenaStats?.ReportedBytes ?? 0,
            Interlocked.Read(ref buddyRented),
            Interlocked.Read(ref kestrelPooled),
            Interlocked.Read(ref kestrelAllocated),
            Interlocked.Read(ref kestrelEvicted),
            arenaStats?.SectionsAdded ?? 0);
    }

    /// <summary>
    /// With <c>BufferService:Metrics</c> (on by default) listens as an attached dotnet-counters or
    /// OpenTelemetry exporter would: every instrument of the runtime's, Kestrel's, hosting's, the
    /// memory pools' and Buddy's meters enabled, observable ones read every second. Off, nothing
    /// listens, and /stats shows no pool counters.
    /// </summary>
    public override Task StartAsync(CancellationToken cancellationToken)
    {
        if (!configuration.GetValue("BufferService:Metrics", true)) return base.StartAsync(cancellationToken);
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name is "System.Runtime" or "Microsoft.AspNetCore.MemoryPool" or "Microsoft.AspNetCore.Server.Kestrel"
                or "Microsoft.AspNetCore.Hosting" or ArenaMetrics.MeterName)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, _, _) =>
        {
            if (Field(instrument.Name) is { } field) Interlocked.Add(ref field(this), value);
        });
        listener.SetMeasurementEventCallback<int>((_, _, _, _) => { });
        listener.SetMeasurementEventCallback<double>((_, _, _, _) => { });
        listener.Start();
        collection = new Timer(_ => Current(), null, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(1));
        return base.StartAsync(cancellationToken);
    }

    public override void Dispose()
    {
        collection?.Dispose();
        listener.Dispose();
        base.Dispose();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        string? path = configuration["BufferService:SampleFile"];
        if (string.IsNullOrEmpty(path)) return;
        var interval = TimeSpan.FromMilliseconds(configuration.GetValue("BufferService:SampleIntervalMs", 100));
        await using var file = new StreamWriter(path, append: false) { AutoFlush = true };
        await file.WriteLineAsync("unix_ms,rss,gc_committed,gc_heap,arena_online,arena_allocated,arena_reported,buddy_rented,kestrel_pooled,kestrel_allocated,kestrel_evicted");
        using var timer = new PeriodicTimer(interval);
        do
        {
            Sample s = Current();
            await file.WriteLineAsync(string.Join(',', new long[]
            {
                DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), s.Rss, s.GcCommitted, s.GcHeap, s.ArenaOnline, s.ArenaAllocated,
                s.ArenaReported, s.BuddyRented, s.KestrelPooled, s.KestrelAllocated, s.KestrelEvicted,
            }.Select(v => v.ToString(CultureInfo.InvariantCulture))));
        }
        while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false));
    }

    private delegate ref long FieldOf(MemorySampler sampler);

    private static FieldOf? Field(string instrument) => instrument switch
    {
        "aspnetcore.memory_pool.pooled" => s => ref s.kestrelPooled,
        "aspnetcore.memory_pool.allocated" => s => ref s.kestrelAllocated,
        "aspnetcore.memory_pool.evicted" => s => ref s.kestrelEvicted,
        "buddy.pool.rented" => s => ref s.buddyRented,
        _ => null,
    };
}

public sealed record Sample(long Rss, long GcCommitted, long GcHeap, long ArenaOnline, long ArenaAllocated, long ArenaReported,
    long BuddyRented, long KestrelPooled, long KestrelAllocated, long KestrelEvicted, long ArenaSectionsAdded);
