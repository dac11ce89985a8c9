using System.Buffers;
using BenchmarkDotNet.Attributes;

namespace Buddy.Benchmarks;

/// <summary>Rent and return through <see cref="BuddyMemoryPool"/> against <c>MemoryPool&lt;byte&gt;.Shared</c>: time and managed bytes per rent.</summary>
[MemoryDiagnoser]
public class MemoryPoolBenchmarks
{
    private BuddyArena native = null!;
    private BuddyArena pinned = null!;
    private BuddyMemoryPool nativePool = null!;
    private BuddyMemoryPool pinnedPool = null!;

    [Params(4096, 65536)]
    public int Bytes { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        native = new BuddyArena(new ArenaOptions { Size = 256L << 20, Backing = ArenaBacking.Reserve });
        pinned = new BuddyArena(new ArenaOptions { Size = 256L << 20, Backing = ArenaBacking.PinnedArray });
        nativePool = new BuddyMemoryPool(native);
        pinnedPool = new BuddyMemoryPool(pinned);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        nativePool.Dispose();
        pinnedPool.Dispose();
        native.Dispose();
        pinned.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Shared() => MemoryPool<byte>.Shared.Rent(Bytes).Dispose();

    [Benchmark]
    public void Buddy_Reserve() => nativePool.Rent(Bytes).Dispose();

    [Benchmark]
    public void Buddy_PinnedArray() => pinnedPool.Rent(Bytes).Dispose();
}
