using System.CommandLine;
using Buddy.Cli.Workloads;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Cli;

/// <summary>`buddy churn`: a long-running service stand-in, bursting and idling with a reporter, to watch with `buddy monitor`.</summary>
internal static class ChurnCommand
{
    public static Command Create()
    {
        var seconds = new Option<int>("--seconds") { Description = "How long to run.", DefaultValueFactory = _ => 60 };
        var peak = new Option<int>("--peak-mib") { Description = "Memory at the top of each burst, MiB.", DefaultValueFactory = _ => 256 };
        var command = new Command("churn", "Bursts and idles with a page reporter until stopped, for `buddy monitor` and dotnet-counters.") { seconds, peak };
        command.SetAction(parse =>
        {
            long peakBytes = (long)Math.Max(4, parse.GetValue(peak)) << 20;
            using var arena = new BuddyArena(new ArenaOptions { Name = "churn", Size = peakBytes * 2, Backing = ArenaBacking.Reserve });
            var device = ReportingDevices.CreateDefault();
            using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromMilliseconds(500) });
            reporter.Start();
            Console.WriteLine($"buddy churn: pid {Environment.ProcessId}, arena '{arena.Name}', bursts to {peakBytes >> 20} MiB");
            DateTime end = DateTime.UtcNow.AddSeconds(parse.GetValue(seconds));
            for (int seed = 1; DateTime.UtcNow < end; seed++)
            {
                var workload = new BurstWorkload(arena, seed);
                workload.Burst(peakBytes, peakBytes / 16);
                workload.EndBurst();
                Thread.Sleep(1500);
                workload.EndAll();
            }
            reporter.Stop();
            (device as IDisposable)?.Dispose();
            return 0;
        });
        return command;
    }
}
