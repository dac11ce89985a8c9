using System.Collections.Concurrent;
using System.Diagnostics;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.FaultInjection;

namespace Buddy.Cli.Workloads;

/// <summary>
/// Threads allocate and free random blocks while a reporter runs with aggressive settings and
/// injected faults. Each block carries a pattern from (thread, sequence) checked before it is
/// freed; every so often all threads stop at a barrier and the invariant checker runs. Each worker
/// thread runs a random stretch, then hands its blocks to a successor and exits, so the caches of
/// exited threads go home under the same chaos.
/// </summary>
public sealed class StressEngine
{
    private readonly StressOptions options;
    private readonly ConcurrentQueue<LiveBlock> handoff = new();
    private readonly ConcurrentQueue<string> problems = new();
    private long corruptions, operations, exhaustions, crossThreadFrees, invariantChecks, threadsReplaced;
    private CountdownEvent? workersDone;
    private volatile bool pauseRequested;
    private volatile bool finished;

    public StressEngine(StressOptions options) => this.options = options;

    public StressResult Run()
    {
        bool sectioned = options.SectionBytes > 0;
        using var arena = new BuddyArena(new ArenaOptions
        {
            Size = sectioned ? options.SectionBytes : options.ArenaBytes,
            SectionSize = options.SectionBytes,
            MaximumSize = options.ArenaBytes,
            // Idle sections go offline at the first look, racing the workers and the explicit removals below.
            SectionIdleTime = TimeSpan.Zero,
            Backing = ArenaBacking.Reserve,
            PoisonFreedMemory = options.Poison,
            ValidateOnFree = true,
            ReportWaitTimeout = TimeSpan.FromSeconds(60),
        });
        var reporting = new ReporterChaos(arena, options);
        using var barrier = new Barrier(options.Threads + 1);
        using var done = new CountdownEvent(options.Threads);
        workersDone = done;
        long start = Stopwatch.GetTimestamp();
        for (int id = 0; id < options.Threads; id++) StartWorker(arena, barrier, new Worker(id, new Random(HashCode.Combine(options.Seed, id))));
        Coordinate(arena, barrier, reporting, start);
        done.Wait();
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

        while (handoff.TryDequeue(out LiveBlock block)) Release(arena, block);
        (long reports, long failed) = reporting.Finish();
        long lost = CheckFinalState(arena);
        ArenaStatistics stats = arena.GetStatistics();
        return new StressResult(options.Seed, operations, operations / seconds, corruptions, lost, invariantChecks,
            reports, failed, stats.SpinWaits, stats.LongestSpin, exhaustions, crossThreadFrees, stats.SectionsAdded, stats.SectionsRemoved,
            threadsReplaced, problems.ToArray());
    }

    /// <summary>Runs the clock: barrier checks at the check interval, reporter restarts at the restart interval.</summary>
    private void Coordinate(BuddyArena arena, Barrier barrier, ReporterChaos reporting, long start)
    {
        long nextCheck = 0, nextRestart = 0;
        while (Stopwatch.GetElapsedTime(start) < options.Duration)
        {
            Thread.Sleep(5);
            if (options.SectionBytes > 0) arena.RemoveFreeSections();
            TimeSpan elapsed = Stopwatch.GetElapsedTime(start);
            if (elapsed.Ticks >= nextRestart)
            {
                reporting.Restart();
                nextRestart = (elapsed + options.RestartInterval).Ticks;
            }
            if (elapsed.Ticks >= nextCheck)
            {
                PauseAndCheck(arena, barrier);
                nextCheck = (elapsed + options.CheckInterval).Ticks;
            }
        }
        finished = true;
        PauseAndCheck(arena, barrier);
    }

    private void PauseAndCheck(BuddyArena arena, Barrier barrier)
    {
        pauseRequested = true;
        barrier.SignalAndWait();
        try
        {
            arena.CheckInvariants();
            Interlocked.Increment(ref invariantChecks);
        }
        catch (ArenaCorruptionException e)
        {
            Report($"invariant check {invariantChecks + 1}: {e.Message}");
        }
        pauseRequested = false;
        barrier.SignalAndWait();
    }

    /// <summary>One worker slot's state, handed from each thread to its successor.</summary>
    private sealed class Worker(int id, Random random)
    {
        public readonly int Id = id;
        public readonly Random Random = random;
        public readonly List<LiveBlock> Live = [];
        public long Sequence;
    }

