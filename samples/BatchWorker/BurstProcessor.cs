using System.Globalization;
using Apache.Arrow;
using Apache.Arrow.Types;
using Buddy;
using Buddy.Arrow;
using Buddy.Interop;

namespace BatchWorker;

/// <summary>
/// Every <c>BatchWorker:IntervalMs</c> (5 s), builds <c>BatchWorker:Batches</c> (16) record batches
/// of 250,000 rows, sums a column across them, and drops them; prints one line per burst with the
/// resident set at the burst's peak and just before the next burst. Stops the host after
/// <c>BatchWorker:Bursts</c> bursts (0: never).
/// </summary>
internal sealed class BurstProcessor(BuddyArrowAllocator allocator, BuddyArena arena, IConfiguration configuration, IHostApplicationLifetime lifetime)
    : BackgroundService
{
    private const int Rows = 250_000;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        int batches = configuration.GetValue("BatchWorker:Batches", 16);
        int bursts = configuration.GetValue("BatchWorker:Bursts", 0);
        var interval = TimeSpan.FromMilliseconds(configuration.GetValue("BatchWorker:IntervalMs", 5000));
        for (int burst = 1; bursts == 0 || burst <= bursts; burst++)
        {
            long rssBefore = ProcessMemory.ResidentBytes();
            var held = new List<RecordBatch>(batches);
            double sum = 0;
            for (int b = 0; b < batches; b++)
            {
                RecordBatch batch = Build(burst * batches + b);
                sum += ((DoubleArray)batch.Column(1)).Values[..1000].ToArray().Sum();
                held.Add(batch);
            }
            long rssPeak = ProcessMemory.ResidentBytes();
            held.ForEach(b => b.Dispose());
            await Task.Delay(interval, stoppingToken);
            ArenaStatistics stats = arena.GetStatistics();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"burst {burst}: {batches} batches, checksum {sum:F0}; RSS before {rssBefore >> 20} MiB, peak {rssPeak >> 20} MiB, before the next burst {ProcessMemory.ResidentBytes() >> 20} MiB; {stats.ReportedBytes >> 20} MiB handed back to the OS"));
        }
        lifetime.StopApplication();
    }

    private RecordBatch Build(int seed)
    {
        var ids = new Int64Array.Builder();
        var values = new DoubleArray.Builder();
        for (int i = 0; i < Rows; i++)
        {
            ids.Append(seed * 1_000_000L + i);
            values.Append(i * 0.5);
        }
        Schema schema = new Schema.Builder()
            .Field(f => f.Name("id").DataType(Int64Type.Default).Nullable(false))
            .Field(f => f.Name("value").DataType(DoubleType.Default).Nullable(false))
            .Build();
        return new RecordBatch(schema, [ids.Build(allocator), values.Build(allocator)], Rows);
    }
}
