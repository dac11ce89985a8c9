using System.CommandLine;
using System.Text.Json;
using Buddy.Cli.Workloads;
using Buddy.Interop;

namespace Buddy.Cli;

/// <summary>`buddy demo`: a burst to a peak, then back to a small live set, with RSS at each step.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var peak = new Option<int>("--peak-mib") { Description = "Live memory at the top of the burst, MiB.", DefaultValueFactory = _ => 1024 };
        var live = new Option<int>("--live-mib") { Description = "Live memory kept after the burst, MiB.", DefaultValueFactory = _ => 64 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var command = new Command("demo", "Runs a bursty workload and shows what the arena and the process RSS do.") { peak, live, json };
        command.SetAction(parse => Run(parse.GetValue(peak) * (1L << 20), parse.GetValue(live) * (1L << 20), parse.GetValue(json)));
        return command;
    }

    private static int Run(long peakBytes, long liveBytes, bool json)
    {
        if (liveBytes > peakBytes || peakBytes <= 0)
        {
            Console.Error.WriteLine("--live-mib must be at most --peak-mib, and --peak-mib positive.");
            return 2;
        }
        long arenaBytes = (peakBytes * 2 + (4L << 20) - 1) & ~((4L << 20) - 1);
        using var arena = new BuddyArena(new ArenaOptions { Size = arenaBytes, Backing = ArenaBacking.Reserve });
        var workload = new BurstWorkload(arena);
        long rssStart = ProcessMemory.ResidentBytes();
        workload.GrowTo(peakBytes);
        long rssPeak = ProcessMemory.ResidentBytes();
        workload.ShrinkTo(liveBytes);
        long rssAfter = ProcessMemory.ResidentBytes();
        ArenaStatistics stats = arena.GetStatistics();

        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                arena_bytes = arena.Size,
                allocations = workload.Allocations,
                live_bytes = workload.LiveBytes,
                free_bytes = stats.FreeBytes,
                start_rss_bytes = rssStart,
                peak_rss_bytes = rssPeak,
                after_free_rss_bytes = rssAfter,
                free_blocks_by_order = Enumerable.Range(0, arena.MaxOrder + 1).Select(stats.FreeBlocks).ToArray(),
            }));
            return 0;
        }
        Console.WriteLine($"Arena {Table.Bytes(arena.Size)} in {arena.ZoneCount} zones; burst of {workload.Allocations} buffers (64 KiB - 4 MiB), then back to {Table.Bytes(workload.LiveBytes)} live.");
        Console.WriteLine();
        Console.WriteLine($"{"RSS at start",-24}{Table.Bytes(rssStart),12}");
        Console.WriteLine($"{"RSS at peak",-24}{Table.Bytes(rssPeak),12}");
        Console.WriteLine($"{"RSS after the frees",-24}{Table.Bytes(rssAfter),12}");
        Console.WriteLine();
        Console.WriteLine($"{"order",6}{"block",10}{"free blocks",14}{"free bytes",14}");
        for (int order = 0; order <= arena.MaxOrder; order++)
        {
            long blocks = stats.FreeBlocks(order);
            Console.WriteLine($"{order,6}{Table.Bytes(arena.BlockBytes(order)),10}{blocks,14}{Table.Bytes(blocks * arena.BlockBytes(order)),14}");
        }
        return 0;
    }
}
