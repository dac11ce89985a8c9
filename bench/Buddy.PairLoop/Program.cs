using System.Diagnostics;
using Buddy;

// One allocation and its free of one order, in a loop: the smallest program that times the pair,
// so scripts/ab-pairs.sh can run two builds of the allocator interleaved, one process at a time.
if (args.Length != 2 || !int.TryParse(args[0], out int order) || !long.TryParse(args[1], out long pairs) || pairs <= 0)
{
    Console.Error.WriteLine("usage: Buddy.PairLoop ORDER PAIRS");
    return 2;
}
using var arena = new BuddyArena(new ArenaOptions { Size = 256L << 20, Backing = ArenaBacking.Reserve });
// Past tiered compilation before the timed loop.
for (int i = 0; i < 2_000_000; i++) arena.Free(arena.Allocate(order));
long start = Stopwatch.GetTimestamp();
for (long i = 0; i < pairs; i++) arena.Free(arena.Allocate(order));
Console.WriteLine($"{Stopwatch.GetElapsedTime(start).TotalNanoseconds / pairs:F1}");
return 0;
