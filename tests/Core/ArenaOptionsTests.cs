namespace Buddy.Tests;

public class ArenaOptionsTests
{
    public static TheoryData<ArenaOptions, string> InvalidOptions => new()
    {
        { new ArenaOptions { ValidateOnFree = true, Size = 0 }, nameof(ArenaOptions.Size) },
        { new ArenaOptions { ValidateOnFree = true, Size = -4 * Arenas.MiB }, nameof(ArenaOptions.Size) },
        { new ArenaOptions { ValidateOnFree = true, Size = 5 * Arenas.MiB }, nameof(ArenaOptions.Size) },
        { new ArenaOptions { ValidateOnFree = true, PageSize = 1000 }, nameof(ArenaOptions.PageSize) },
        { new ArenaOptions { ValidateOnFree = true, PageSize = 2048 }, nameof(ArenaOptions.PageSize) },
        { new ArenaOptions { ValidateOnFree = true, MaxOrder = -1 }, nameof(ArenaOptions.MaxOrder) },
        { new ArenaOptions { ValidateOnFree = true, MaxOrder = 21 }, nameof(ArenaOptions.MaxOrder) },
        { new ArenaOptions { ValidateOnFree = true, PageblockOrder = 11 }, nameof(ArenaOptions.PageblockOrder) },
        { new ArenaOptions { ValidateOnFree = true, PageblockOrder = -1 }, nameof(ArenaOptions.PageblockOrder) },
        { new ArenaOptions { ValidateOnFree = true, Size = 8 * Arenas.MiB, ZoneCount = 3 }, nameof(ArenaOptions.ZoneCount) },
        { new ArenaOptions { ValidateOnFree = true, ZoneCount = -1 }, nameof(ArenaOptions.ZoneCount) },
        { new ArenaOptions { ValidateOnFree = true, Backing = (ArenaBacking)7 }, nameof(ArenaOptions.Backing) },
        { new ArenaOptions { ValidateOnFree = true, AtomicReservePercent = 51 }, nameof(ArenaOptions.AtomicReservePercent) },
        // More zones than a section may have: ZoneCount is wrong, not the MaximumSize nobody set.
        { new ArenaOptions { Size = 65537L * 4096, MaxOrder = 0, PageblockOrder = 0, ZoneCount = 65537, Backing = ArenaBacking.Reserve }, nameof(ArenaOptions.ZoneCount) },
        // One section too large for an array: Size is the section size when SectionSize is not set.
        { new ArenaOptions { Size = 4L << 30, Backing = ArenaBacking.PinnedArray }, nameof(ArenaOptions.Size) },
        { new ArenaOptions { Size = 4L << 30, SectionSize = 4L << 30, Backing = ArenaBacking.PinnedArray }, nameof(ArenaOptions.SectionSize) },
        // Huge pages under blocks smaller than one: the reporter would split them.
        { new ArenaOptions { Size = 64 * Arenas.MiB, MaxOrder = 8, PageblockOrder = 8, TransparentHugePages = true }, nameof(ArenaOptions.TransparentHugePages) },
        // Too many zones in all across the sections MaximumSize allows.
        { new ArenaOptions { Size = 64 * Arenas.MiB, MaxOrder = 0, PageblockOrder = 0, ZoneCount = 16384, SectionSize = 64 * Arenas.MiB, MaximumSize = 320 * Arenas.MiB, Backing = ArenaBacking.Reserve }, nameof(ArenaOptions.MaximumSize) },
    };

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Invalid_option_is_rejected_by_name(ArenaOptions options, string option)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new BuddyArena(options));
        Assert.Equal(option, e.ParamName);
        Assert.Contains(option, e.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    public void An_empty_name_is_rejected(string name)
    {
        var e = Assert.Throws<ArgumentException>(() => new BuddyArena(new ArenaOptions { Name = name, Size = 4 * Arenas.MiB }));
        Assert.Equal(nameof(ArenaOptions.Name), e.ParamName);
    }

    [Fact]
    public void Defaults_describe_a_one_gibibyte_arena_of_4k_pages_and_4m_blocks()
    {
        using var arena = new BuddyArena();
        Assert.Equal(1L << 30, arena.Size);
        Assert.Equal(4096, arena.PageSize);
        Assert.Equal(10, arena.MaxOrder);
        Assert.Equal(9, arena.PageblockOrder);
        Assert.Equal(4 * Arenas.MiB, arena.LargestBlockBytes);
        Assert.Equal(0, arena.BaseAddress % arena.LargestBlockBytes);
        Assert.InRange(arena.ZoneCount, 1, Environment.ProcessorCount);
    }

    [Fact]
    public void Automatic_zone_count_gives_each_zone_at_least_64_mebibytes()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 64 * Arenas.MiB });
        Assert.Equal(1, arena.ZoneCount);
    }

    [Fact]
    public void Zones_are_contiguous_aligned_and_cover_the_arena()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 44 * Arenas.MiB, ZoneCount = 3 });
        var zones = arena.GetStatistics().Zones;
        Assert.Equal(3, zones.Count);
        long next = 0;
        foreach (var zone in zones)
        {
            Assert.Equal(next, zone.StartPage);
            Assert.Equal(0, zone.StartPage % (1 << arena.MaxOrder));
            Assert.Equal(0, zone.Pages % (1 << arena.MaxOrder));
            next += zone.Pages;
        }
        Assert.Equal(arena.TotalPages, next);
    }
}