    private void StartWorker(BuddyArena arena, Barrier barrier, Worker worker)
        => new Thread(() => Work(arena, barrier, worker)) { Name = $"stress {worker.Id}" }.Start();

    /// <summary>
    /// Runs until the end, or for a random stretch after which a successor takes the blocks and
    /// this thread exits; exactly one thread per slot is ever at the barrier.
    /// </summary>
    private void Work(BuddyArena arena, Barrier barrier, Worker worker)
    {
        int stretch = worker.Random.Next(options.ThreadOperations / 10, options.ThreadOperations);
        while (true)
        {
            if (pauseRequested)
            {
                barrier.SignalAndWait();
                // Read between the two phases: the coordinator sets it before the final pause's first
                // phase, and after a regular pause's second one, which a slow worker may still be leaving.
                bool last = finished;
                barrier.SignalAndWait();
                if (last) break;
            }
            if (stretch-- == 0)
            {
                Interlocked.Increment(ref threadsReplaced);
                StartWorker(arena, barrier, worker);
                return;
            }
            try
            {
                Step(arena, worker.Random, worker.Live, worker.Id, ref worker.Sequence);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                Report($"thread {worker.Id}: {e.GetType().Name}: {e.Message}");
            }
            Interlocked.Increment(ref operations);
        }
        foreach (LiveBlock block in worker.Live) Release(arena, block);
        workersDone!.Signal();
    }

    private void Step(BuddyArena arena, Random random, List<LiveBlock> live, int id, ref long sequence)
    {
        int roll = random.Next(100);
        if (roll < 3 && live.Count > 0)
        {
            // Hand a block to whichever thread takes it next.
            int i = random.Next(live.Count);
            handoff.Enqueue(live[i]);
            RemoveAt(live, i);
        }
        else if (roll < 6 && handoff.TryDequeue(out LiveBlock foreign))
        {
            Release(arena, foreign);
            Interlocked.Increment(ref crossThreadFrees);
        }
        else if (roll < 55 && live.Count < 64)
        {
            Allocate(arena, random, live, id, ++sequence);
        }
        else if (live.Count > 0)
        {
            int i = random.Next(live.Count);
            Release(arena, live[i]);
            RemoveAt(live, i);
        }
    }

    private unsafe void Allocate(BuddyArena arena, Random random, List<LiveBlock> live, int id, long sequence)
    {
        var type = (Migratetype)random.Next(0, 4);
        bool zeroed = random.Next(4) == 0;
        // Mostly small blocks, sometimes up to the largest; by order or by byte size.
        int order = random.Next(10) < 8 ? random.Next(0, 4) : random.Next(0, arena.MaxOrder + 1);
        bool ok = random.Next(2) == 0
            ? arena.TryAllocate(order, out nint address, type, zeroed)
            : arena.TryAllocateBytes(random.NextInt64(1, arena.BytesOfOrder(order) + 1), out address, type, zeroed);
        if (!ok)
        {
            Interlocked.Increment(ref exhaustions);
            return;
        }
        long bytes = arena.SizeOfBlock(address);
        if (zeroed && !BlockPattern.IsZero(address, bytes))
            Corrupt($"zeroed block at 0x{address:x} ({bytes} bytes) was not zero");
        var block = new LiveBlock(address, bytes, ((long)id << 40) ^ sequence);
        BlockPattern.Stamp(block);
        live.Add(block);
    }

    private void Release(BuddyArena arena, LiveBlock block)
    {
        if (!BlockPattern.Verify(block, out string? damage)) Corrupt(damage!);
        arena.Free(block.Address, block.Bytes);
    }

    private long CheckFinalState(BuddyArena arena)
    {
        try
        {
            arena.CheckInvariants();
            Interlocked.Increment(ref invariantChecks);
        }
        catch (ArenaCorruptionException e)
        {
            Report($"final check: {e.Message}");
        }
        ArenaStatistics stats = arena.GetStatistics();
        if (stats.ReportingPages != 0) Report($"{stats.ReportingPages} pages still mid-report after the reporter stopped");
        return stats.TotalPages - stats.FreePages;
    }

    private static void RemoveAt(List<LiveBlock> live, int i)
    {
        live[i] = live[^1];
        live.RemoveAt(live.Count - 1);
    }

    private void Corrupt(string what)
    {
        Interlocked.Increment(ref corruptions);
        Report(what);
    }

    private void Report(string problem)
    {
        if (problems.Count < 50) problems.Enqueue(problem);
    }
}
