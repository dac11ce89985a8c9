using BenchmarkDotNet.Attributes;
using Buddy.Harness;

namespace Buddy.Benchmarks;

/// <summary>Peers two threads may call at once, at 4 KiB and 64 KiB.</summary>
public abstract class ThreadedPeerBenchmarks
{
    protected IPeer Peer = null!;

    [ParamsSource(nameof(Peers))]
    public string Allocator { get; set; } = "";

    [Params(4096, 65536)]
    public int Bytes { get; set; }

    public static IEnumerable<string> Peers() => PeerBenchmarks.ThreadSafePeers();

    [GlobalSetup]
    public void Setup() => Peer = Harness.Peers.TryCreate(Allocator, TimeSpan.FromSeconds(2), out _)!;

    [GlobalCleanup]
    public void Cleanup() => Peer.Dispose();
}

/// <summary>
/// Pairs from one thread and from two at once, the same total either way: with linear scaling the
/// time per pair halves at two threads (two cores here).
/// </summary>
[MemoryDiagnoser]
public class PeerThreadScalingBenchmarks : ThreadedPeerBenchmarks
{
    private const int Pairs = 200_000;

    [Params(1, 2)]
    public int Threads { get; set; }

    [Benchmark(OperationsPerInvoke = Pairs)]
    public void AllocFreePairs()
    {
        var workers = new Thread[Threads];
        nuint bytes = (nuint)Bytes;
        for (int t = 0; t < Threads; t++)
        {
            workers[t] = new Thread(() =>
            {
                for (int i = 0; i < Pairs / Threads; i++) Peer.Free(Peer.Allocate(bytes), bytes);
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
public class PeerProducerConsumerBenchmarks : ThreadedPeerBenchmarks
{
    private const int Blocks = 200_000;
    private const int RingSize = 256;
    private readonly nint[] ring = new nint[RingSize];
    private long produced;
    private long consumed;

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
                Peer.Free(ring[next % RingSize], bytes);
                Volatile.Write(ref consumed, next + 1);
            }
        });
        consumer.Start();
        var wait = new SpinWait();
        for (long next = 0; next < Blocks; next++)
        {
            while (next - Volatile.Read(ref consumed) >= RingSize) wait.SpinOnce(sleep1Threshold: -1);
            ring[next % RingSize] = Peer.Allocate(bytes);
            Volatile.Write(ref produced, next + 1);
        }
        consumer.Join();
    }
}
