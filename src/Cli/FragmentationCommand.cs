using System.CommandLine;
using System.Text.Json;
using Buddy.Cli.Workloads;

namespace Buddy.Cli;

/// <summary>`buddy fragmentation`: the mixed-lifetime workload with and without grouping by mobility.</summary>
internal static class FragmentationCommand
{
    public static Command Create()
    {
        var seed = new Option<int>("--seed") { Description = "Random seed of the workload.", DefaultValueFactory = _ => 1 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object instead of a table." };
        var command = new Command("fragmentation", "Shows how grouping pageblocks by migratetype keeps large free blocks forming.")
        {
            seed, json,
        };
        command.SetAction(parse =>
        {
            var results = new[] { true, false }.Select(g => MixedLifetimeWorkload.Run(g, parse.GetValue(seed))).ToArray();
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(results.Select(r => new
                {
                    group_by_mobility = r.GroupByMobility,
                    long_lived_pages = r.LongLivedPages,
                    free_pages = r.FreePages,
                    free_pages_in_pageblocks = r.FreePagesInPageblocks,
                    pageblock_share = Math.Round(r.PageblockShare, 4),
                })));
                return 0;
            }
            Console.WriteLine($"Mixed lifetimes in a 256 MiB arena: 1 in 16 allocations is a long-lived Unmovable page.");
            Console.WriteLine($"{"grouping",-10} {"long-lived",12} {"free",12} {"free in order>=9",18} {"share",7}");
            foreach (var r in results)
                Console.WriteLine($"{(r.GroupByMobility ? "on" : "off"),-10} {Table.Bytes(r.LongLivedPages * 4096),12} {Table.Bytes(r.FreePages * 4096),12} {Table.Bytes(r.FreePagesInPageblocks * 4096),18} {r.PageblockShare,7:P1}");
            return 0;
        });
        return command;
    }
}
