using System.Diagnostics;
using System.Globalization;
using System.Text;
using Buddy;
using Buddy.Bench;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

// Buddy.Refill [--rounds N] [--mib M] [--out DIR]: how fast an arena's memory is written again after
// it was handed back (reported with MADV_DONTNEED) or offered (hinted with MADV_FREE), over 4 KiB pages
// and transparent huge pages, with and without populate-on-install; huge-page coverage; and the bloat
// huge pages cause for a small scattered live set. Variants interleave round by round.
string? Option(string name) => Array.IndexOf(args, name) is int i and >= 0 && i + 1 < args.Length ? args[i + 1] : null;
int rounds = int.Parse(Option("--rounds") ?? "5", CultureInfo.InvariantCulture);
long bytes = long.Parse(Option("--mib") ?? "512", CultureInfo.InvariantCulture) << 20;
string? outDir = Option("--out");

var variants = new (string Name, bool Huge, bool Populate, GiveBack Way)[]
{
    ("kept, 4 KiB pages (nothing given back)", false, false, GiveBack.Keep),
    ("kept, huge pages (nothing given back)", true, false, GiveBack.Keep),
    ("reported, 4 KiB pages", false, false, GiveBack.Report),
    ("reported, 4 KiB pages, populate on install", false, true, GiveBack.Report),
    ("reported, huge pages", true, false, GiveBack.Report),
    ("reported, huge pages, populate on install", true, true, GiveBack.Report),
    ("hinted, 4 KiB pages (not taken)", false, false, GiveBack.Hint),
    ("hinted, huge pages (not taken)", true, false, GiveBack.Hint),
};
var first = variants.ToDictionary(v => v.Name, _ => new List<double>());
var refill = variants.ToDictionary(v => v.Name, _ => new List<double>());
var coverage = variants.ToDictionary(v => v.Name, _ => new List<double>());
for (int round = 0; round < rounds; round++)
{
    foreach (var v in variants)
    {
        (double firstGbs, double refillGbs, double huge) = Run(v.Huge, v.Populate, v.Way, bytes);
        first[v.Name].Add(firstGbs);
        refill[v.Name].Add(refillGbs);
        coverage[v.Name].Add(huge);
        Console.Error.WriteLine($"[refill] round {round + 1} {v.Name}: first {firstGbs:F2} GB/s, again {refillGbs:F2} GB/s, huge {huge:P0}");
    }
}
(long thpResident, long smallResident, long live) = (Bloat(huge: true, bytes), Bloat(huge: false, bytes), bytes / (2 << 20) * (64 << 10));

var md = new StringBuilder();
md.AppendLine("# Refill after a report or a hint, over 4 KiB and huge pages");
md.AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"`dotnet bench/Buddy.Refill/bin/Release/net10.0/Buddy.Refill.dll {string.Join(' ', args)}` (`./scripts/bench.sh --refill`), on {BenchMachine.Describe()}.");
md.AppendLine(CultureInfo.InvariantCulture, $"THP here: `{Read("/sys/kernel/mm/transparent_hugepage/enabled")}`, defrag `{Read("/sys/kernel/mm/transparent_hugepage/defrag")}`.");
md.AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"A {bytes >> 20} MiB Reserve arena is allocated in 4 MiB blocks and every byte written (first touch), all freed and handed");
md.AppendLine("back (`ReportNow`, MADV_DONTNEED), offered (the hint tier, MADV_FREE, with no memory pressure so the kernel takes nothing) or kept,");
md.AppendLine(CultureInfo.InvariantCulture, $"then allocated and written again (refill). Medians of {rounds} rounds, the variants interleaved; GB/s of bytes written, wall clock.");
md.AppendLine("Huge-page coverage is `AnonHugePages` over the arena's range in `/proc/self/smaps` after the first touch.");
md.AppendLine();
md.AppendLine("| variant | first touch GB/s | refill GB/s (min-max) | huge-page coverage |");
md.AppendLine("|---|---:|---:|---:|");
foreach (var v in variants)
    md.AppendLine(CultureInfo.InvariantCulture,
        $"| {v.Name} | {Median(first[v.Name]):F2} | {Median(refill[v.Name]):F2} ({refill[v.Name].Min():F2}-{refill[v.Name].Max():F2}) | {Median(coverage[v.Name]):P0} |");
