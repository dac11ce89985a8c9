using Buddy.Cli.Workloads;
namespace Buddy.Tests;

public unsafe class ConcurrencyTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Threads_allocating_and_freeing_at_once_never_share_a_byte(bool sectioned)
    {
        using var arena = Arenas.OneOrSectioned(sectioned, 128 * Arenas.MiB, zones: 2);
        const int threadCount = 4;
        var deadline = DateTime.UtcNow.AddSeconds(3);
        var survivors = new List<(nint Address, long Bytes)>[threadCount];
        long operations = 0;
        Threads.Run(threadCount, id =>
        {
            var random = new Random(id);
            var live = new List<LiveBlock>();
            long sequence = 0, ops = 0;
            while (true)
            {
                bool draining = DateTime.UtcNow >= deadline;
                if (draining && live.Count <= 64) break;
                if (!draining && live.Count < 256 && random.Next(3) != 0)
                {
                    int order = random.Next(0, 7);
                    if (!arena.TryAllocate(order, out nint block, (Migratetype)random.Next(0, 4))) continue;
                    long tag = ((long)id << 48) | ++sequence;
                    var stamped = new LiveBlock(block, arena.BytesOfOrder(order), tag);
                    BlockPattern.Stamp(stamped);
                    live.Add(stamped);
                }
                else if (live.Count > 0)
                {
                    int index = random.Next(live.Count);
                    AssertIntact(live[index]);
                    arena.Free(live[index].Address);
                    live[index] = live[^1];
                    live.RemoveAt(live.Count - 1);
                }
                ops++;
            }
            live.ForEach(AssertIntact);
            survivors[id] = live.Select(l => (l.Address, l.Bytes)).ToList();
            Interlocked.Add(ref operations, ops);
        });

        Assert.True(operations > 10_000, $"only {operations} operations ran");
        var all = survivors.SelectMany(s => s).OrderBy(s => s.Address).ToList();
        for (int i = 1; i < all.Count; i++) Assert.True(all[i - 1].Address + all[i - 1].Bytes <= all[i].Address, "two live blocks overlap");
        arena.CheckInvariants();
        Assert.Equal(all.Sum(s => s.Bytes) / 4096, arena.GetStatistics().AllocatedPages);
        all.ForEach(s => arena.Free(s.Address));
        // One snapshot: an idle section may go offline between two reads of a sectioned arena.
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(stats.TotalPages, stats.FreePages);
        arena.CheckInvariants();
    }

    private static void AssertIntact(LiveBlock block) => Assert.True(BlockPattern.Verify(block, out string? damage), damage);
}
