using System.Runtime.CompilerServices;

namespace Buddy.Tests;

/// <summary>
/// A thread cache's native state: the layout libbuddy's C fast path (src/Native/fastpath/buddy_fast.c)
/// shares, its references, and the section bases the C path finds a freed block's section in.
/// </summary>
public unsafe class ThreadCacheStateTests
{
    [Fact]
    public void The_layout_matches_the_offsets_the_C_fast_path_asserts()
    {
        // The same numbers as buddy_fast.c's _Static_asserts: change one side, and this fails.
        ThreadCache.Hot hot = default;
        byte* start = (byte*)&hot;
        Assert.Equal(16, sizeof(PageDescriptor));
        Assert.Equal(48, (byte*)&hot.References - start);
        Assert.Equal(56, (byte*)hot.Heads - start);
        Assert.Equal(248, (byte*)hot.Counts - start);
        Assert.Equal(440, (byte*)&hot.View - start);
        Assert.Equal(76, (byte*)&hot.View.SlowMemory - (byte*)&hot.View);
        Assert.Equal(584, sizeof(ThreadCache.Hot));
        Assert.Equal(ThreadCache.MaxOrders * sizeof(int), (byte*)&hot + sizeof(ThreadCache.Hot) - (byte*)hot.View.High);
    }

    [Fact]
    public void A_binding_keeps_the_state_after_dispose_claimed_for_good_until_it_lets_go()
    {
        var arena = Arenas.Small();
        ThreadCache.Hot* state = arena.BindThreadCache();
        Assert.True(state is not null);
        Assert.Equal(2, state->References); // the cache object and the binding
        Assert.Equal(0, state->Claimed);
        Assert.Equal(arena.PageSize, 1 << state->View.PageShift);
        arena.Dispose();
        // A bound C thread that comes back finds the claim and takes the managed path, which answers disposed.
        Assert.Equal(1, Volatile.Read(ref state->Claimed));
        Assert.Throws<ObjectDisposedException>(() => arena.BindThreadCache());
        ThreadCache.ReleaseState(state);
        GC.KeepAlive(arena);
    }

    [Fact]
    public void An_arena_without_thread_caches_binds_nothing()
    {
        using var arena = Arenas.Small(threadCaches: false);
        Assert.True(arena.BindThreadCache() is null);
    }

    [Fact]
    public void Section_bases_follow_sections_online_and_offline()
    {
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = 4 * Arenas.MiB, MaximumSize = 16 * Arenas.MiB, ZoneCount = 1, SectionIdleTime = Timeout.InfiniteTimeSpan,
        });
        ThreadCache.Hot* state = arena.BindThreadCache();
        try
        {
            ref ThreadCache.FastPathView view = ref state->View;
            Assert.Equal(1, *view.SlotsInUse);
            Assert.Equal(arena.BaseAddress, view.SectionBases[0]);
            // A block of the largest order fills a section: the second one needs a section of its own.
            nint first = arena.Allocate(arena.MaxOrder);
            nint second = arena.Allocate(arena.MaxOrder);
            Assert.Equal(2, *view.SlotsInUse);
            Assert.Equal(second, view.SectionBases[1]);
            arena.Free(second);
            Assert.Equal(1, arena.RemoveFreeSections());
            Assert.Equal(0, view.SectionBases[1]);
            Assert.Equal(2, *view.SlotsInUse); // a bound for the search, never lowered
            arena.Free(first);
        }
        finally
        {
            ThreadCache.ReleaseState(state);
        }
    }
}
