using System.Globalization;
using System.Text;

namespace Buddy.Density;

/// <summary>Writes the searches as markdown, a CSV of every usage sample and a PNG of usage at each allocator's largest N.</summary>
internal static class Report
{
    public static void Write(string dir, string stem, Workload load, List<Search> searches, List<string> skipped, string arguments)
    {
        WriteCsv(Path.Combine(dir, stem + ".csv"), searches);
        Plot(Path.Combine(dir, stem + ".png"), searches, load);
        Search? glibc = searches.FirstOrDefault(s => s.Allocator.Key == "glibc");
        var md = new StringBuilder();
        md.AppendLine("# Density: bursty processes under one memory cap");
        md.AppendLine();
        md.AppendLine(Invariant($"- Date: {DateTime.UtcNow:yyyy-MM-dd}"));
        md.AppendLine($"- Machine: {Buddy.Bench.BenchMachine.Describe()}");
        md.AppendLine($"- Command: `./scripts/bench.sh --density{(arguments.Contains("--quick") ? " --quick" : "")}` (this part: `dotnet bench/Buddy.Density/bin/Release/net10.0/Buddy.Density.dll {arguments}`)");
        md.AppendLine($"- Workload: {load.Describe()}.");
        md.AppendLine("- Each allocator runs N = 1, 2, 4, ... workers until one run has an OOM kill (or N reaches the search's maximum), then bisects. A worker is a small C program (`bench/Buddy.Density/worker.c`); the peers are the process's malloc, replaced through LD_PRELOAD; Buddy is libbuddy.so with a reserved arena and its reporter on the library's defaults (delay 2 s, floor 64 KiB, idle 10 s, every pressure source), once more with a 10 s delay, and with the hint tier (MADV_FREE; `hint_delay_ms`) as each row says.");
        md.AppendLine($"- Raw data: `{stem}.csv` (the group's usage every 100 ms in every run), `{stem}.png` (usage at each allocator's largest N)");
        foreach (string s in skipped)
            md.AppendLine($"- Skipped: {s}");
        md.AppendLine();
        md.AppendLine("| allocator | largest N, no OOM kill | group peak at that N | next N | warm burst, N=1: median | p90 | median against glibc | warm burst at largest N: median |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (Search s in searches)
        {
            RunResult? largest = s.LargestRun;
            string next = s.FirstFailure is int f ? $"{f}: {s.Runs.First(r => r.Processes == f).Failure}" : "not reached";
            double? single = Median(s.Single?.BurstMs);
            double? glibcSingle = Median(glibc?.Single?.BurstMs);
            md.AppendLine(Invariant(
                $"| {s.Allocator.Name} | {(s.Largest == load.MaxProcesses ? $">= {s.Largest}" : $"{s.Largest}")} | {(largest is null ? "-" : $"{largest.PeakBytes / 1048576.0:0} MiB")} | {next} | {Ms(single)} | {Ms(Percentile(s.Single?.BurstMs, 0.9))} | {(single is { } a && glibcSingle is { } g ? $"{a / g:0.00}x" : "-")} | {Ms(Median(largest?.BurstMs))} |"));
        }
        md.AppendLine();
        md.AppendLine(Invariant($"Burst times are the time to allocate and touch one {load.BurstMiB} MiB burst, each process's first (cold) burst left out. \"Next N\" is the smallest N that failed and why."));
        md.AppendLine();
        md.AppendLine("Every run:");
        md.AppendLine();
        md.AppendLine("| allocator | N | result | group peak |");
        md.AppendLine("|---|---|---|---|");
        foreach (Search s in searches)
        foreach (RunResult r in s.Runs.OrderBy(r => r.Processes))
            md.AppendLine(Invariant($"| {s.Allocator.Key} | {r.Processes} | {r.Failure ?? "clean"} | {r.PeakBytes / 1048576.0:0} MiB |"));
        File.WriteAllText(Path.Combine(dir, stem + ".md"), md.ToString());
    }

    private static void WriteCsv(string path, List<Search> searches)
    {
        var csv = new StringBuilder("allocator,processes,clean,seconds,usage_bytes\n");
        foreach (Search s in searches)
        foreach (RunResult r in s.Runs)
        foreach ((double seconds, long bytes) in r.Usage)
            csv.AppendLine(Invariant($"{s.Allocator.Key},{r.Processes},{r.Clean},{seconds:0.000},{bytes}"));
        File.WriteAllText(path, csv.ToString());
    }

    private static void Plot(string path, List<Search> searches, Workload load)
    {
        var plot = new ScottPlot.Plot();
        foreach (Search s in searches)
        {
            if (s.LargestRun is not { } run)
                continue;
            var line = plot.Add.ScatterLine(run.Usage.Select(u => u.Seconds).ToArray(), run.Usage.Select(u => u.Bytes / 1048576.0).ToArray());
            line.LegendText = $"{s.Allocator.Key}, N = {run.Processes}";
            line.LineWidth = 2;
        }
        var limit = plot.Add.HorizontalLine(load.LimitMiB);
        limit.LinePattern = ScottPlot.LinePattern.Dashed;
        limit.LegendText = "limit";
        plot.Title("Memory group usage at each allocator's largest N");
        plot.XLabel("seconds");
        plot.YLabel("usage (MiB)");
        plot.ShowLegend(ScottPlot.Alignment.LowerRight);
        plot.SavePng(path, 1000, 560);
    }

    private static double? Median(List<double>? values) => Percentile(values, 0.5);

    private static double? Percentile(List<double>? values, double fraction)
    {
        if (values is not { Count: > 0 })
            return null;
        double[] sorted = [.. values.Order()];
        return sorted[(int)Math.Min(sorted.Length - 1, Math.Round(fraction * (sorted.Length - 1)))];
    }

    private static string Ms(double? ms) => ms is { } m ? m.ToString("0.0 ms", CultureInfo.InvariantCulture) : "-";

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
