namespace Buddy.Cli.Workloads;

/// <summary>What a mixed-lifetime run leaves behind once its short-lived blocks are freed.</summary>
public sealed record FragmentationResult(
    bool GroupByMobility,
    long TotalPages,
    long LongLivedPages,
    long FreePages,
    long FreePagesInPageblocks,
    int PageblockOrder)
{
    /// <summary>Share of free memory that sits in blocks of pageblock order or larger.</summary>
    public double PageblockShare => FreePages == 0 ? 0 : (double)FreePagesInPageblocks / FreePages;
}

/// <summary>
/// Short-lived Movable blocks churn while one allocation in sixteen is a long-lived Unmovable
/// page that stays. Without grouping, the long-lived pages end up scattered over every pageblock.
/// </summary>
public static class MixedLifetimeWorkload
{
    public static FragmentationResult Run(bool groupByMobility, int seed = 1, long arenaBytes = 256L << 20, int rounds = 40)
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = arenaBytes, ZoneCount = 1, GroupByMobility = groupByMobility });
        var random = new Random(seed);
        var longLived = new List<nint>();
        var shortLived = new List<nint>();
        long shortLivedPerRound = arena.TotalPages / 16;
        for (int round = 0; round < rounds; round++)
        {
            for (int i = 0; i < shortLivedPerRound; i++)
            {
                bool isLongLived = random.Next(16) == 0;
                Migratetype type = isLongLived ? Migratetype.Unmovable : Migratetype.Movable;
                if (!arena.TryAllocate(isLongLived ? 0 : random.Next(0, 4), out nint block, type)) break;
                (isLongLived ? longLived : shortLived).Add(block);
            }
            random.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(shortLived));
            shortLived.ForEach(arena.Free);
            shortLived.Clear();
        }
        // As a reporting pass would: cached small blocks go home and merge before free memory is counted.
        arena.DrainThreadCaches();
        ArenaStatistics stats = arena.GetStatistics();
        var result = new FragmentationResult(groupByMobility, stats.TotalPages, stats.AllocatedPages,
            stats.FreePages, stats.FreePagesAtOrAbove(arena.PageblockOrder), arena.PageblockOrder);
        longLived.ForEach(arena.Free);
        arena.CheckInvariants();
        return result;
    }
}
