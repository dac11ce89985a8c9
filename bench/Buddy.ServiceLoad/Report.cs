using System.Globalization;
using System.Text;

namespace Buddy.ServiceLoad;

/// <summary>Writes the run as markdown, a CSV of every sample and a PNG of RSS over time.</summary>
internal static class Report
{
    public static void Write(string dir, string stem, LoadShape load, List<VariantRun> runs, string arguments)
    {
        WriteCsv(Path.Combine(dir, stem + ".csv"), runs);
        Plot(Path.Combine(dir, stem + ".png"), runs, load);
        var md = new StringBuilder();
        md.AppendLine("# Service load: BufferService under wrk, Kestrel's pool against Buddy's");
        md.AppendLine();
        md.AppendLine(Invariant($"- Date: {DateTime.UtcNow:yyyy-MM-dd}"));
        md.AppendLine($"- Machine: {Buddy.Bench.BenchMachine.Describe()}");
        md.AppendLine($"- Command: `./scripts/bench.sh` (this part: `dotnet bench/Buddy.ServiceLoad/bin/Release/net10.0/Buddy.ServiceLoad.dll {arguments}`)");
        md.AppendLine($"- Load: {load.Describe()}. Each variant runs the sample in a process of its own, warmed up (3 s of 8 connections) and idle 6 s before the burst; the reporter delay is the default, 2 s.");
        md.AppendLine($"- Raw data: `{stem}.csv` (every 100 ms sample), `{stem}.png` (RSS over time)");
        md.AppendLine();
        md.AppendLine("| variant | requests/s | p50 ms | p99 ms | errors | RSS before | peak | +10 s | +60 s | back within 10% | given back | 90% of it by | Kestrel pool at end | managed heap growth |");
        md.AppendLine("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (VariantRun r in runs)
        {
            double? back = r.SecondsToRecover();
            double? mostBack = r.SecondsToGiveBack(0.9);
            md.AppendLine(Invariant(
                $"| {r.Variant.Name} | {r.Wrk.RequestsPerSecond:0.0} | {r.Wrk.P50Ms:0} | {r.Wrk.P99Ms:0} | {r.Wrk.Errors} | {MiB(r.PreBurstRss)} | {MiB(r.PeakRss)} | {MiB(r.RssAt(10))} | {MiB(r.RssAt(r.IdleSeconds))} | {(back is { } s ? $"{s:0.0} s" : "not in the run")} | {MiB(r.GivenBack)} | {(mostBack is { } m ? $"{m:0.0} s" : "-")} | {MiB(r.Samples[^1].KestrelPooled)} | {MiB(r.ManagedHeapGrowth)} |"));
        }
        md.AppendLine();
        md.AppendLine("RSS and sizes in MiB. \"+10 s\" and \"+60 s\" are after the burst's end. \"Back within 10%\": the time from the burst's end until RSS first comes within 10% of its value before the burst. \"Given back\": peak RSS less RSS at the run's end, and the time from the burst's end until 90% of it had gone. \"Managed heap growth\": the GC's committed bytes outside either pool (the arena's pinned arrays, Kestrel's pooled blocks) 5 s after the burst, less the same before it: memory neither pool holds, which only a garbage collection gives back.");
        VariantRun kestrel = runs[0];
        foreach (VariantRun r in runs.Skip(1))
            md.AppendLine(Invariant($"{r.Variant.Name} against Kestrel's pool: requests/s {r.Wrk.RequestsPerSecond / kestrel.Wrk.RequestsPerSecond:0.000}x, p99 {r.Wrk.P99Ms / kestrel.Wrk.P99Ms:0.000}x, RSS at the end {(double)r.RssAt(r.IdleSeconds) / kestrel.RssAt(kestrel.IdleSeconds):0.000}x.").Insert(0, "- "));
        File.WriteAllText(Path.Combine(dir, stem + ".md"), md.ToString());
    }

    private static void WriteCsv(string path, List<VariantRun> runs)
    {
        var csv = new StringBuilder("variant,seconds,rss,gc_committed,arena_online,arena_reported,buddy_rented,kestrel_pooled,kestrel_evicted\n");
        foreach (VariantRun r in runs)
        foreach (Sample s in r.Samples)
            csv.AppendLine(Invariant($"{r.Variant.Key},{s.Seconds:0.000},{s.Rss},{s.GcCommitted},{s.ArenaOnline},{s.ArenaReported},{s.BuddyRented},{s.KestrelPooled},{s.KestrelEvicted}"));
        File.WriteAllText(path, csv.ToString());
    }

    private static void Plot(string path, List<VariantRun> runs, LoadShape load)
    {
        var plot = new ScottPlot.Plot();
        foreach (VariantRun r in runs)
        {
            double[] xs = r.Samples.Select(s => s.Seconds).ToArray();
            double[] ys = r.Samples.Select(s => s.Rss / 1048576.0).ToArray();
            var line = plot.Add.ScatterLine(xs, ys);
            line.LegendText = r.Variant.Name;
            line.LineWidth = 2;
        }
        var burstEnd = plot.Add.VerticalLine(load.Burst.TotalSeconds);
        burstEnd.LinePattern = ScottPlot.LinePattern.Dashed;
        burstEnd.LegendText = "burst ends";
        plot.Title("BufferService RSS: a wrk burst, then idle");
        plot.XLabel("seconds since the burst began");
        plot.YLabel("RSS (MiB)");
        plot.ShowLegend(ScottPlot.Alignment.UpperRight);
        plot.SavePng(path, 1000, 560);
    }

    private static string MiB(long bytes) => (bytes / 1048576.0).ToString("0.0", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
