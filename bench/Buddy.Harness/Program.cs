using System.Globalization;
using System.Text;
using System.Text.Json;
using Buddy.Harness;

// Buddy.Harness [--quick] [--out DIR]: every macro measurement, Buddy and its peers side by side in one run.
// Buddy.Harness --fragments [--quick] [--out DIR]: only the burst with a tenth kept, with and without fragment reporting.
// Buddy.Harness --rss-child PEER BURST_MIB BURSTS IDLE_MS DELAY_MS: one peer's RSS trace (used by the harness itself),
// and --churn-child, --fragments-child likewise.
if (args.Length == 6 && args[0] == "--rss-child")
    return RssOverTime.RunChild(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture),
        int.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture));

if (args.Length == 5 && args[0] == "--fragments-child")
    return Fragments.RunChild(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture),
        int.Parse(args[4], CultureInfo.InvariantCulture));

if (args.Length == 4 && args[0] == "--churn-child")
    return Child.RunChurn(args[1], int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture));

bool quick = args.Contains("--quick");
bool fragmentsOnly = args.Contains("--fragments");
int outIndex = Array.IndexOf(args, "--out");
string? outDir = outIndex >= 0 && outIndex + 1 < args.Length ? args[outIndex + 1] : null;
if (args.Except(["--quick", "--fragments", "--out", outDir ?? ""]).Any(a => a.Length > 0))
{
    Console.Error.WriteLine("usage: Buddy.Harness [--quick] [--fragments] [--out DIR]");
    return 2;
}

int delayMs = quick ? 500 : 2000;
var skipped = new List<string>();
void Say(string what) => Console.Error.WriteLine($"[harness] {what}");

Say("a burst with a tenth kept, then idle, with and without fragment reporting...");
int fragmentsBurstMiB = quick ? 256 : 1024;
var fragments = Fragments.Run(fragmentsBurstMiB, keepPercent: 10, delayMs);
if (outDir is not null)
{
    Directory.CreateDirectory(outDir);
    Fragments.WriteMarkdown(fragments, fragmentsBurstMiB, delayMs, string.Join(' ', args), Path.Combine(outDir, "fragments.md"));
}
if (fragmentsOnly)
{
    Console.WriteLine(JsonSerializer.Serialize(fragments));
    return 0;
}
Say("RSS over time, each peer in its own process...");
var traces = RssOverTime.Run(burstMiB: quick ? 256 : 1024, bursts: quick ? 2 : 3, idleMs: 2 * delayMs, delayMs, skipped);
Say("allocation/free pairs...");
var pairs = Scenarios.Pairs(quick ? 200_000 : 2_000_000);
Say("1-4 MiB churn...");
var churn = Child.Churn(quick ? 400 : 4000, delayMs, skipped);
Say("reporting against raw process_madvise...");
var report = Scenarios.ReportThroughput(quick ? 64 : 512);
Say("reporter overhead...");
// At the quick delay and the default one: runs four delays long, so the reporter passes several
// times, interleaved with runs without it; medians, since one run moves by 10% on a shared machine.
var overheads = (quick ? [500] : new[] { 500, 2000 }).ToDictionary(ms => ms, ms =>
    Scenarios.ReporterOverhead(TimeSpan.FromMilliseconds(ms), TimeSpan.FromMilliseconds(4 * ms), quick ? 3 : ms < 1000 ? 9 : 5));
Say("latency during reporting...");
var latency = Scenarios.Latency(quick ? 200_000 : 2_000_000);
Say("pass cost, 1 GiB against 64 GiB...");
var pass = Scenarios.PassCost();

