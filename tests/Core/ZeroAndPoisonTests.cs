using Buddy.Reporting.FaultInjection;
using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

[Collection(ResidentSetCollection.Name)]
public unsafe class ZeroAndPoisonTests
{
    private static readonly PageReporterOptions Manual = new() { Delay = TimeSpan.FromHours(1) };

    private static nint TouchedThenFreed(BuddyArena arena, int order = 10)
    {
        nint block = arena.Allocate(order);
        NativeMemory.Fill((void*)block, (nuint)arena.BytesOfOrder(order), 0xEE);
        arena.Free(block);
        return block;
    }

    [Fact]
    public void A_zeroed_allocation_of_a_dontneed_reported_block_skips_the_memset()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED is a Linux facility.");
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        nint freed = TouchedThenFreed(arena);
        using var device = new MadviseDontNeedDevice();
        using var reporter = new PageReporter(arena, device, Manual);
        reporter.ReportNow();

        nint block = arena.AllocateZeroed(10);
        Assert.Equal(freed, block);
        // Skipping the memset means not touching: the pages are still not resident.
        Assert.Equal(0, VirtualMemory.CountResidentPages(block, 4 << 20));
        Assert.Equal(4 * Arenas.MiB, arena.GetStatistics().ZeroSkippedBytes);
        Assert.True(new ReadOnlySpan<byte>((void*)block, 4 << 20).IndexOfAnyExcept((byte)0) < 0);
        arena.Free(block);
    }

    [Fact]
    public void Split_pieces_of_a_reported_block_stay_known_zero()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED is a Linux facility.");
        using var arena = Arenas.Small(size: 4 * Arenas.MiB, threadCaches: false);
        TouchedThenFreed(arena);
        using var reporter = new PageReporter(arena, new MadviseDontNeedDevice(), Manual);
        reporter.ReportNow();
        nint a = arena.AllocateZeroed(0);
        nint b = arena.AllocateZeroed(3);
        Assert.Equal(9 * 4096, arena.GetStatistics().ZeroSkippedBytes);
        Assert.Equal(0, *(long*)b);
        arena.Free(a);
        arena.Free(b);
        arena.CheckInvariants();
    }

    [Fact]
    public void Devices_without_a_zero_promise_do_not_skip_the_memset()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_FREE is a Linux facility.");
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        TouchedThenFreed(arena);
        using var reporter = new PageReporter(arena, new MadviseFreeDevice(), Manual);
        reporter.ReportNow();
        Assert.Equal(1, arena.GetStatistics().ReportedBlocks(10));
        nint block = arena.AllocateZeroed(10);
        Assert.Equal(0, arena.GetStatistics().ZeroSkippedBytes);
        Assert.True(new ReadOnlySpan<byte>((void*)block, 4 << 20).IndexOfAnyExcept((byte)0) < 0);
        arena.Free(block);
    }

    [Fact]
    public void Reserved_pristine_memory_is_known_zero()
    {
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 8 * Arenas.MiB, Backing = ArenaBacking.Reserve });
        nint block = arena.AllocateZeroed(5);
        Assert.Equal(32 * 4096, arena.GetStatistics().ZeroSkippedBytes);
        Assert.Equal(0, VirtualMemory.CountResidentPages(block, 32 * 4096));
        arena.Free(block);
    }

    /// <summary>Per-CPU lists off: these tests need the freed block to be the one handed out next, whichever processor runs them.</summary>
    private static BuddyArena PoisonedArena() => new(new ArenaOptions { ValidateOnFree = true, Size = 4 * Arenas.MiB, ZoneCount = 1, PoisonFreedMemory = true, ThreadCaches = false });

    [Fact]
    public void Poisoning_fills_freed_blocks_and_accepts_them_untouched_by_their_owner()
    {
        using var arena = PoisonedArena();
        nint block = arena.Allocate(2);
        arena.Free(block);
        Assert.Equal(0xA5A5A5A5A5A5A5A5UL, *(ulong*)(block + 8000));
        nint again = arena.Allocate(2);
        Assert.Equal(block, again);
        arena.Free(again);
    }

    [Fact]
    public void Poisoning_catches_a_write_after_free_and_keeps_the_allocator_whole()
    {
        using var arena = PoisonedArena();
        nint block = arena.Allocate(2);
        arena.Free(block);
        *(int*)(block + 100) = 42;
        var e = Assert.Throws<ArenaCorruptionException>(() => arena.Allocate(2));
        Assert.Contains("written after it was freed", e.Message);
        Assert.Contains("byte 100", e.Message);
        arena.CheckInvariants();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
        nint clean = arena.Allocate(2);
        arena.Free(clean);
    }

    [Fact]
    public void Poisoning_accepts_reported_blocks_as_zero_without_touching_them()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED is a Linux facility.");
        using var arena = PoisonedArena();
        nint block = arena.Allocate(10);
        arena.Free(block);
        using var reporter = new PageReporter(arena, new MadviseDontNeedDevice(), Manual);
        reporter.ReportNow();
        Assert.Equal(0, VirtualMemory.CountResidentPages(block, 4 << 20));
        nint again = arena.Allocate(10);
        Assert.Equal(0, VirtualMemory.CountResidentPages(again, 4 << 20));
        arena.Free(again);
    }

    [Fact]
    public void A_partly_failed_report_forgets_the_poison_instead_of_raising_a_false_alarm()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED is a Linux facility.");
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 8 * Arenas.MiB, ZoneCount = 1, PoisonFreedMemory = true });
        nint first = arena.Allocate(10);
        nint second = arena.Allocate(10);
        arena.Free(first);
        arena.Free(second);
        using var real = new MadviseDontNeedDevice();
        using var reporter = new PageReporter(arena, new FailingDevice(inner: real, partial: true), Manual);
        Assert.Equal(1, reporter.ReportNow().FailedReports);
        // One block was dropped to zero pages by the half that went through; neither may claim poison.
        nint a = arena.Allocate(10);
        nint b = arena.Allocate(10);
        Assert.Equal(0, arena.GetStatistics().ReportedPages);
        arena.Free(a);
        arena.Free(b);
        arena.CheckInvariants();
    }
}
