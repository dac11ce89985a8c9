using System.CommandLine;
using System.Text.Json;
using Buddy.Cli.Workloads;
using Buddy.Reporting;

namespace Buddy.Cli;

/// <summary>`buddy demo`: a bursty workload, with free page reporting and without, and what RSS does.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var peak = new Option<int>("--peak-mib") { Description = "Live memory at the top of the burst, MiB.", DefaultValueFactory = _ => 1024 };
        var live = new Option<int>("--live-mib") { Description = "Long-lived memory kept after the burst, MiB.", DefaultValueFactory = _ => 64 };
        var delay = new Option<int>("--delay-ms") { Description = "Reporter delay after a free, ms.", DefaultValueFactory = _ => 2000 };
        var mode = new Option<ReportingMode>("--mode") { Description = "Isolate or InPlace.", DefaultValueFactory = _ => ReportingMode.Isolate };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var command = new Command("demo", "Bursts to a peak, drops to a small live set, idles: with reporting RSS falls back, without it stays.")
        {
            peak, live, delay, mode, json,
        };
        command.SetAction(parse => Run(parse.GetValue(peak), parse.GetValue(live), parse.GetValue(delay), parse.GetValue(mode), parse.GetValue(json)));
        return command;
    }

    private static int Run(int peakMiB, int liveMiB, int delayMs, ReportingMode mode, bool json)
    {
        if (peakMiB <= 0 || liveMiB < 0 || liveMiB > peakMiB || delayMs < 0)
        {
            Console.Error.WriteLine("--peak-mib must be positive, --live-mib between 0 and --peak-mib, --delay-ms not negative.");
            return 2;
        }
        var delay = TimeSpan.FromMilliseconds(delayMs);
        // Long enough for the pass after the delay and the idle pass down to the floor after it.
        TimeSpan idle = delay * 3 + TimeSpan.FromSeconds(3);
        if (!json) Console.WriteLine($"Burst to {peakMiB} MiB of 64 KiB - 4 MiB buffers ({liveMiB} MiB of them long-lived), free the rest, then idle for up to {idle.TotalSeconds:F0} s...");
        DemoFigures with = DemoRun.Run(peakMiB << 20, (long)liveMiB << 20, delay, mode, reporting: true, idle);
        DemoFigures without = DemoRun.Run(peakMiB << 20, (long)liveMiB << 20, delay, mode, reporting: false, idle);
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                live_bytes = with.LiveBytes,
                start_rss_bytes = with.StartRssBytes,
                peak_rss_bytes = with.PeakRssBytes,
                idle_rss_bytes = with.IdleRssBytes,
                reported_bytes = with.ReportedBytes,
                seconds_to_idle = with.SecondsToIdle,
                allocations = with.Allocations,
                mode = mode.ToString(),
                delay_ms = delayMs,
                free_blocks_by_order = with.FreeBlocksByOrder,
                without_reporting = new
                {
                    live_bytes = without.LiveBytes,
                    peak_rss_bytes = without.PeakRssBytes,
                    idle_rss_bytes = without.IdleRssBytes,
                },
            }));
            return 0;
        }
        Console.WriteLine();
        Console.WriteLine($"{"",-26}{"with reporting",16}{"without",16}");
        Row("RSS at start", Table.Bytes(with.StartRssBytes), Table.Bytes(without.StartRssBytes));
        Row("RSS at peak", Table.Bytes(with.PeakRssBytes), Table.Bytes(without.PeakRssBytes));
        Row("live after the burst", Table.Bytes(with.LiveBytes), Table.Bytes(without.LiveBytes));
        Row("RSS after idle", Table.Bytes(with.IdleRssBytes), Table.Bytes(without.IdleRssBytes));
        Row("reported to the OS", Table.Bytes(with.ReportedBytes), "-");
        Row("seconds until RSS fell", Seconds(with.SecondsToIdle), Seconds(without.SecondsToIdle));
        Console.WriteLine();
        Console.WriteLine($"Free blocks by order after the burst (with reporting, {mode} mode, delay {delayMs} ms):");
        Console.WriteLine("  " + string.Join("  ", with.FreeBlocksByOrder.Select((n, order) => $"{order}:{n}")));
        return 0;
    }

    private static void Row(string name, string with, string without) => Console.WriteLine($"{name,-26}{with,16}{without,16}");

    private static string Seconds(double? seconds) => seconds is { } s ? $"{s:F2} s" : "never";
}