var ratios = new Dictionary<string, object>
{
    ["pair_speedup_vs_glibc"] = Math.Round(pairs.Glibc / pairs.Buddy, 3),
    ["churn_speedup_vs_glibc"] = Math.Round(churn["glibc"] / churn["buddy"], 3),
    ["report_vs_raw_madvise"] = Math.Round(report.Raw / report.Buddy, 3),
    ["reporter_overhead_pct"] = overheads.ToDictionary(o => $"{o.Key}ms", o => o.Value.ThroughputPercent),
    ["reporter_cpu_overhead_pct"] = overheads.ToDictionary(o => $"{o.Key}ms", o => o.Value.CpuPercent),
    ["reporter_pass_time_pct"] = overheads.ToDictionary(o => $"{o.Key}ms", o => o.Value.PassTimePercent),
    ["p999_ratio_isolate_vs_off"] = Math.Round(latency["isolate"][2] / latency["off"][2], 3),
    ["p999_ratio_inplace_vs_off"] = Math.Round(latency["inplace"][2] / latency["off"][2], 3),
    ["pass_cost_ratio_64g_vs_1g"] = Math.Round(pass.Large / pass.Small, 3),
    ["idle_rss_over_peak"] = traces.ToDictionary(t => t.Peer, t => Math.Round((double)t.IdleRss / t.PeakRss, 3)),
    ["fragments_idle_held_mib"] = fragments.ToDictionary(f => f.Variant, f => f.Held >> 20),
    ["skipped"] = skipped,
};
Say(string.Create(CultureInfo.InvariantCulture,
    $"pair ns buddy {pairs.Buddy:F1} glibc {pairs.Glibc:F1}; churn us {string.Join(' ', churn.Select(c => $"{c.Key}={c.Value:F1}"))}; report ms buddy {report.Buddy * 1000:F2} raw {report.Raw * 1000:F2}; pass ms {pass.Small:F3}/{pass.Large:F3}; p99.9 us {string.Join(' ', latency.Select(l => $"{l.Key}={l.Value[2]:F2}"))}"));
Console.WriteLine(JsonSerializer.Serialize(ratios));

if (outDir is not null)
{
    Directory.CreateDirectory(outDir);
    RssOverTime.WriteCsv(traces, Path.Combine(outDir, "rss-over-time.csv"));
    RssOverTime.Plot(traces, Path.Combine(outDir, "rss-over-time.png"),
        $"Bursts of {(quick ? 256 : 1024)} MiB, idle {2 * delayMs} ms between (Buddy reporter delay {delayMs} ms)");
    var md = new StringBuilder();
    md.AppendLine("| measurement | figure |").AppendLine("|---|---|");
    md.AppendLine(CultureInfo.InvariantCulture, $"| order-0 alloc+free, ns | Buddy {pairs.Buddy:F1}, glibc {pairs.Glibc:F1} |");
    md.AppendLine(CultureInfo.InvariantCulture, $"| 1-4 MiB alloc+touch+free, µs | {string.Join(", ", churn.Select(c => $"{c.Key} {c.Value:F1}"))} |");
    md.AppendLine(CultureInfo.InvariantCulture, $"| hand back {(quick ? 64 : 512)} x 2 MiB, ms | Buddy pass {report.Buddy * 1000:F1}, raw process_madvise {report.Raw * 1000:F1} |");
    foreach (var (ms, o) in overheads)
        md.AppendLine(CultureInfo.InvariantCulture,
            $"| mixed ops, reporter delay {ms} ms | ops/s on {o.OpsWith:F0}, off {o.OpsWithout:F0} ({o.ThroughputPercent:F2}%); CPU ns/op on {o.CpuNsWith:F1}, off {o.CpuNsWithout:F1} ({o.CpuPercent:F2}%); in passes {o.PassTimePercent:F3}% of the run |");
    foreach (var (variant, p) in latency)
        md.AppendLine(CultureInfo.InvariantCulture, $"| allocation latency, reporting {variant}, µs | p50 {p[0]:F2}, p99 {p[1]:F2}, p99.9 {p[2]:F2}, max {p[3]:F1} |");
    md.AppendLine(CultureInfo.InvariantCulture, $"| reporting pass after the same churn, ms | 1 GiB arena {pass.Small:F3}, 64 GiB arena {pass.Large:F3} |");
    foreach (var trace in traces)
        md.AppendLine(CultureInfo.InvariantCulture, $"| RSS of {trace.Peer}, MiB | peak {trace.PeakRss >> 20}, idle at 2 x delay {trace.IdleRss >> 20} |");
    File.WriteAllText(Path.Combine(outDir, "harness-table.md"), md.ToString());
}
return 0;
