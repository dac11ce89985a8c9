using System.Diagnostics.Metrics;
using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;

namespace Buddy.Benchmarks;

/// <summary>
/// One allocation and its free, per order, against NativeMemory (glibc malloc), with the debug
/// check ValidateOnFree, and with a MeterListener collecting the Buddy.Allocator meter.
/// </summary>
[MemoryDiagnoser]
[BenchmarkCategory("pair")]
public unsafe class AllocFreePairBenchmarks
{
    private const int Pairs = 1000;
    private BuddyArena plain = null!;
    private BuddyArena validated = null!;
    private BuddyArena observed = null!;
    private MeterListener listener = null!;
    private Timer collector = null!;

    [Params(0, 4, 9)]
    public int Order { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        plain = new BuddyArena(new ArenaOptions { Name = "plain", Size = 256L << 20, Backing = ArenaBacking.Reserve });
        validated = new BuddyArena(new ArenaOptions { Name = "validated", Size = 256L << 20, Backing = ArenaBacking.Reserve, ValidateOnFree = true });
        observed = new BuddyArena(new ArenaOptions { Name = "observed", Size = 256L << 20, Backing = ArenaBacking.Reserve });
        listener = new MeterListener { InstrumentPublished = (i, l) => { if (i.Meter.Name == ArenaMetrics.MeterName) l.EnableMeasurementEvents(i); } };
        listener.SetMeasurementEventCallback<long>((_, _, _, _) => { });
        listener.Start();
        // Collect every 100 ms, ten times more often than dotnet-counters' default.
        collector = new Timer(_ => listener.RecordObservableInstruments(), null, 0, 100);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        collector.Dispose();
        listener.Dispose();
        plain.Dispose();
        validated.Dispose();
        observed.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Pairs)]
    public void NativeMemory_AllocFree()
    {
        nuint bytes = (nuint)4096 << Order;
        for (int i = 0; i < Pairs; i++) NativeMemory.Free(NativeMemory.Alloc(bytes));
    }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void Buddy_AllocFree() => Pair(plain);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void Buddy_AllocFree_ValidateOnFree() => Pair(validated);

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void Buddy_AllocFree_MetricsCollected() => Pair(observed);

    private void Pair(BuddyArena arena)
    {
        for (int i = 0; i < Pairs; i++) arena.Free(arena.Allocate(Order));
    }
}
