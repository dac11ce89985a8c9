using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Buddy.Harness;

namespace Buddy.Benchmarks;

/// <summary>
/// Buddy and the allocators users would pick instead, in the same benchmark classes. A peer that
/// cannot be loaded here (jemalloc cannot be dlopen'ed; the harness measures it through LD_PRELOAD)
/// is skipped with its reason printed.
/// </summary>
public abstract class PeerBenchmarks
{
    protected IPeer Peer = null!;

    [ParamsSource(nameof(AvailablePeers))]
    public string Allocator { get; set; } = "";

    /// <summary>The peers that load here; each missing one is printed with its reason.</summary>
    public static IEnumerable<string> AvailablePeers() => Available(Peers.Names);

    /// <summary>The peers two threads may call at once (the array pool and mmap peers keep a plain dictionary).</summary>
    public static IEnumerable<string> ThreadSafePeers() => Available(Peers.Names.Except(["arraypool", "mmap"]));

    private static IEnumerable<string> Available(IEnumerable<string> names)
    {
        foreach (string name in names)
        {
            using IPeer? peer = Peers.TryCreate(name, TimeSpan.FromSeconds(2), out string? missing);
            if (peer is null) Console.WriteLine($"// skipped {name}: {missing}");
            else yield return name;
        }
    }

    [GlobalSetup]
    public void CreatePeer() => Peer = Peers.TryCreate(Allocator, TimeSpan.FromSeconds(2), out _)!;

    [GlobalCleanup]
    public void DisposePeer() => Peer.Dispose();
}

/// <summary>Allocation and free pairs per size, every peer.</summary>
[MemoryDiagnoser]
public class PeerPairBenchmarks : PeerBenchmarks
{
    private const int Pairs = 1000;

    [Params(4096, 65536, 256 << 10, 2 << 20)]
    public int Bytes { get; set; }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void AllocFree()
    {
        for (int i = 0; i < Pairs; i++) Peer.Free(Peer.Allocate((nuint)Bytes), (nuint)Bytes);
    }
}

/// <summary>Batch churn: 64 blocks of 64 KiB - 4 MiB allocated, every page written, then all freed.</summary>
[MemoryDiagnoser]
public unsafe class PeerChurnBenchmarks : PeerBenchmarks
{
    private const int Batch = 64;
    private readonly nint[] blocks = new nint[Batch];
    private readonly nuint[] sizes = new nuint[Batch];
    private readonly Random random = new(5);

    [Benchmark(OperationsPerInvoke = Batch)]
    public void ChurnWithTouch()
    {
        for (int i = 0; i < Batch; i++)
        {
            sizes[i] = (nuint)(64 << 10) << random.Next(0, 7);
            blocks[i] = Peer.Allocate(sizes[i]);
            for (nuint offset = 0; offset < sizes[i]; offset += 4096) *(byte*)(blocks[i] + (nint)offset) = 1;
        }
        for (int i = 0; i < Batch; i++) Peer.Free(blocks[i], sizes[i]);
    }
}

/// <summary>Zeroed 2 MiB allocations: memory known to be zero (reported, or fresh reserved pages) against memory that must be cleared.</summary>
[MemoryDiagnoser]
public unsafe class ZeroedBenchmarks
{
    private BuddyArena known = null!;
    private BuddyArena dirty = null!;
    private readonly FreeBlock[] batch = new FreeBlock[1];

    [GlobalSetup]
    public void Setup()
    {
        known = new BuddyArena(new ArenaOptions { Size = 1L << 30, ZoneCount = 1, Backing = ArenaBacking.Reserve, ThreadCaches = false });
        dirty = new BuddyArena(new ArenaOptions { Size = 1L << 30, ZoneCount = 1, Backing = ArenaBacking.Reserve, ThreadCaches = false });
        nint block = dirty.Allocate(9);
        NativeMemory.Fill((void*)block, 2 << 20, 1);
        dirty.Free(block);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        known.Dispose();
        dirty.Dispose();
    }

    /// <summary>Each block comes back reported as zero: a fresh reserved block, freed, marked reported and zero by hand.</summary>
    [Benchmark]
    public void KnownZero()
    {
        nint block = known.AllocateZeroed(9);
        known.Free(block);
        known.ReportFreeBlocks(0, 9, ReportingMode.Isolate, batch, static _ => ReportOutcome.ReportedZeroed);
    }

    /// <summary>The same block each time, dirty: the allocation clears 2 MiB.</summary>
    [Benchmark(Baseline = true)]
    public void MustClear()
    {
        nint block = dirty.AllocateZeroed(9);
        *(byte*)block = 1;
        dirty.Free(block);
    }
}
