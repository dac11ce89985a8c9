using System.Diagnostics;
using System.Runtime.InteropServices;
using Buddy.Interop;
using Buddy.Reporting;
using Buddy.Reporting.Devices;

namespace Buddy.Harness;

/// <summary>The in-process measurements. Each compares variants inside one run, on one machine.</summary>
public static unsafe class Scenarios
{
    /// <summary>ns per order-0 allocation+free: Buddy against glibc.</summary>
    public static (double Buddy, double Glibc) Pairs(int count)
    {
        using var arena = new BuddyArena(new ArenaOptions { Size = 256L << 20, Backing = ArenaBacking.Reserve });
        double Time(Action pair)
        {
            for (int i = 0; i < count / 10; i++) pair();
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < count; i++) pair();
            return Stopwatch.GetElapsedTime(start).TotalNanoseconds / count;
        }
        double glibc = Time(() => NativeMemory.Free(NativeMemory.Alloc(4096)));
        double buddy = Time(() => arena.Free(arena.Allocate(0)));
        return (buddy, glibc);
    }

    /// <summary>µs per 1-4 MiB allocate, touch every page, free.</summary>
    public static double Churn(IPeer peer, int operations)
    {
        var random = new Random(7);
        ChurnLoop(peer, random, operations / 10);
        long start = Stopwatch.GetTimestamp();
        ChurnLoop(peer, random, operations);
        return Stopwatch.GetElapsedTime(start).TotalMicroseconds / operations;
    }

    private static void ChurnLoop(IPeer peer, Random random, int operations)
    {
        for (int i = 0; i < operations; i++)
        {
            nuint bytes = (nuint)random.Next(1, 5) << 20;
            nint block = peer.Allocate(bytes);
            for (nuint offset = 0; offset < bytes; offset += 4096) *(byte*)(block + (nint)offset) = 1;
            peer.Free(block, bytes);
        }
    }

    /// <summary>Seconds to hand <paramref name="blocks"/> touched 2 MiB blocks back: a Buddy pass, and process_madvise in scatterlists of 32.</summary>
    public static (double Buddy, double Raw) ReportThroughput(int blocks)
    {
        ReportOnce(4);
        return ReportOnce(blocks);
    }

    private static (double Buddy, double Raw) ReportOnce(int blocks)
    {
        const int Block = 2 << 20;
        using var arena = new BuddyArena(new ArenaOptions { Size = (long)blocks * Block * 2, Backing = ArenaBacking.Reserve });
        using var device = new MadviseDontNeedDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        var held = Enumerable.Range(0, blocks).Select(_ => arena.Allocate(9)).ToList();
        held.ForEach(b => NativeMemory.Fill((void*)b, Block, 1));
        held.ForEach(arena.Free);
        long start = Stopwatch.GetTimestamp();
        reporter.ReportNow();
        double buddy = Stopwatch.GetElapsedTime(start).TotalSeconds;

        Mapping mapping = VirtualMemory.Map((nuint)((long)blocks * Block * 2), Block);
        var ranges = Enumerable.Range(0, blocks)
            .Select(i => new Libc.IoVector { Base = mapping.Base + (nint)((long)i * 2 * Block), Length = Block }).ToArray();
        foreach (var range in ranges) NativeMemory.Fill((void*)range.Base, Block, 1);
        using PidfdHandle pidfd = ProcessMadvise.TryOpenSelf() ?? throw new InvalidOperationException("pidfd_open is not available.");
        start = Stopwatch.GetTimestamp();
        for (int i = 0; i < ranges.Length; i += 32)
            ProcessMadvise.Advise(pidfd, ranges.AsSpan(i, Math.Min(32, ranges.Length - i)), Libc.Advice.DontNeed, out _);
        double raw = Stopwatch.GetElapsedTime(start).TotalSeconds;
        VirtualMemory.Unmap(mapping);
        return (buddy, raw);
    }

    /// <summary>
    /// Mixed-order operations with the reporter started at <paramref name="delay"/> and without one:
    /// runs of <paramref name="duration"/> each, interleaved, medians of <paramref name="rounds"/>.
    /// Returns operations per second and the process's CPU time per operation (the reporter thread's
    /// work included), which a shared machine's steal time moves far less than wall-clock throughput.
    /// </summary>
    public static ReporterCost ReporterOverhead(TimeSpan delay, TimeSpan duration, int rounds)
    {
        var busy = new List<double>();
        (double OpsPerSecond, double CpuNsPerOp) Run(bool reporting)
        {
            using var arena = new BuddyArena(new ArenaOptions { Size = 1L << 30, Backing = ArenaBacking.Reserve });
            using var device = new MadviseDontNeedDevice();
            using PageReporter? reporter = reporting ? new PageReporter(arena, device, new PageReporterOptions { Delay = delay }) : null;
            reporter?.Start();
            const int Chunk = 100_000;
            using var process = System.Diagnostics.Process.GetCurrentProcess();
            TimeSpan cpuStart = process.TotalProcessorTime;
            long operations = 0, start = Stopwatch.GetTimestamp();
            while (Stopwatch.GetElapsedTime(start) < duration)
            {
                MixedOperations(arena, Chunk, latencies: null);
                operations += Chunk;
            }
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            if (reporter is not null) busy.Add(reporter.GetStatistics().PassTime.TotalSeconds / seconds * 100);
            process.Refresh();
            return (operations / seconds, (process.TotalProcessorTime - cpuStart).TotalNanoseconds / operations);
        }
        Run(false);
        var with = new List<(double OpsPerSecond, double CpuNsPerOp)>();
        var without = new List<(double OpsPerSecond, double CpuNsPerOp)>();
        for (int round = 0; round < rounds; round++)
        {
            with.Add(Run(true));
            without.Add(Run(false));
        }
        static double Median(IEnumerable<double> values) => values.Order().ElementAt(values.Count() / 2);
        return new ReporterCost(Median(with.Select(r => r.OpsPerSecond)), Median(without.Select(r => r.OpsPerSecond)),
            Median(with.Select(r => r.CpuNsPerOp)), Median(without.Select(r => r.CpuNsPerOp)), Math.Round(Median(busy), 3));
    }

    /// <summary>
    /// Throughput and CPU time per operation with the reporter and without, overheads in percent, and
    /// the share of the run the reporter spent in passes (its own clock: no other thread's noise).
    /// </summary>
    public readonly record struct ReporterCost(double OpsWith, double OpsWithout, double CpuNsWith, double CpuNsWithout, double PassTimePercent)
    {
        public double ThroughputPercent => Math.Round((OpsWithout / OpsWith - 1) * 100, 2);
        public double CpuPercent => Math.Round((CpuNsWith / CpuNsWithout - 1) * 100, 2);
    }

    /// <summary>Allocation latency percentiles (µs) with reporting in Isolate mode, in InPlace mode, and off.</summary>
    public static Dictionary<string, double[]> Latency(int operations)
    {
        var result = new Dictionary<string, double[]>();
        foreach (string variant in new[] { "off", "isolate", "inplace" })
        {
            using var arena = new BuddyArena(new ArenaOptions { Size = 512L << 20, Backing = ArenaBacking.Reserve });
            using var device = new MadviseDontNeedDevice();
            using PageReporter? reporter = variant == "off" ? null : new PageReporter(arena, device, new PageReporterOptions
            {
                Delay = TimeSpan.FromMilliseconds(1),
                Mode = variant == "isolate" ? ReportingMode.Isolate : ReportingMode.InPlace,
            });
            reporter?.Start();
            var latencies = new long[operations];
            MixedOperations(arena, operations, latencies);
            Array.Sort(latencies);
            double Percentile(double p) => Stopwatch.GetElapsedTime(0, latencies[Math.Min(latencies.Length - 1, (int)(p * latencies.Length))]).TotalMicroseconds;
            result[variant] = [Percentile(0.5), Percentile(0.99), Percentile(0.999), Stopwatch.GetElapsedTime(0, latencies[^1]).TotalMicroseconds];
        }
        return result;
    }

    /// <summary>Milliseconds of a reporting pass after the same churn, in a 1 GiB and a 64 GiB reserved arena (median of 5).</summary>
    public static (double Small, double Large) PassCost()
    {
        double Median(long size)
        {
            using var arena = new BuddyArena(new ArenaOptions { Size = size, Backing = ArenaBacking.Reserve });
            using var device = new MadviseDontNeedDevice();
            using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
            var times = new List<double>();
            for (int round = 0; round < 5; round++)
            {
                var blocks = Enumerable.Range(0, 32).Select(_ => arena.Allocate(9)).ToList();
                blocks.ForEach(b => *(long*)b = 1);
                blocks.ForEach(arena.Free);
                long start = Stopwatch.GetTimestamp();
                reporter.ReportNow();
                times.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
            }
            return times.Order().ElementAt(2);
        }
        return (Median(1L << 30), Median(64L << 30));
    }

    /// <summary>Random orders 0-10, at most 32 blocks live; records each allocation's latency when asked.</summary>
    private static void MixedOperations(BuddyArena arena, int operations, long[]? latencies)
    {
        var random = new Random(3);
        var live = new List<nint>();
        for (int i = 0; i < operations; i++)
        {
            if (live.Count >= 32) FreeRandom(arena, random, live);
            int order = random.Next(4) == 0 ? random.Next(7, 11) : random.Next(0, 7);
            long start = Stopwatch.GetTimestamp();
            nint block = arena.Allocate(order);
            if (latencies is not null) latencies[i] = Stopwatch.GetTimestamp() - start;
            live.Add(block);
            if (random.Next(2) == 0) FreeRandom(arena, random, live);
        }
        live.ForEach(arena.Free);
    }

    private static void FreeRandom(BuddyArena arena, Random random, List<nint> live)
    {
        int i = random.Next(live.Count);
        arena.Free(live[i]);
        live[i] = live[^1];
        live.RemoveAt(live.Count - 1);
    }
}
