using Buddy.Reporting.FaultInjection;
using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>Reporting measured on the real process: statm and mincore.</summary>
[Collection(ResidentSetCollection.Name)]
public unsafe class ReportingResidencyTests
{
    private const long Burst = 512 * Arenas.MiB;

    private static List<nint> TouchBurst(BuddyArena arena)
    {
        var blocks = new List<nint>();
        for (long done = 0; done < Burst; done += arena.LargestBlockBytes)
        {
            nint block = arena.Allocate(arena.MaxOrder);
            NativeMemory.Fill((void*)block, (nuint)arena.LargestBlockBytes, 0x42);
            blocks.Add(block);
        }
        return blocks;
    }

    private static long Resident(BuddyArena arena, IEnumerable<nint> blocks)
        => blocks.Sum(b => VirtualMemory.CountResidentPages(b, (nuint)arena.LargestBlockBytes));

    [Fact]
    public void ReportNow_hands_freed_memory_back_and_rss_falls()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "statm, mincore and MADV_DONTNEED are Linux facilities.");
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 1L << 30, Backing = ArenaBacking.Reserve });
        using var device = new MadviseDontNeedDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        List<nint> blocks = TouchBurst(arena);
        blocks.ForEach(arena.Free);
        long before = ProcessMemory.ResidentBytes();

        ReportingPassResult pass = reporter.ReportNow();
        long after = ProcessMemory.ResidentBytes();
        Assert.Equal(Burst, pass.ReportedBytes);
        Assert.True(before - after >= Burst * 9 / 10, $"RSS fell by {(before - after) >> 20} MiB of {Burst >> 20} MiB freed");
        Assert.Equal(0, Resident(arena, blocks));
        Assert.Equal(Burst / 4096, arena.GetStatistics().ReportedPages);
        arena.CheckInvariants();
    }

    [Fact]
    public void The_timer_alone_brings_rss_down_with_no_allocator_calls()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "statm and MADV_DONTNEED are Linux facilities.");
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 1L << 30, Backing = ArenaBacking.Reserve });
        using var reporter = new PageReporter(arena, new MadviseDontNeedDevice(), new PageReporterOptions { Delay = TimeSpan.FromMilliseconds(500) });
        reporter.Start();
        List<nint> blocks = TouchBurst(arena);
        long peak = ProcessMemory.ResidentBytes();
        blocks.ForEach(arena.Free);
        // From here on the test makes no allocator call: only the reporter's thread acts.
        Wait.Until(() => Resident(arena, blocks) == 0, "the reporter to hand the burst back after the delay");
        long fell = peak - ProcessMemory.ResidentBytes();
        Assert.True(fell >= Burst * 9 / 10, $"RSS fell by {fell >> 20} MiB of {Burst >> 20} MiB freed");
    }

    [Fact]
    public void A_failing_device_loses_nothing_and_memory_stays_resident_until_a_pass_succeeds()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "mincore and MADV_DONTNEED are Linux facilities.");
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 64 * Arenas.MiB, ZoneCount = 1 });
        using var real = new MadviseDontNeedDevice();
        var device = new FailingDevice(failEvery: 2, inner: real);
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1), Capacity = 2 });
        var blocks = Enumerable.Range(0, 16).Select(_ => arena.Allocate(10)).ToList();
        blocks.ForEach(b => NativeMemory.Fill((void*)b, 4 << 20, 1));
        blocks.ForEach(arena.Free);

        int passes = 0;
        while (arena.GetStatistics().ReportedBlocks(10) < 16)
        {
            reporter.ReportNow();
            arena.CheckInvariants();
            Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
            Assert.True(++passes < 40, "reporting never finished");
        }
        Assert.True(reporter.GetStatistics().FailedReports > 0);
        Assert.Equal(0, Resident(arena, blocks));
    }
}
