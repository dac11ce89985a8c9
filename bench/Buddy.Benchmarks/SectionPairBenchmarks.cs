using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Buddy.Benchmarks;

/// <summary>
/// One allocation and its free, per order, on one section and on eight: the address-to-section
/// lookup a free makes (one compare for one section, a binary search for several).
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("sections")]
public unsafe class SectionPairBenchmarks
{
    private const int Pairs = 1000;
    private const long Bytes = 256L << 20;
    private BuddyArena oneSection = null!;
    private BuddyArena eightReserved = null!;
    private BuddyArena eightAligned = null!;
    private BuddyArena eightPinned = null!;

    [Params(0, 4, 9)]
    public int Order { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        oneSection = new BuddyArena(new ArenaOptions { Name = "one-section", Size = Bytes, Backing = ArenaBacking.Reserve });
        eightReserved = Eight("eight-reserved", ArenaBacking.Reserve);
        eightAligned = Eight("eight-aligned", ArenaBacking.AlignedAlloc);
        eightPinned = Eight("eight-pinned", ArenaBacking.PinnedArray);
    }

    private static BuddyArena Eight(string name, ArenaBacking backing)
        => new(new ArenaOptions { Name = name, Size = Bytes, SectionSize = Bytes / 8, MaximumSize = Bytes * 2, Backing = backing });

    [GlobalCleanup]
    public void Cleanup()
    {
        oneSection.Dispose();
        eightReserved.Dispose();
        eightAligned.Dispose();
        eightPinned.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public void NativeMemory_AllocFree()
    {
        nuint bytes = (nuint)4096 << Order;
        for (int i = 0; i < Pairs; i++) NativeMemory.Free(NativeMemory.Alloc(bytes));
    }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void OneSection() => Pair(oneSection);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void EightSections_Reserve() => Pair(eightReserved);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void EightSections_AlignedAlloc() => Pair(eightAligned);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void EightSections_PinnedArray() => Pair(eightPinned);

    private void Pair(BuddyArena arena)
    {
        for (int i = 0; i < Pairs; i++) arena.Free(arena.Allocate(Order));
    }
}
