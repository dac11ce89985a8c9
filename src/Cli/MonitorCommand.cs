using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Buddy.Cli.Monitoring;

namespace Buddy.Cli;

/// <summary>`buddy monitor PID`: the Buddy.Allocator instruments of another process, live.</summary>
internal static class MonitorCommand
{
    public static Command Create()
    {
        var pid = new Argument<int>("pid") { Description = "Process to watch." };
        var once = new Option<bool>("--once") { Description = "Print one snapshot and exit." };
        var json = new Option<bool>("--json") { Description = "JSON: one object per snapshot, one per line." };
        var refresh = new Option<int>("--refresh") { Description = "Seconds between snapshots.", DefaultValueFactory = _ => 1 };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the first Buddy instrument.", DefaultValueFactory = _ => 10 };
        var command = new Command("monitor", "Shows the Buddy.Allocator instruments of a running process, like dotnet-counters monitor.")
        {
            pid, once, json, refresh, timeout,
        };
        command.SetAction(parse => Run(parse.GetValue(pid), parse.GetValue(once), parse.GetValue(json),
            TimeSpan.FromSeconds(Math.Max(1, parse.GetValue(refresh))), TimeSpan.FromSeconds(Math.Max(1, parse.GetValue(timeout)))));
        return command;
    }

    private static int Run(int pid, bool once, bool json, TimeSpan refresh, TimeSpan timeout)
    {
        if (!ProcessExists(pid)) return Fail($"no process with id {pid}.");
        MetricsMonitor monitor;
        try
        {
            monitor = new MetricsMonitor(pid, refresh);
        }
        catch (ArgumentException e)
        {
            return Fail(e.Message);
        }
        using (monitor)
        using (var cancellation = new CancellationTokenSource())
        {
            bool seen = false;
            Console.CancelKeyPress += (_, e) => { e.Cancel = true; cancellation.Cancel(); };
            cancellation.CancelAfter(timeout);
            monitor.Run(values =>
            {
                if (values.Count == 0 || (once && seen)) return;
                if (!seen) cancellation.CancelAfter(Timeout.Infinite);
                seen = true;
                Print(pid, values, json);
                if (once) cancellation.Cancel();
            }, cancellation.Token);
            return seen ? 0 : Fail($"process {pid} published no {ArenaMetrics.MeterName} instruments within {timeout.TotalSeconds:F0} s: it has no Buddy arena (or it exited).");
        }
    }

    private static bool ProcessExists(int pid)
    {
        try
        {
            using Process process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    private static int Fail(string message)
    {
        Console.Error.WriteLine($"buddy monitor: {message}");
        return 1;
    }

    private static void Print(int pid, IReadOnlyList<MetricValue> values, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                pid,
                time = DateTime.UtcNow,
                instruments = values.Select(v => new { name = v.Instrument, unit = v.Unit, tags = v.Tags, value = v.Value }),
            }));
            return;
        }
        if (!Console.IsOutputRedirected) Console.Write("\u001b[H\u001b[2J");
        Console.WriteLine($"Press Ctrl+C to exit. {ArenaMetrics.MeterName} in process {pid}, {DateTime.Now:HH:mm:ss}");
        foreach (var group in values.GroupBy(v => v.Tags.Split(',').FirstOrDefault(t => t.StartsWith(ArenaMetrics.ArenaTag, StringComparison.Ordinal)) ?? "process"))
        {
            Console.WriteLine($"[{group.Key}]");
            foreach (MetricValue v in group)
            {
                string extra = v.Tags.Split(',').Where(t => t.Length > 0 && !t.StartsWith(ArenaMetrics.ArenaTag, StringComparison.Ordinal)).FirstOrDefault() ?? "";
                Console.WriteLine($"    {v.Instrument + (extra.Length > 0 ? $" [{extra}]" : ""),-52} {Format(v),18}");
            }
        }
    }

    private static string Format(MetricValue v) => v.Unit switch
    {
        "By" => Table.Bytes((long)v.Value),
        "s" => $"{v.Value:G4} s",
        _ => $"{v.Value:N0}",
    };
}
