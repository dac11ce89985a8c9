using System.Runtime.InteropServices;
using Buddy.Density;

// Buddy.Density --worker PATH --libbuddy PATH [--out DIR] [--quick] [--allocators a,b]: how many bursty
// processes fit under one memory cap with each allocator. See bench/results/density.md.
string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
string? worker = Option("--worker");
string? libbuddy = Option("--libbuddy");
if (worker is null || !File.Exists(worker) || libbuddy is null || !File.Exists(libbuddy))
{
    Console.Error.WriteLine("usage: Buddy.Density --worker path/to/worker --libbuddy path/to/libbuddy.so [--out DIR] [--quick] [--allocators buddy,glibc,...]");
    return 2;
}
bool quick = args.Contains("--quick");
string outDir = Option("--out") ?? Directory.GetCurrentDirectory();
Directory.CreateDirectory(outDir);
Workload load = quick
    ? new(BurstMiB: 96, KeepPercent: 10, PeriodMs: 1500, Cycles: 4, LimitMiB: 384, MaxProcesses: 12)
    : new(BurstMiB: 256, KeepPercent: 10, PeriodMs: 1500, Cycles: 10, LimitMiB: 1024, MaxProcesses: 24);

var skipped = new List<string>();
var allocators = new List<Allocator>
{
    new("Buddy (libbuddy.so, reporter on defaults: delay 2 s)", "buddy", "buddy", new Dictionary<string, string>()),
    new("Buddy, delay 10 s (pressure does the rest)", "buddy-10s", "buddy", new Dictionary<string, string>(), ReportDelayMs: 10_000),
    // The hint tier with no pressure source and a report delay of a minute: the kernel alone takes what it needs.
    new("Buddy, hint tier 1 ms, delay 60 s, no pressure source", "buddy-hint", "buddy",
        new Dictionary<string, string> { ["BUDDY_HINT_DELAY_MS"] = "1", ["BUDDY_PRESSURE"] = "8" }, ReportDelayMs: 60_000),
    new("Buddy, hint tier 500 ms, delay 60 s, no pressure source", "buddy-hint-500ms", "buddy",
        new Dictionary<string, string> { ["BUDDY_HINT_DELAY_MS"] = "500", ["BUDDY_PRESSURE"] = "8" }, ReportDelayMs: 60_000),
    new("Buddy, hint tier 1 ms, delay 60 s, every pressure source", "buddy-hint-pressure", "buddy",
        new Dictionary<string, string> { ["BUDDY_HINT_DELAY_MS"] = "1" }, ReportDelayMs: 60_000),
    new("Buddy, hint tier 1 ms, delay 60 s, no pressure source, on huge pages", "buddy-hint-thp", "buddy",
        new Dictionary<string, string> { ["BUDDY_HINT_DELAY_MS"] = "1", ["BUDDY_PRESSURE"] = "8", ["BUDDY_FLAGS"] = "8" }, ReportDelayMs: 60_000),
    new("glibc", "glibc", "malloc", new Dictionary<string, string>()),
    new("glibc, mmap from 64 KiB", "glibc-mmap", "malloc", new Dictionary<string, string> { ["MALLOC_MMAP_THRESHOLD_"] = "65536" }),
};
foreach ((string name, string file) in (ReadOnlySpan<(string, string)>)[("jemalloc", "libjemalloc.so.2"), ("mimalloc", "libmimalloc.so.2"), ("tcmalloc", "libtcmalloc_minimal.so.4")])
{
    // A preload that cannot be found leaves glibc in place with only a warning: look for the file first.
    string? path = LibraryPath(file);
    if (path is null)
        skipped.Add($"{name}: {file} is not installed (scripts/bench.sh installs Debian's package)");
    else
        allocators.Add(new(name, name, "malloc", new Dictionary<string, string> { ["LD_PRELOAD"] = path }));
}
if (Option("--allocators") is { } only)
    allocators = allocators.Where(a => only.Split(',').Contains(a.Key)).ToList();

var searches = new List<Search>();
foreach (Allocator allocator in allocators)
{
    var search = new Search(allocator);
    for (int n = 1; ; n = Math.Min(n * 2, load.MaxProcesses))
    {
        if (!await search.TryAsync(n, load, worker, libbuddy) || n == load.MaxProcesses)
            break;
    }
    while (search.FirstFailure is int failed && failed - search.Largest > 1)
        await search.TryAsync((search.Largest + failed) / 2, load, worker, libbuddy);
    searches.Add(search);
}
string stem = quick ? "density-quick" : "density";
Report.Write(outDir, stem, load, searches, skipped, string.Join(' ', args));
Console.WriteLine(File.ReadAllText(Path.Combine(outDir, stem + ".md")));
return 0;

static string? LibraryPath(string file)
{
    string triple = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "aarch64-linux-gnu" : "x86_64-linux-gnu";
    return new[] { $"/usr/lib/{triple}", $"/lib/{triple}", "/usr/lib64", "/usr/lib", "/usr/local/lib" }
        .Select(dir => Path.Combine(dir, file)).FirstOrDefault(File.Exists);
}

/// <summary>Runs of one allocator at growing N, then bisecting between the largest clean N and the first failure.</summary>
internal sealed class Search(Allocator allocator)
{
    public Allocator Allocator { get; } = allocator;
    public List<RunResult> Runs { get; } = [];
    public int Largest { get; private set; }
    public int? FirstFailure { get; private set; }
    public RunResult? LargestRun => Runs.LastOrDefault(r => r.Clean && r.Processes == Largest);
    public RunResult? Single => Runs.FirstOrDefault(r => r.Processes == 1);

    public async Task<bool> TryAsync(int processes, Workload load, string worker, string libbuddy)
    {
        Console.Error.Write($"[density] {Allocator.Key} x{processes}... ");
        RunResult run = await DensityRun.RunAsync(Allocator, processes, load, worker, libbuddy);
        Runs.Add(run);
        Console.Error.WriteLine(run.Failure ?? $"clean, peak {run.PeakBytes >> 20} MiB");
        if (run.Clean)
            Largest = Math.Max(Largest, processes);
        else
            FirstFailure = Math.Min(FirstFailure ?? int.MaxValue, processes);
        return run.Clean;
    }
}
