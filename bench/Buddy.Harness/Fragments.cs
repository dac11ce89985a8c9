using System.Globalization;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Harness;

/// <summary>
/// A burst with a tenth of it kept alive, then idle: the kept blocks pin the rest of their pageblocks
/// as free fragments below the report order. Idle RSS with fragment reporting (floor 64 KiB) against
/// without it (floor at the report order), each in a process of its own, against the runtime's own
/// baseline plus the bytes kept.
/// </summary>
public static class Fragments
{
    public sealed record Result(string Variant, long BaselineRss, long LiveBytes, long PeakRss, long IdleRss, long ReportedBytes, double SecondsToIdle)
    {
        /// <summary>Idle RSS above the baseline and the live bytes: what the allocator still holds.</summary>
        public long Held => IdleRss - BaselineRss - LiveBytes;
    }

    public static readonly string[] Variants = ["floor 64 KiB", "no floor", "hint tier at once, no idle pass"];

    /// <summary>Runs in the child: one variant, one line "fragments,baseline,live,peak,idle,reported".</summary>
    public static unsafe int RunChild(string variant, int burstMiB, int keepPercent, int delayMs)
    {
        long baseline = ProcessMemory.ResidentBytes();
        using var arena = new BuddyArena(new ArenaOptions { Name = "fragments", Size = 4L << 30, Backing = ArenaBacking.Reserve });
        using var device = new MadviseDontNeedDevice();
        var delay = TimeSpan.FromMilliseconds(delayMs);
        bool hints = variant == Variants[2];
        using var reporter = new PageReporter(arena, device, new PageReporterOptions
        {
            Delay = delay,
            // With the hint tier, fragments go back through it: offered at once, reported one delay later.
            IdleTime = hints ? Timeout.InfiniteTimeSpan : 2 * delay,
            FloorOrder = variant == Variants[1] ? arena.PageblockOrder : null,
            HintDelay = hints ? TimeSpan.Zero : Timeout.InfiniteTimeSpan,
        });
        reporter.Start();
        var random = new Random(17);
        var blocks = new List<(nint Block, long Bytes)>();
        for (long burst = 0; burst < (long)burstMiB << 20;)
        {
            // 64 KiB - 4 MiB, log-uniform, as the density workload.
            int shift = random.Next(16, 22);
            long bytes = (1L << shift) + random.NextInt64(1L << shift);
            nint block = arena.AllocateBytes(bytes);
            for (long offset = 0; offset < bytes; offset += 4096) *(byte*)(block + (nint)offset) = 1;
            blocks.Add((block, bytes));
            burst += bytes;
        }
        long peak = ProcessMemory.ResidentBytes();
        var kept = new List<nint>();
        long live = 0;
        foreach ((nint block, long bytes) in blocks)
        {
            if (random.Next(100) < keepPercent)
            {
                kept.Add(block);
                live += (bytes + 4095) / 4096 * 4096;
            }
            else
            {
                arena.Free(block);
            }
        }
        var sinceFree = System.Diagnostics.Stopwatch.StartNew();
        // Until nothing above the floor is left unreported, or ten delays.
        var deadline = DateTime.UtcNow + 10 * delay + TimeSpan.FromSeconds(5);
        while (arena.UnreportedFreeBytes(reporter.FloorOrder) > 0 && DateTime.UtcNow < deadline) Thread.Sleep(50);
        long idle = ProcessMemory.ResidentBytes();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"fragments,{baseline},{live},{peak},{idle},{arena.GetStatistics().ReportedBytes},{sinceFree.Elapsed.TotalSeconds:0.00}"));
        GC.KeepAlive(kept);
        return 0;
    }

    public static void WriteMarkdown(List<Result> results, int burstMiB, int delayMs, string arguments, string path)
    {
        var md = new System.Text.StringBuilder();
        md.AppendLine("# Fragments: a burst with a tenth kept, then idle");
        md.AppendLine();
        md.AppendLine(string.Create(CultureInfo.InvariantCulture, $"- Date: {DateTime.UtcNow:yyyy-MM-dd}"));
        md.AppendLine($"- Machine: {Buddy.Bench.BenchMachine.Describe()}");
        md.AppendLine($"- Command: `dotnet bench/Buddy.Harness/bin/Release/net10.0/Buddy.Harness.dll {arguments}` (also part of `./scripts/bench.sh`)");
        md.AppendLine(string.Create(CultureInfo.InvariantCulture,
            $"- Workload: one {burstMiB} MiB burst of 64 KiB - 4 MiB blocks (log-uniform sizes, every page touched) in a reserved arena, 10% of the blocks kept, the rest freed; reporter delay {delayMs} ms, idle time twice that; RSS read once nothing above the floor is left unreported (at most ten delays). Each variant in a process of its own."));
        md.AppendLine();
        md.AppendLine("| variant | runtime baseline | live | peak | idle | held above live + baseline | reported | seconds from the frees to idle |");
        md.AppendLine("|---|---|---|---|---|---|---|---|");
        foreach (Result r in results)
            md.AppendLine(string.Create(CultureInfo.InvariantCulture,
                $"| {r.Variant} | {r.BaselineRss / 1048576.0:0.0} | {r.LiveBytes / 1048576.0:0.0} | {r.PeakRss / 1048576.0:0.0} | {r.IdleRss / 1048576.0:0.0} | {r.Held / 1048576.0:0.0} | {r.ReportedBytes / 1048576.0:0.0} | {r.SecondsToIdle:0.00} |"));
        md.AppendLine();
        md.AppendLine("Sizes in MiB. \"Held\": idle RSS less the runtime's RSS before the arena and the bytes kept (whole pages); the target is at most 16 MiB.");
        File.WriteAllText(path, md.ToString());
    }

    /// <summary>Each variant in a process of its own.</summary>
    public static List<Result> Run(int burstMiB, int keepPercent, int delayMs)
    {
        var results = new List<Result>();
        foreach (string variant in Variants)
        {
            using var child = Child.Start("buddy", "--fragments-child", variant, $"{burstMiB}", $"{keepPercent}", $"{delayMs}");
            string line = child.StandardOutput.ReadToEnd().Trim();
            child.WaitForExit();
            string[] fields = line.Split(',');
            long[] f = fields.Skip(1).Take(5).Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
            results.Add(new Result(variant, f[0], f[1], f[2], f[3], f[4], double.Parse(fields[6], CultureInfo.InvariantCulture)));
        }
        return results;
    }
}
