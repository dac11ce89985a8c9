using System.CommandLine;
using System.Diagnostics;
using System.Runtime;
using System.Runtime.InteropServices;
using System.Text.Json;
using Buddy.Interop;

namespace Buddy.Cli;

/// <summary>
/// `buddy sections`: bursts an arena that starts small past its start size and back, cycle after
/// cycle, and shows hot-add times and the resident set and GC committed bytes around each hot-remove.
/// </summary>
internal static class SectionsCommand
{
    public static Command Create()
    {
        var backing = new Option<ArenaBacking>("--backing") { Description = "AlignedAlloc, Reserve or PinnedArray.", DefaultValueFactory = _ => ArenaBacking.PinnedArray };
        var section = new Option<int>("--section") { Description = "Section size, MiB (a multiple of 4); the arena starts with one.", DefaultValueFactory = _ => 32 };
        var maximum = new Option<int>("--max") { Description = "Maximum arena size, MiB (a multiple of --section).", DefaultValueFactory = _ => 1024 };
        var burst = new Option<int>("--burst") { Description = "Bytes written at the top of each burst, MiB.", DefaultValueFactory = _ => 96 };
        var cycles = new Option<int>("--cycles") { Description = "Bursts to run.", DefaultValueFactory = _ => 4 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object." };
        var command = new Command("sections", "Grows an arena section by section in a burst, frees it, takes the sections offline; repeats.")
        {
            backing, section, maximum, burst, cycles, json,
        };
        command.SetAction(parse =>
        {
            long sectionBytes = (long)parse.GetValue(section) << 20;
            long burstBytes = (long)parse.GetValue(burst) << 20;
            if (sectionBytes <= 0 || burstBytes <= 0 || parse.GetValue(cycles) <= 0)
            {
                Console.Error.WriteLine("--section, --burst and --cycles must be positive.");
                return 2;
            }
            BuddyArena arena;
            try
            {
                arena = new BuddyArena(new ArenaOptions
                {
                    Name = "sections", Size = sectionBytes, SectionSize = sectionBytes, MaximumSize = (long)parse.GetValue(maximum) << 20,
                    Backing = parse.GetValue(backing), SectionIdleTime = Timeout.InfiniteTimeSpan,
                });
            }
            catch (ArgumentException e)
            {
                Console.Error.WriteLine(e.Message);
                return 2;
            }
            using (arena)
            {
                var results = Enumerable.Range(1, parse.GetValue(cycles)).Select(_ => Cycle(arena, burstBytes)).ToList();
                Print(arena, results, parse.GetValue(json));
                return results.All(r => r.BurstBytes == burstBytes) ? 0 : 1;
            }
        });
        return command;
    }

    private sealed record CycleResult(long BurstBytes, int SectionsAdded, double MeanAddMicroseconds, double LongestAddMicroseconds,
        long PeakRss, long PeakGcCommitted, int SectionsRemoved, long IdleRss, long IdleGcCommitted, string? Failure);

    private static unsafe CycleResult Cycle(BuddyArena arena, long burstBytes)
    {
        var blocks = new List<nint>();
        var addTimes = new List<double>();
        string? failure = null;
        for (long done = 0; done < burstBytes; done += arena.LargestBlockBytes)
        {
            int sections = arena.OnlineSections;
            long start = Stopwatch.GetTimestamp();
            if (!arena.TryAllocate(arena.MaxOrder, out nint block))
            {
                try { arena.Allocate(arena.MaxOrder); }
                catch (ArenaExhaustedException e) { failure = e.Message; }
                break;
            }
            double micros = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            if (arena.OnlineSections > sections) addTimes.Add(micros);
            NativeMemory.Fill((void*)block, (nuint)arena.LargestBlockBytes, 0x42);
            blocks.Add(block);
        }
        long written = blocks.Count * arena.LargestBlockBytes;
        long peakRss = ProcessMemory.ResidentBytes();
        // The GC reports committed bytes as of its last collection: a full one brings the figure up to date.
        GC.Collect(2, GCCollectionMode.Forced, blocking: true);
        long peakGc = GC.GetGCMemoryInfo().TotalCommittedBytes;
        blocks.ForEach(arena.Free);
        int removed = arena.RemoveFreeSections();
        GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        return new CycleResult(written, addTimes.Count, addTimes.Count == 0 ? 0 : addTimes.Average(), addTimes.DefaultIfEmpty(0).Max(),
            peakRss, peakGc, removed, ProcessMemory.ResidentBytes(), GC.GetGCMemoryInfo().TotalCommittedBytes, failure);
    }

    private static void Print(BuddyArena arena, List<CycleResult> results, bool json)
    {
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new
            {
                backing = arena.Options.Backing.ToString(),
                section_bytes = arena.SectionSize,
                maximum_bytes = arena.MaximumSize,
                gc_heap_hard_limit = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
                cycles = results.Select(r => new
                {
                    burst_bytes = r.BurstBytes, sections_added = r.SectionsAdded,
                    mean_add_us = Math.Round(r.MeanAddMicroseconds, 1), longest_add_us = Math.Round(r.LongestAddMicroseconds, 1),
                    peak_rss_bytes = r.PeakRss, peak_gc_committed_bytes = r.PeakGcCommitted, sections_removed = r.SectionsRemoved,
                    idle_rss_bytes = r.IdleRss, idle_gc_committed_bytes = r.IdleGcCommitted, failure = r.Failure,
                }),
            }));
            return;
        }
        Console.WriteLine($"buddy sections: {arena.Options.Backing}, sections of {arena.SectionSize >> 20} MiB, maximum {arena.MaximumSize >> 20} MiB");
        Console.WriteLine("cycle  burst MiB  added  mean add   longest    peak RSS  peak GC   removed  idle RSS  idle GC");
        int cycle = 1;
        foreach (CycleResult r in results)
        {
            Console.WriteLine($"{cycle++,5}  {r.BurstBytes >> 20,9}  {r.SectionsAdded,5}  {r.MeanAddMicroseconds,7:F0} us {r.LongestAddMicroseconds,7:F0} us"
                + $"  {r.PeakRss >> 20,6} MiB {r.PeakGcCommitted >> 20,5} MiB  {r.SectionsRemoved,7}  {r.IdleRss >> 20,5} MiB {r.IdleGcCommitted >> 20,4} MiB");
            if (r.Failure is not null) Console.WriteLine($"       {r.Failure}");
        }
    }
}
