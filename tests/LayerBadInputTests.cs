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
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => ProcessMadvise.Advise(pidfd, new Libc.IoVector[Libc.MaxIoVectors + 1], Libc.MadvDontNeed, out _));
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
        gone.Dispose();
        using var reporter = new PageReporter(gone, new RecordingDevice());
        Assert.Throws<ObjectDisposedException>(() => reporter.ReportNow());
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
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.BeginReport(0, order, ReportingMode.Isolate, new FreeBlock[2]), "Order");
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.SetFreeBlockListener(new RecordingListener(), order), "Order");
        Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.BlockBytes(order), "Order");
    }

    [Fact]
    public void BeginReport_with_an_undefined_mode()
        => Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.BeginReport(0, 9, (ReportingMode)3, new FreeBlock[2]), "Mode");

    [Fact]
    public void EndReport_with_an_empty_batch()
        => Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, [], true, false), "never empty");

    [Fact]
    public void EndReport_with_a_zone_out_of_range()
        => Arenas.AssertRejected<ArgumentOutOfRangeException>(arena, () => arena.EndReport(-1, [new FreeBlock(arena.BaseAddress, 4096)], true, false), "Zone");

    [Fact]
    public void EndReport_with_an_address_outside_the_arena()
    {
        var batch = new FreeBlock[4];
        int count = arena.BeginReport(0, 9, ReportingMode.Isolate, batch);
        Assert.True(count > 0);
        Arenas.AssertRejected<ArgumentException>(arena, () => arena.EndReport(0, [new FreeBlock(arena.BaseAddress - 4096, 4096)], true, false), "outside the arena");
        arena.EndReport(0, batch.AsSpan(0, count), reported: false, zeroed: false);
        arena.CheckInvariants();
    }

    [Fact]
    public void EndReport_with_no_batch_in_hand()
        => Arenas.AssertRejected<InvalidOperationException>(arena,
            () => arena.EndReport(0, [new FreeBlock(arena.BaseAddress, 4096)], true, false), "No report batch is in hand");

    [Fact]
    public void EndReport_on_a_disposed_arena_is_refused_without_reading_its_memory()
    {
        var gone = Arenas.Small();
        nint block = gone.Allocate(0);
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => gone.EndReport(0, [new FreeBlock(block, 4096)], true, false));
    }

    [Fact]
    public void A_second_free_block_listener()
    {
        arena.SetFreeBlockListener(new RecordingListener(), 9);
        Arenas.AssertRejected<InvalidOperationException>(arena, () => arena.SetFreeBlockListener(new RecordingListener(), 9), "already has a free block listener");
    }

    private sealed class RecordingListener : IFreeBlockListener
    {
        public void OnFreeBlock(int zone, int order) { }
    }
}