md.AppendLine();
md.AppendLine(CultureInfo.InvariantCulture, $"Bloat: the same arena, written in 64 KiB blocks, keeps one block per 2 MiB ({live >> 20} MiB live) and reports the rest");
md.AppendLine(CultureInfo.InvariantCulture, $"with `ReportNow`: over 4 KiB pages (report order 64 KiB) {smallResident >> 20} MiB stay resident; over huge pages, where nothing below");
md.AppendLine(CultureInfo.InvariantCulture, $"2 MiB is reported so that no huge page is split, {thpResident >> 20} MiB stay.");
Console.WriteLine(md.ToString());
if (outDir is not null)
{
    Directory.CreateDirectory(outDir);
    File.WriteAllText(Path.Combine(outDir, "refill.md"), md.ToString());
}
return 0;

static string Read(string path) => File.Exists(path) ? File.ReadAllText(path).Trim() : "absent";

static double Median(List<double> values)
{
    var sorted = values.Order().ToArray();
    return sorted.Length % 2 == 1 ? sorted[sorted.Length / 2] : (sorted[sorted.Length / 2 - 1] + sorted[sorted.Length / 2]) / 2;
}

static unsafe (double First, double Refill, double Coverage) Run(bool huge, bool populate, GiveBack way, long bytes)
{
    using var arena = new BuddyArena(new ArenaOptions
    {
        Size = bytes, Backing = ArenaBacking.Reserve, ZoneCount = 1, ThreadCaches = false,
        TransparentHugePages = huge, PopulateReportedBlocks = populate,
    });
    var options = new PageReporterOptions
    {
        Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
        HintDelay = way == GiveBack.Hint ? TimeSpan.Zero : Timeout.InfiniteTimeSpan,
    };
    using var reporter = new PageReporter(arena, new MadviseDontNeedDevice(), options);
    double firstGbs = WriteAll(arena, bytes, out nint[] blocks);
    double covered = (double)ProcessMemory.SmapsOf(arena.BaseAddress, arena.BaseAddress + (nint)bytes).AnonHugePages / bytes;
    foreach (nint block in blocks) arena.Free(block);
    if (way == GiveBack.Hint)
    {
        reporter.Start();
        var waited = Stopwatch.StartNew();
        while (arena.GetStatistics().HintedBytes < bytes && waited.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(5);
        reporter.Stop();
    }
    else if (way == GiveBack.Report)
    {
        reporter.ReportNow();
    }
    double refillGbs = WriteAll(arena, bytes, out blocks);
    foreach (nint block in blocks) arena.Free(block);
    return (firstGbs, refillGbs, covered);
}

/// <summary>Allocates the whole arena in largest blocks and writes every byte; GB/s.</summary>
static unsafe double WriteAll(BuddyArena arena, long bytes, out nint[] blocks)
{
    blocks = new nint[bytes / arena.LargestBlockBytes];
    var clock = Stopwatch.StartNew();
    for (int i = 0; i < blocks.Length; i++)
    {
        blocks[i] = arena.Allocate(arena.MaxOrder);
        new Span<byte>((void*)blocks[i], (int)arena.LargestBlockBytes).Fill((byte)(i + 1));
    }
    return bytes / clock.Elapsed.TotalSeconds / 1e9;
}

/// <summary>Resident bytes of the arena after a scattered small live set is kept and the rest reported.</summary>
static unsafe long Bloat(bool huge, long bytes)
{
    using var arena = new BuddyArena(new ArenaOptions
    {
        Size = bytes, Backing = ArenaBacking.Reserve, ZoneCount = 1, ThreadCaches = false, TransparentHugePages = huge,
    });
    using var reporter = new PageReporter(arena, new MadviseDontNeedDevice(), new PageReporterOptions
    {
        ReportOrder = 4, FloorOrder = 4, IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
    });
    var blocks = new nint[bytes / (64 << 10)];
    for (int i = 0; i < blocks.Length; i++)
    {
        blocks[i] = arena.Allocate(4);
        new Span<byte>((void*)blocks[i], 64 << 10).Fill(7);
    }
    int keepEvery = (2 << 20) / (64 << 10);
    for (int i = 0; i < blocks.Length; i++)
        if (i % keepEvery != 0) arena.Free(blocks[i]);
    reporter.ReportNow();
    long resident = VirtualMemory.CountResidentPages(arena.BaseAddress, (nuint)bytes) * Environment.SystemPageSize;
    for (int i = 0; i < blocks.Length; i += keepEvery) arena.Free(blocks[i]);
    return resident;
}

/// <summary>What happens to the freed arena before it is written again.</summary>
internal enum GiveBack
{
    /// <summary>Nothing: the baseline, memory that stayed resident.</summary>
    Keep,
    /// <summary>Reported with MADV_DONTNEED.</summary>
    Report,
    /// <summary>Offered with MADV_FREE, with no pressure to make the kernel take it.</summary>
    Hint,
}
