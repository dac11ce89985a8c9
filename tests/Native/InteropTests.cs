using System.Runtime.InteropServices;
using Buddy.Interop;

namespace Buddy.Tests;

[Collection(ResidentSetCollection.Name)]
public unsafe class InteropTests
{
    private const int Length = 1 << 20;

    private static Mapping TouchedMapping()
    {
        Mapping mapping = VirtualMemory.Map(Length, 1 << 21);
        NativeMemory.Fill((void*)mapping.Base, Length, 0x7F);
        Assert.Equal(Length / VirtualMemory.PageSize, VirtualMemory.CountResidentPages(mapping.Base, Length));
        return mapping;
    }

    [Fact]
    public void Map_returns_zeroed_memory_at_the_requested_alignment()
    {
        Mapping mapping = VirtualMemory.Map(Length, 1 << 21);
        Assert.Equal(0, mapping.Base % (1 << 21));
        Assert.Equal(0, VirtualMemory.CountResidentPages(mapping.Base, Length));
        Assert.True(new Span<byte>((void*)mapping.Base, Length).IndexOfAnyExcept((byte)0) < 0);
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void DontNeed_drops_pages_and_they_read_back_as_zero()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_DONTNEED is a Linux facility.");
        Mapping mapping = TouchedMapping();
        Assert.True(VirtualMemory.DontNeed(mapping.Base, Length));
        Assert.Equal(0, VirtualMemory.CountResidentPages(mapping.Base, Length));
        Assert.Equal(0, *(byte*)(mapping.Base + 4096));
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void FreeLazily_is_accepted_by_the_kernel()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "MADV_FREE is a Linux facility.");
        Mapping mapping = TouchedMapping();
        Assert.True(VirtualMemory.FreeLazily(mapping.Base, Length));
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void Process_madvise_drops_a_vector_of_ranges_in_one_call()
    {
        Assert.SkipUnless(OperatingSystem.IsLinux(), "process_madvise is a Linux facility.");
        using PidfdHandle? pidfd = ProcessMadvise.TryOpenSelf();
        Assert.NotNull(pidfd);
        Mapping mapping = TouchedMapping();
        Libc.IoVector[] ranges =
        [
            new() { Base = mapping.Base, Length = 64 * 1024 },
            new() { Base = mapping.Base + 512 * 1024, Length = 512 * 1024 },
        ];
        long advised = ProcessMadvise.Advise(pidfd, ranges, Libc.Advice.DontNeed, out int errno);
        Assert.True(advised == 576 * 1024, $"process_madvise returned {advised}, errno {errno}");
        Assert.Equal((Length - 576 * 1024) / VirtualMemory.PageSize, VirtualMemory.CountResidentPages(mapping.Base, Length));
        VirtualMemory.Unmap(mapping);
    }

    [Fact]
    public void Discard_is_refused_off_windows()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "On Windows DiscardVirtualMemory is real; this checks the refusal elsewhere.");
        Assert.Throws<PlatformNotSupportedException>(() => VirtualMemory.Discard(4096, 4096));
    }

    [Fact]
    public void Residency_of_a_misaligned_address_is_refused()
        => Assert.Throws<ArgumentException>(() => VirtualMemory.CountResidentPages(4097, 4096));

    [Fact]
    public void Page_descriptors_take_at_most_16_bytes()
        => Assert.Equal(16, sizeof(PageDescriptor));
}
