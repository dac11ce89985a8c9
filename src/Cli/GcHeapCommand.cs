using System.CommandLine;
using System.Runtime.InteropServices;
using System.Text.Json;
using Buddy.Interop;

namespace Buddy.Cli;

/// <summary>
/// `buddy gcheap`: what pinned sections do to the managed heap under the GC's heap hard limit. A
/// PinnedArray arena bursts to --burst MiB and frees everything (its sections would stay online
/// for an hour), then the program grows its managed heap by --managed MiB of live arrays. Run where
/// the limit is tight (a container, or DOTNET_GCHeapHardLimit): the arena takes its free sections
/// offline when a gen2 collection finds memory short, so the managed phase fits.
/// </summary>
internal static class GcHeapCommand
{
    public static Command Create()
    {
        var burst = new Option<int>("--burst") { Description = "Arena burst, MiB.", DefaultValueFactory = _ => 160 };
        var managed = new Option<int>("--managed") { Description = "Managed arrays kept alive afterwards, MiB.", DefaultValueFactory = _ => 160 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("gcheap", "Bursts a PinnedArray arena, frees it, then grows the managed heap under the GC's limit.") { burst, managed, json };
        command.SetAction(parse => Run((long)parse.GetValue(burst) << 20, (long)parse.GetValue(managed) << 20, parse.GetValue(json)));
        return command;
    }

    private static unsafe int Run(long burstBytes, long managedBytes, bool json)
    {
        using var arena = new BuddyArena(new ArenaOptions
        {
            Name = "gcheap", Size = 32L << 20, SectionSize = 32L << 20, MaximumSize = 1L << 30,
            Backing = ArenaBacking.PinnedArray, SectionIdleTime = TimeSpan.FromHours(1),
        });
        var blocks = new List<nint>();
        while ((long)blocks.Count * arena.LargestBlockBytes < burstBytes && arena.TryAllocate(arena.MaxOrder, out nint block))
        {
            NativeMemory.Fill((void*)block, (nuint)arena.LargestBlockBytes, 0x42);
            blocks.Add(block);
        }
        long burst = blocks.Count * arena.LargestBlockBytes;
        int sectionsAtPeak = arena.OnlineSections;
        blocks.ForEach(arena.Free);

        var kept = new List<byte[]>();
        string? failure = null;
        try
        {
            while ((long)kept.Count << 20 < managedBytes)
            {
                byte[] array = new byte[1 << 20];
                array.AsSpan().Fill(1);
                kept.Add(array);
            }
        }
        catch (OutOfMemoryException e)
        {
            failure = e.Message;
        }
        long managed = (long)kept.Count << 20;
        GCMemoryInfo gc = GC.GetGCMemoryInfo();
        ArenaStatistics stats = arena.GetStatistics();
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                gc_heap_hard_limit = gc.TotalAvailableMemoryBytes, burst_bytes = burst, sections_at_peak = sectionsAtPeak,
                managed_bytes = managed, sections_removed = stats.SectionsRemoved, sections_online = stats.OnlineSections,
                gc_committed_bytes = gc.TotalCommittedBytes, rss_bytes = ProcessMemory.ResidentBytes(), failure,
            }));
        }
        else
        {
            Console.WriteLine($"buddy gcheap: GC heap limit {gc.TotalAvailableMemoryBytes >> 20} MiB; arena burst {burst >> 20} MiB in {sectionsAtPeak} sections, freed");
            Console.WriteLine($"managed arrays kept: {managed >> 20} of {managedBytes >> 20} MiB; sections taken offline {stats.SectionsRemoved}, online {stats.OnlineSections}");
            if (failure is not null) Console.WriteLine($"the managed heap ran out: {failure}");
        }
        GC.KeepAlive(kept);
        return burst == burstBytes && managed == managedBytes ? 0 : 1;
    }
}
