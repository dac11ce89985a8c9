using Buddy.Reporting.FaultInjection;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>Bad input at every public entry point above and below the allocator's own (see BadInputTests).</summary>
public class LayerBadInputTests : IDisposable
{
    private readonly BuddyArena arena = Arenas.Small();

    public LayerBadInputTests() => arena.Allocate(2);

    public void Dispose() => arena.Dispose();

    [Fact]
    public void Map_of_zero_bytes()
        => Assert.Equal("length", Assert.Throws<ArgumentOutOfRangeException>(() => VirtualMemory.Map(0, 4096)).ParamName);

    [Theory]
    [InlineData(0)]
    [InlineData(3000)]
    public void Map_with_an_alignment_that_is_not_a_power_of_two(int alignment)
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => VirtualMemory.Map(4096, (nuint)alignment));
        Assert.Equal("alignment", e.ParamName);
        Assert.Contains("power of two", e.Message);
    }

    [Fact]
    public void Process_madvise_with_more_ranges_than_the_kernel_takes()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "process_madvise is a Linux facility.");
        using PidfdHandle pidfd = ProcessMadvise.TryOpenSelf()!;
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ProcessMadvise.Advise(pidfd, new Libc.IoVector[Libc.MaxIoVectors + 1], Libc.Advice.DontNeed, out _));
        Assert.Contains("1024", e.Message);
    }

    [Fact]
    public void Reporter_without_an_arena_or_a_device()
    {
        Assert.Equal("arena", Assert.Throws<ArgumentNullException>(() => new PageReporter(null!, new RecordingDevice())).ParamName);
        Assert.Equal("device", Assert.Throws<ArgumentNullException>(() => new PageReporter(arena, null!)).ParamName);
        // A refused reporter did not subscribe: a valid one still can.
        using var reporter = new PageReporter(arena, new RecordingDevice());
    }

    [Fact]
    public void Reporter_on_a_disposed_arena()
    {
        var gone = Arenas.Small();
        using var reporter = new PageReporter(gone, new RecordingDevice());
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => reporter.ReportNow());
        Assert.Throws<ObjectDisposedException>(() => new PageReporter(gone, new RecordingDevice()));
    }

    [Fact]
    public void Test_devices_with_impossible_settings()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new FailingDevice(failEvery: 0));
        Assert.Contains("inner device", Assert.Throws<ArgumentException>(() => new FailingDevice(partial: true)).Message);
    }

    [Fact]
    public void Linux_devices_off_linux()
    {
        Assert.SkipWhen(OperatingSystem.IsLinux(), "On Linux these devices are real; this checks their refusal elsewhere.");
        Assert.Throws<PlatformNotSupportedException>(() => new MadviseDontNeedDevice());
        Assert.Throws<PlatformNotSupportedException>(() => new MadviseFreeDevice());
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(11)]
    public void Reporting_hooks_with_an_order_out_of_range(int order)
    {
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.UnreportedFreeBytes(order), "Order");
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena,
            () => arena.ReportFreeBlocks(0, order, ReportingMode.Isolate, new FreeBlock[2], _ => ReportOutcome.Reported), "Order");
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.Subscribe(new RecordingListener(), order), "Order");
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.BytesOfOrder(order), "Order");
    }

    [Fact]
    public void Reporting_with_an_undefined_mode_or_no_report()
    {
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena,
            () => arena.ReportFreeBlocks(0, 9, (ReportingMode)3, new FreeBlock[2], _ => ReportOutcome.Reported), "Mode");
        Arenas.AssertRejected<ArgumentNullException>(arena, () => arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[2], null!), "report");
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena,
            () => arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[2], _ => ReportOutcome.Hinted, selection: (FreeBlockSelection)9), "Selection");
    }

    [Fact]
    public void Reporting_a_zone_out_of_range()
        => Arenas.AssertRejected<ArgumentOutOfRangeException>(arena,
            () => arena.ReportFreeBlocks(1, 9, ReportingMode.Isolate, new FreeBlock[2], _ => ReportOutcome.Reported), "Zone");

    [Fact]
    public void A_report_that_throws_puts_every_block_back_unreported()
    {
        ArenaStatistics before = arena.GetStatistics();
        int seen = 0;
        var e = Assert.Throws<IOException>(() => arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[4], blocks =>
        {
            seen = blocks.Length;
            Assert.Equal(seen << 9, arena.GetStatistics().ReportingPages);
            throw new IOException("device gone");
        }));
        Assert.True(seen > 0);
        arena.CheckInvariants();
        Assert.Equal(before, arena.GetStatistics(), SameStatistics.Instance);
    }

    [Fact]
    public void An_undefined_outcome_counts_as_a_failed_report()
    {
        ArenaStatistics before = arena.GetStatistics();
        Assert.True(arena.ReportFreeBlocks(0, 9, ReportingMode.Isolate, new FreeBlock[4], _ => (ReportOutcome)7).Blocks > 0);
        arena.CheckInvariants();
        Assert.Equal(before, arena.GetStatistics(), SameStatistics.Instance);
    }

    [Fact]
    public void A_listener_on_a_disposed_arena_is_refused()
    {
        var gone = Arenas.Small();
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => gone.Subscribe(new RecordingListener(), 9));
    }

    [Fact]
    public void A_second_free_block_listener()
    {
        var first = new RecordingListener();
        arena.Subscribe(first, 9);
        Arenas.AssertRejected<InvalidOperationException>(arena, () => arena.Subscribe(new RecordingListener(), 9), "already has a free block listener");
        arena.Unsubscribe(new RecordingListener());
        Arenas.AssertRejected<InvalidOperationException>(arena, () => arena.Subscribe(new RecordingListener(), 9), "already has a free block listener");
        arena.Unsubscribe(first);
        arena.Subscribe(new RecordingListener(), 9);
    }

    private sealed class RecordingListener : IFreeBlockListener
    {
        public void OnFreeBlock(int zone, int order) { }
    }
}
