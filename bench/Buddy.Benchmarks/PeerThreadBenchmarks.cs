using BenchmarkDotNet.Attributes;
using Buddy.Harness;

namespace Buddy.Benchmarks;

/// <summary>
/// Pairs from one thread and from two at once, the same total either way: with linear scaling the
/// time per pair halves at two threads (two cores here).
/// </summary>
[MemoryDiagnoser]
public class PeerThreadScalingBenchmarks
{
    private const int Pairs = 200_000;
    private IPeer peer = null!;

    [ParamsSource(nameof(Peers))]
    public string Allocator { get; set; } = "";

    [Params(4096, 65536)]
    public int Bytes { get; set; }

    [Params(1, 2)]
    public int Threads { get; set; }

    public static IEnumerable<string> Peers() => PeerBenchmarks.ThreadSafePeers();

    [GlobalSetup]
    public void Setup() => peer = Harness.Peers.TryCreate(Allocator, TimeSpan.FromSeconds(2), out _)!;

    [GlobalCleanup]
    public void Cleanup() => peer.Dispose();

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void AllocFreePairs()
    {
        var workers = new Thread[Threads];
        nuint bytes = (nuint)Bytes;
        for (int t = 0; t < Threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                for (int i = 0; i < Pairs / Threads; i++) peer.Free(peer.Allocate(bytes), bytes);
            });
            workers[t].Start();
        }
        foreach (Thread worker in workers) worker.Join();
    }
}

/// <summary>
/// Producer and consumer: one thread allocates, another frees, through a single-producer,
/// single-consumer ring; time per block. Every free is of a block another thread allocated.
/// </summary>
[MemoryDiagnoser]
public class PeerProducerConsumerBenchmarks
{
    private const int Blocks = 200_000;
    private const int RingSize = 256;
    private IPeer peer = null!;
    private readonly nint[] ring = new nint[RingSize];
    private long produced;
    private long consumed;

    [ParamsSource(nameof(Peers))]
    public string Allocator { get; set; } = "";

    [Params(4096, 65536)]
    public int Bytes { get; set; }

    public static IEnumerable<string> Peers() => PeerBenchmarks.ThreadSafePeers();

    [GlobalSetup]
    public void Setup() => peer = Harness.Peers.TryCreate(Allocator, TimeSpan.FromSeconds(2), out _)!;

    [GlobalCleanup]
    public void Cleanup() => peer.Dispose();

    [Benchmark(OperationsPerInvoke = Blocks)]
    public void AllocateHereFreeThere()
    {
        produced = consumed = 0;
        nuint bytes = (nuint)Bytes;
        var consumer = new Thread(() =>
        {
            var spinner = new SpinWait();
            for (long next = 0; next < Blocks; next++)
            {
                while (Volatile.Read(ref produced) == next) spinner.SpinOnce(sleep1Threshold: -1);
                peer.Free(ring[next % RingSize], bytes);
                Volatile.Write(ref consumed, next + 1);
            }
        });
        consumer.Start();
        var wait = new SpinWait();
        for (long next = 0; next < Blocks; next++)
        {
            while (next - Volatile.Read(ref consumed) >= RingSize) wait.SpinOnce(sleep1Threshold: -1);
            ring[next % RingSize] = peer.Allocate(bytes);
            Volatile.Write(ref produced, next + 1);
        }
        consumer.Join();
    }
}
