using System.CommandLine;
using System.Text.Json;
using Buddy.Cli.Workloads;
using Buddy.Reporting;

namespace Buddy.Cli;

/// <summary>`buddy stress`: the concurrent allocation fuzzer. Exit code 1 on any corruption or loss.</summary>
internal static class StressCommand
{
    public static Command Create()
    {
        var seconds = new Option<int>("--seconds") { Description = "How long to run.", DefaultValueFactory = _ => 10 };
        var threads = new Option<int>("--threads") { Description = "Worker threads.", DefaultValueFactory = _ => Environment.ProcessorCount * 2 };
        var seed = new Option<int>("--seed") { Description = "Seed of every random choice.", DefaultValueFactory = _ => Environment.TickCount };
        var arenaMiB = new Option<int>("--arena") { Description = "Arena size, MiB (a multiple of 4).", DefaultValueFactory = _ => 256 };
        var device = new Option<StressDevice>("--device") { Description = "DontNeed, Slow, Failing or Mixed.", DefaultValueFactory = _ => StressDevice.Mixed };
        var mode = new Option<ReportingMode>("--mode") { Description = "Isolate or InPlace (Mixed alternates).", DefaultValueFactory = _ => ReportingMode.Isolate };
        var sectionMiB = new Option<int>("--section") { Description = "Section size, MiB (a multiple of 4 dividing --arena): start with one, grow to --arena, take free ones offline. 0: one section." };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("stress", "Fuzzes the allocator from many threads with reporting and injected faults; proves nothing is lost.")
        {
            seconds, threads, seed, arenaMiB, device, mode, sectionMiB, json,
        };
        command.SetAction(parse =>
        {
            int section = parse.GetValue(sectionMiB);
            if (parse.GetValue(seconds) <= 0 || parse.GetValue(threads) <= 0 || parse.GetValue(arenaMiB) <= 0 || parse.GetValue(arenaMiB) % 4 != 0
                || section < 0 || section % 4 != 0 || (section > 0 && parse.GetValue(arenaMiB) % section != 0))
            {
                Console.Error.WriteLine("--seconds and --threads must be positive; --arena a positive multiple of 4 MiB; --section 0 or a multiple of 4 MiB dividing --arena.");
                return 2;
            }
            var options = new StressOptions
            {
                Duration = TimeSpan.FromSeconds(parse.GetValue(seconds)),
                Threads = parse.GetValue(threads),
                Seed = parse.GetValue(seed),
                ArenaBytes = (long)parse.GetValue(arenaMiB) << 20,
                Device = parse.GetValue(device),
                Mode = parse.GetValue(mode),
                SectionBytes = (long)section << 20,
            };
            if (!parse.GetValue(json))
                Console.WriteLine($"stress: {options.Threads} threads, {options.Duration.TotalSeconds:F0} s, seed {options.Seed}, {options.Device} device...");
            StressResult result = new StressEngine(options).Run();
            Print(result, parse.GetValue(json));
            return result.Passed ? 0 : 1;
        });
        return command;
    }

    private static void Print(StressResult r, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                seed = r.Seed,
                ops = r.Operations,
                ops_per_sec = Math.Round(r.OperationsPerSecond),
                corruptions = r.Corruptions,
                lost_pages = r.LostPages,
                invariant_checks = r.InvariantChecks,
                reports = r.Reports,
                failed_reports = r.FailedReports,
                spin_waits = r.SpinWaits,
                longest_spin_ms = Math.Round(r.LongestSpin.TotalMilliseconds, 3),
                exhaustions = r.Exhaustions,
                cross_thread_frees = r.CrossThreadFrees,
                sections_added = r.SectionsAdded,
                sections_removed = r.SectionsRemoved,
                threads_replaced = r.ThreadsReplaced,
                problems = r.Problems,
            }));
            return;
        }
        Console.WriteLine($"operations         {r.Operations:N0} ({r.OperationsPerSecond:N0}/s)");
        Console.WriteLine($"cross-thread frees {r.CrossThreadFrees:N0}");
        Console.WriteLine($"threads replaced   {r.ThreadsReplaced:N0} (each exited with its cache)");
        Console.WriteLine($"sections           {r.SectionsAdded:N0} added, {r.SectionsRemoved:N0} removed");
        Console.WriteLine($"exhaustions        {r.Exhaustions:N0}");
        Console.WriteLine($"reports            {r.Reports:N0} device calls, {r.FailedReports:N0} failed (injected)");
        Console.WriteLine($"spin waits         {r.SpinWaits:N0} (longest {r.LongestSpin.TotalMilliseconds:F2} ms)");
        Console.WriteLine($"invariant checks   {r.InvariantChecks:N0}");
        Console.WriteLine($"corruptions        {r.Corruptions}");
        Console.WriteLine($"lost pages         {r.LostPages}");
        foreach (string problem in r.Problems) Console.WriteLine($"  {problem}");
        Console.WriteLine(r.Passed ? "PASS" : "FAIL");
    }
}
