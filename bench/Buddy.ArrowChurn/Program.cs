using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Memory;
using Apache.Arrow.Types;
using Buddy;
using Buddy.Arrow;
using Buddy.Bench;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

// Buddy.ArrowChurn [--out DIR]: compares Arrow's own allocator with Buddy's on a batch churn, each in
// a process of its own; Buddy.ArrowChurn --run native|buddy: one variant, one JSON line.
// A round builds 8 record batches of 500,000 rows (int64, double with nulls, string), holds them all,
// then disposes them; 6 rounds, then idle. RSS is read at the peak and 5 s after the last round.
string? Option(string name) => System.Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
const int Rounds = 6, BatchesPerRound = 8, Rows = 500_000;

if (Option("--run") is { } variant) return Run(variant);

string outDir = Option("--out") ?? Directory.GetCurrentDirectory();
var results = new List<JsonElement>();
foreach (string name in new[] { "native", "buddy", "native", "buddy" })
{
    var start = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
    foreach (string a in new[] { typeof(Program).Assembly.Location, "--run", name }) start.ArgumentList.Add(a);
    using Process child = Process.Start(start)!;
    string line = child.StandardOutput.ReadToEnd();
    child.WaitForExit();
    if (child.ExitCode != 0) throw new InvalidOperationException($"{name} failed: {line}");
    results.Add(JsonDocument.Parse(line).RootElement.Clone());
    Console.Error.WriteLine($"[arrow-churn] {line.Trim()}");
}
var md = new StringBuilder();
var inv = CultureInfo.InvariantCulture;
md.AppendLine("# Arrow batch churn: Arrow's NativeMemoryAllocator against BuddyArrowAllocator");
md.AppendLine();
md.AppendLine(inv, $"- Date: {DateTime.UtcNow:yyyy-MM-dd}");
md.AppendLine(inv, $"- Machine: {BenchMachine.Describe()}");
md.AppendLine("- Command: `./scripts/bench.sh --arrow` (`dotnet bench/Buddy.ArrowChurn/bin/Release/net10.0/Buddy.ArrowChurn.dll --out bench/results`)");
md.AppendLine(inv, $"- Workload: {Rounds} rounds; each builds {BatchesPerRound} record batches of {Rows:N0} rows (int64, double with a null in 7, string), holds them all, then disposes them. Each variant runs in a process of its own, twice, alternating. Buddy: a 1 GiB reserved arena and a page reporter with its defaults (2 s delay). RSS 5 s after the last round, with no call in between.");
md.AppendLine();
md.AppendLine("| allocator | run | ms per batch (build) | peak RSS, MiB | RSS 5 s after, MiB | GC committed after, MiB |");
md.AppendLine("|---|---|---|---|---|---|");
int run = 0;
foreach (JsonElement r in results)
    md.AppendLine(inv, $"| {r.GetProperty("allocator").GetString()} | {run++ / 2 + 1} | {r.GetProperty("ms_per_batch").GetDouble():F1} | {r.GetProperty("peak_rss").GetInt64() / 1048576.0:F1} | {r.GetProperty("idle_rss").GetInt64() / 1048576.0:F1} | {r.GetProperty("gc_committed").GetInt64() / 1048576.0:F1} |");
File.WriteAllText(Path.Combine(outDir, "arrow-churn.md"), md.ToString());
Console.WriteLine(md);
return 0;

static int Run(string variant)
{
    BuddyArena? arena = null;
    PageReporter? reporter = null;
    MemoryAllocator allocator;
    if (variant == "buddy")
    {
        arena = new BuddyArena(new ArenaOptions { Size = 1L << 30, Backing = ArenaBacking.Reserve });
        reporter = new PageReporter(arena, ReportingDevices.CreateDefault());
        reporter.Start();
        allocator = new BuddyArrowAllocator(arena);
    }
    else allocator = new NativeMemoryAllocator();
    long peak = 0;
    var built = Stopwatch.StartNew();
    built.Stop();
    for (int round = 0; round < Rounds; round++)
    {
        var batches = new List<RecordBatch>();
        built.Start();
        for (int b = 0; b < BatchesPerRound; b++) batches.Add(Build(allocator, round * BatchesPerRound + b));
        built.Stop();
        peak = Math.Max(peak, ProcessMemory.ResidentBytes());
        batches.ForEach(batch => batch.Dispose());
    }
    Thread.Sleep(TimeSpan.FromSeconds(5));
    long idle = ProcessMemory.ResidentBytes();
    Console.WriteLine(JsonSerializer.Serialize(new
    {
        allocator = variant == "buddy" ? "BuddyArrowAllocator" : "Arrow NativeMemoryAllocator",
        ms_per_batch = built.Elapsed.TotalMilliseconds / (Rounds * BatchesPerRound),
        peak_rss = peak,
        idle_rss = idle,
        gc_committed = GC.GetGCMemoryInfo().TotalCommittedBytes,
    }));
    reporter?.Dispose();
    arena?.Dispose();
    return 0;
}

static RecordBatch Build(MemoryAllocator allocator, int seed)
{
    var ids = new Int64Array.Builder();
    var prices = new DoubleArray.Builder();
    var names = new StringArray.Builder();
    for (int i = 0; i < Rows; i++)
    {
        ids.Append(seed * 10_000_000L + i);
        if (i % 7 == 0) prices.AppendNull();
        else prices.Append(i * 0.25);
        names.Append("n" + i.ToString(CultureInfo.InvariantCulture));
    }
    Schema schema = new Schema.Builder()
        .Field(f => f.Name("id").DataType(Int64Type.Default).Nullable(false))
        .Field(f => f.Name("price").DataType(DoubleType.Default))
        .Field(f => f.Name("name").DataType(StringType.Default))
        .Build();
    return new RecordBatch(schema, [ids.Build(allocator), prices.Build(allocator), names.Build(allocator)], Rows);
}
