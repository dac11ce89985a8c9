using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Microsoft.Extensions.Diagnostics.Metrics.Testing;

namespace Buddy.Tests;

/// <summary>
/// How much hinted memory the kernel has not taken, measured against the real kernel: MADV_FREE
/// offers the pages, MADV_PAGEOUT makes the kernel reclaim them as it would under pressure (a
/// lazily freed page that nobody rewrote is dropped, without swap), and mincore tells what is left.
/// </summary>
public unsafe partial class HintedResidentBytesTests
{
    private const int MadvPageOut = 21;
    private const long Block = Arenas.MiB;

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(nint address, nuint length, int advice);

    /// <summary>The kernel's reclaim, on demand: what a cgroup at its limit would do to these pages.</summary>
    private static void KernelTakes(nint block)
        => Assert.True(Madvise(block, (nuint)Block, MadvPageOut) == 0, $"MADV_PAGEOUT failed: errno {Marshal.GetLastPInvokeError()}");

    private static BuddyArena Arena(IMeterFactory? meters = null) => new(new ArenaOptions
    {
        Name = "residency", Size = 16 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false, Backing = ArenaBacking.Reserve,
    }, meters);

    /// <summary>Four written 1 MiB blocks; the first and third are freed (their buddies stay, so nothing merges) and offered with MADV_FREE.</summary>
    private static nint[] HintTwoOfFour(BuddyArena arena)
    {
        nint[] blocks = [.. Enumerable.Range(0, 4).Select(_ => arena.Allocate(8))];
        foreach (nint block in blocks) NativeMemory.Fill((void*)block, (nuint)Block, 0x5a);
        arena.Free(blocks[0]);
        arena.Free(blocks[2]);
        var device = new MadviseFreeDevice();
        ReportedBatch batch = arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[8],
            ranges => device.Report(ranges) ? ReportOutcome.Hinted : ReportOutcome.Failed, selection: FreeBlockSelection.Fresh);
        Assert.Equal(2, batch.Blocks);
        return blocks;
    }

    [Fact]
    public void Hinted_memory_is_resident_until_the_kernel_takes_it_and_nothing_else_is_counted()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_FREE and MADV_PAGEOUT are Linux advice.");
        using BuddyArena arena = Arena();
        // Fresh free memory and allocated memory are resident too, but neither is hinted.
        nint fresh = arena.Allocate(8);
        NativeMemory.Fill((void*)fresh, (nuint)Block, 1);
        arena.Free(fresh);
        Assert.Equal(0, arena.MeasureHintedResidentBytes());

        nint[] blocks = HintTwoOfFour(arena);
        Assert.Equal(2 * Block, arena.GetStatistics().HintedBytes);
        // Offered, not taken: every page is still there.
        Assert.Equal(2 * Block, arena.MeasureHintedResidentBytes());

        KernelTakes(blocks[0]);
        Assert.Equal(Block, arena.MeasureHintedResidentBytes());
        Assert.Equal(2 * Block, arena.GetStatistics().HintedBytes);

        // Reclaim drops only pages nobody rewrote: the allocated neighbour keeps its data.
        KernelTakes(blocks[1]);
        Assert.Equal(0x5a, ((byte*)blocks[1])[12345]);
        KernelTakes(blocks[2]);
        Assert.Equal(0, arena.MeasureHintedResidentBytes());
        arena.CheckInvariants();
    }

    [Fact]
    public void The_hinted_resident_instrument_publishes_the_measurement()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_FREE and MADV_PAGEOUT are Linux advice.");
        using var factory = new TestMeterFactory();
        using BuddyArena arena = Arena(factory);
        using var resident = new MetricCollector<long>(factory, ArenaMetrics.MeterName, "buddy.memory.hinted_resident");
        using var hinted = new MetricCollector<long>(factory, ArenaMetrics.MeterName, "buddy.memory.hinted");
        resident.RecordObservableInstruments();
        Assert.Equal(0, resident.LastMeasurement?.Value);

        nint[] blocks = HintTwoOfFour(arena);
        KernelTakes(blocks[2]);
        resident.RecordObservableInstruments();
        hinted.RecordObservableInstruments();
        CollectedMeasurement<long> measurement = Assert.Single(resident.GetMeasurementSnapshot().Skip(1));
        Assert.Equal(Block, measurement.Value);
        Assert.Equal("residency", measurement.Tags[ArenaMetrics.ArenaTag]);
        // What the kernel took is the difference.
        Assert.Equal(2 * Block, hinted.LastMeasurement?.Value);
    }

    [Fact]
    public void Measuring_a_disposed_arena_is_refused()
    {
        BuddyArena arena = Arena();
        arena.Dispose();
        Assert.Throws<ObjectDisposedException>(() => arena.MeasureHintedResidentBytes());
    }
}
