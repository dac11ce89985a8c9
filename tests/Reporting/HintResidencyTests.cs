using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Tests;

/// <summary>
/// The hint tier against the real kernel: memory given MADV_FREE stays resident and is reused without
/// a fault, where reported memory faults every page back in; and arenas over transparent huge pages.
/// </summary>
[Collection(ResidentSetCollection.Name)]
public unsafe partial class HintResidencyTests
{
    private const int Blocks = 16;
    private const long BlockBytes = 4 * Arenas.MiB;

    [LibraryImport("libc", EntryPoint = "getrusage")]
    private static partial int GetRusage(int who, long* usage);

    /// <summary>Minor faults the calling thread has taken (getrusage RUSAGE_THREAD).</summary>
    private static long ThreadMinorFaults()
    {
        long* usage = stackalloc long[18];
        Assert.Equal(0, GetRusage(1, usage));
        return usage[8];
    }

    private static ReportOutcome Through(IReportingDevice device, ReportOutcome success, ReadOnlySpan<FreeBlock> blocks)
        => device.Report(blocks) ? success : ReportOutcome.Failed;

    /// <summary>Allocates every block, writes it, frees it, and hands the free blocks to <paramref name="giveBack"/>.</summary>
    private static long FaultsToRewrite(BuddyArena arena, Func<BuddyArena, long> giveBack)
    {
        var blocks = new nint[Blocks];
        for (int i = 0; i < Blocks; i++)
        {
            blocks[i] = arena.Allocate(arena.MaxOrder);
            new Span<byte>((void*)blocks[i], (int)BlockBytes).Fill(0x11);
        }
        foreach (nint block in blocks) arena.Free(block);
        Assert.Equal(Blocks * BlockBytes, giveBack(arena));
        long before = ThreadMinorFaults();
        for (int i = 0; i < Blocks; i++)
        {
            blocks[i] = arena.Allocate(arena.MaxOrder);
            new Span<byte>((void*)blocks[i], (int)BlockBytes).Fill(0x22);
        }
        long faults = ThreadMinorFaults() - before;
        foreach (nint block in blocks) arena.Free(block);
        return faults;
    }

    [Fact]
    public void Hinted_memory_stays_resident_and_is_rewritten_without_a_fault_where_reported_memory_faults_every_page()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_FREE and getrusage(RUSAGE_THREAD) are Linux's.");
        long pages = Blocks * BlockBytes / Environment.SystemPageSize;
        using var hinted = new BuddyArena(new ArenaOptions { Size = Blocks * BlockBytes, Backing = ArenaBacking.Reserve, ZoneCount = 1 });
        var lazily = new MadviseFreeDevice();
        long hintFaults = FaultsToRewrite(hinted, arena =>
        {
            long bytes = arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[Blocks], b => Through(lazily, ReportOutcome.Hinted, b),
                selection: FreeBlockSelection.Fresh).Bytes;
            // Offered, not taken: every page is still resident, so RSS alone cannot tell.
            Assert.Equal(pages, VirtualMemory.CountResidentPages(arena.BaseAddress, (nuint)(Blocks * BlockBytes)));
            Assert.Equal(bytes, arena.GetStatistics().HintedBytes);
            return bytes;
        });

        using var reported = new BuddyArena(new ArenaOptions { Size = Blocks * BlockBytes, Backing = ArenaBacking.Reserve, ZoneCount = 1 });
        var now = new MadviseDontNeedDevice();
        long reportFaults = FaultsToRewrite(reported, arena =>
            arena.ReportFreeBlocks(0, 0, ReportingMode.Isolate, new FreeBlock[Blocks], b => Through(now, ReportOutcome.ReportedZeroed, b)).Bytes);

        Assert.True(hintFaults < pages / 20, $"rewriting hinted memory took {hintFaults} faults for {pages} pages");
        Assert.True(reportFaults > pages * 9 / 10, $"rewriting reported memory took {reportFaults} faults for {pages} pages");
    }

    [Fact]
    public void A_huge_page_arena_is_backed_by_huge_pages_and_its_reporter_never_goes_below_a_pageblock()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "Transparent huge pages are Linux's.");
        string mode = File.Exists(ThpEnabled) ? File.ReadAllText(ThpEnabled) : "";
        Assert.SkipWhen(mode.Contains("[never]", StringComparison.Ordinal) || mode.Length == 0, $"THP is off here ({ThpEnabled}: {mode.Trim()}).");
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = Blocks * BlockBytes, Backing = ArenaBacking.Reserve, ZoneCount = 1, TransparentHugePages = true,
        });
        using var reporter = new PageReporter(arena, new NullReportingDevice(), new PageReporterOptions { FloorOrder = 2, HintDelay = TimeSpan.FromSeconds(1) });
        Assert.Equal(arena.PageblockOrder, reporter.FloorOrder);
        Assert.Equal(arena.PageblockOrder, reporter.ReportOrder);

        var blocks = new nint[Blocks];
        for (int i = 0; i < Blocks; i++)
        {
            blocks[i] = arena.Allocate(arena.MaxOrder);
            new Span<byte>((void*)blocks[i], (int)BlockBytes).Fill(0x33);
        }
        long huge = ProcessMemory.SmapsOf(arena.BaseAddress, arena.BaseAddress + (nint)(Blocks * BlockBytes)).AnonHugePages;
        foreach (nint block in blocks) arena.Free(block);
        // Compaction may not find every 2 MiB at once; most of 64 MiB should come as huge pages.
        Assert.True(huge >= Blocks * BlockBytes / 2, $"{huge >> 20} MiB of {Blocks * BlockBytes >> 20} MiB in huge pages");
    }

    private const string ThpEnabled = "/sys/kernel/mm/transparent_hugepage/enabled";
}
