using Buddy.Reporting.FaultInjection;
using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

[Collection(ResidentSetCollection.Name)]
public unsafe class DeviceTests
{
    private const int Block = 2 << 20;

    private static (Mapping Mapping, FreeBlock[] Ranges) TouchedRanges(int count)
    {
        Mapping mapping = VirtualMemory.Map((nuint)(Block * count * 2), Block);
        var ranges = new FreeBlock[count];
        for (int i = 0; i < count; i++)
        {
            // Every other block, so no two ranges are adjacent.
            ranges[i] = new FreeBlock(mapping.Base + (nint)(2L * i * Block), Block);
            NativeMemory.Fill((void*)ranges[i].Address, Block, 0x3C);
        }
        return (mapping, ranges);
    }

    private static long Resident(FreeBlock[] ranges) => ranges.Sum(r => VirtualMemory.CountResidentPages(r.Address, (nuint)r.Length));

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void DontNeed_device_drops_every_range_and_they_read_zero(bool useProcessMadvise)
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED is a Linux facility.");
        using var device = new MadviseDontNeedDevice(useProcessMadvise);
        var (mapping, ranges) = TouchedRanges(40);
        Assert.Equal(useProcessMadvise, device.UsesProcessMadvise);
        Assert.True(device.Report(ranges));
        Assert.Equal(0, Resident(ranges));
        Assert.True(device.ZeroesMemory);
        Assert.Equal(0, *(byte*)(ranges[7].Address + 100));
        // One vectored call for the whole scatterlist, or one call per range.
        Assert.Equal(useProcessMadvise ? 1 : 40, device.Syscalls);
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void Free_device_is_accepted_and_promises_no_zeros()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_FREE is a Linux facility.");
        var device = new MadviseFreeDevice();
        var (mapping, ranges) = TouchedRanges(4);
        Assert.True(device.Report(ranges));
        Assert.False(device.ZeroesMemory);
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void Discard_device_drops_pages_on_windows()
    {
        Assert.SkipUnless(OperatingSystem.IsWindows(), "DiscardVirtualMemory exists only on Windows; this machine is not.");
        var device = new DiscardVirtualMemoryDevice();
        var (mapping, ranges) = TouchedRanges(4);
        Assert.True(device.Report(ranges));
        Assert.Equal(0, Resident(ranges));
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void Discard_device_refuses_to_exist_off_windows()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "On Windows the device is real.");
        Assert.Throws<PlatformNotSupportedException>(() => new DiscardVirtualMemoryDevice());
    }

    [Fact]
    public void Default_device_is_the_one_that_lowers_rss_here()
    {
        IReportingDevice device = ReportingDevices.CreateDefault();
        Assert.Equal(OperatingSystem.IsWindows(), device is DiscardVirtualMemoryDevice);
        (device as IDisposable)?.Dispose();
    }

    [Fact]
    public void Recording_device_keeps_a_copy_of_each_scatterlist()
    {
        var device = new RecordingDevice();
        FreeBlock[] first = [new(4096, 4096), new(65536, 8192)];
        Assert.True(device.Report(first));
        Assert.True(device.Report(first.AsSpan(1)));
        Assert.Equal(2, device.Calls.Count);
        Assert.Equal(first, device.Calls[0]);
        Assert.Equal([first[1]], device.Calls[1]);
    }

    [Fact]
    public void Failing_device_fails_every_nth_call_by_result_or_by_exception()
    {
        var quiet = new FailingDevice(failEvery: 3);
        bool[] results = Enumerable.Range(0, 6).Select(_ => quiet.Report([new FreeBlock(4096, 4096)])).ToArray();
        Assert.Equal([true, true, false, true, true, false], results);
        Assert.Equal(2, quiet.Failures);
        var loud = new FailingDevice(failEvery: 1, throwOnFailure: true);
        Assert.Throws<IOException>(() => loud.Report([new FreeBlock(4096, 4096)]));
    }

    [Fact]
    public void Slow_device_is_in_flight_while_it_waits()
    {
        var device = new SlowDevice(TimeSpan.FromMilliseconds(300));
        var worker = new Thread(() => device.Report([new FreeBlock(4096, 4096)]));
        worker.Start();
        Wait.Until(() => device.InFlight == 1, "the slow report to start");
        worker.Join();
        Assert.Equal(0, device.InFlight);
    }
}
