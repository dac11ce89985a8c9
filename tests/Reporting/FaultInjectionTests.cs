using Buddy.Reporting.FaultInjection;
using Buddy.Cli.Workloads;
using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

public class FaultInjectionTests
{
    [Fact]
    public void Exhaustion_fails_every_request_cleanly_and_frees_bring_it_back()
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB, zones: 2);
        var held = new List<nint>();
        while (arena.TryAllocate(0, out nint page)) held.Add(page);
        Assert.Equal(arena.TotalPages, held.Count);
        for (int order = 0; order <= arena.MaxOrder; order++)
        {
            Assert.False(arena.TryAllocate(order, out _));
            Assert.Throws<ArenaExhaustedException>(() => arena.AllocateZeroed(order));
        }
        arena.CheckInvariants();
        // Free one aligned run of 16 pages: an order-4 request succeeds again, an order-5 still fails.
        var run = held.Order().Take(16).ToList();
        run.ForEach(arena.Free);
        Assert.False(arena.TryAllocate(5, out _));
        nint block = arena.Allocate(4);
        Assert.Equal(run[0], block);
        held.RemoveAll(run.Contains);
        arena.Free(block);
        held.ForEach(arena.Free);
        Assert.Equal(arena.TotalPages, arena.GetStatistics().FreePages);
        arena.CheckInvariants();
    }

    [Fact]
    public void Dispose_racing_with_allocations_and_a_running_reporter_ends_every_call_cleanly()
    {
        for (int round = 0; round < 10; round++)
        {
            var arena = Arenas.Small(size: 32 * Arenas.MiB, zones: 2);
            var reporter = new PageReporter(arena, new SlowDevice(TimeSpan.FromMilliseconds(1)),
                new PageReporterOptions { Delay = TimeSpan.Zero, ReportOrder = 2, Capacity = 2 });
            reporter.Start();
            int refused = 0;
            long operations = 0;
            using var start = new Barrier(4);
            Threads.Run(4, i =>
            {
                start.SignalAndWait();
                if (i == 3)
                {
                    // Dispose at a different point of the churn each round.
                    SpinWait.SpinUntil(() => Interlocked.Read(ref operations) >= 200L * (round + 1));
                    arena.Dispose();
                    return;
                }
                var random = new Random(i);
                try
                {
                    while (true)
                    {
                        nint b = arena.Allocate(random.Next(0, 6));
                        _ = arena.GetStatistics();
                        arena.Free(b);
                        Interlocked.Increment(ref operations);
                    }
                }
                catch (ObjectDisposedException)
                {
                    Interlocked.Increment(ref refused);
                }
            });
            Assert.Equal(3, refused);
            reporter.Dispose();
            Assert.Throws<ObjectDisposedException>(() => reporter.ReportNow());
        }
    }

    [Fact]
    public void A_bounded_stress_run_with_faults_loses_nothing_and_corrupts_nothing()
    {
        StressResult result = new StressEngine(new StressOptions
        {
            Duration = TimeSpan.FromSeconds(6),
            Threads = 3,
            Seed = 42,
            ArenaBytes = 64L << 20,
            Device = StressDevice.Mixed,
            CheckInterval = TimeSpan.FromMilliseconds(200),
            RestartInterval = TimeSpan.FromMilliseconds(400),
            // Below the 10,000 operations asserted, so some thread must exit with its cache however slow the machine.
            ThreadOperations = 3_000,
        }).Run();
        Assert.True(result.Passed, string.Join(Environment.NewLine, result.Problems));
        Assert.Equal(0, result.Corruptions);
        Assert.Equal(0, result.LostPages);
        Assert.True(result.Operations > 10_000, $"{result.Operations} operations");
        Assert.True(result.InvariantChecks >= 10, $"{result.InvariantChecks} checks");
        Assert.True(result.Reports > 0, "the reporter never called its device");
        Assert.True(result.CrossThreadFrees > 0, "no block crossed threads");
        Assert.True(result.ThreadsReplaced > 0, "no worker thread exited and left its cache");
    }

    [Fact]
    public unsafe void The_stress_pattern_notices_a_changed_word_and_a_dropped_page()
    {
        using var arena = Arenas.Small();
        nint address = arena.Allocate(6);
        var block = new LiveBlock(address, arena.BytesOfOrder(6), 0x1234);
        BlockPattern.Stamp(block);
        Assert.True(BlockPattern.Verify(block, out _));
        *(long*)(address + 8) = 0;
        Assert.False(BlockPattern.Verify(block, out string? damage));
        Assert.Contains("word 1", damage);
        BlockPattern.Stamp(block);
        *(long*)(address + 40 * 4096) = 0;
        Assert.False(BlockPattern.Verify(block, out damage));
        Assert.Contains("page at +163840", damage);
    }
}
