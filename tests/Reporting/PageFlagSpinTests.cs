using Buddy.Reporting.FaultInjection;
using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>The page-flag spin: waiting for a block that is mid-report instead of failing.</summary>
public class PageFlagSpinTests
{
    private static readonly TimeSpan SlowReport = TimeSpan.FromMilliseconds(400);

    /// <summary>Starts a pass on another thread and returns once the slow device holds a scatterlist.</summary>
    private static Task StartSlowPass(PageReporter reporter, SlowDevice device)
    {
        Task pass = reporter.ReportNowAsync(TestContext.Current.CancellationToken);
        Wait.Until(() => device.InFlight == 1, "the slow report to start");
        return pass;
    }

    [Theory]
    [InlineData(ReportingMode.Isolate)]
    [InlineData(ReportingMode.InPlace)]
    public async Task An_allocation_that_only_mid_report_memory_can_serve_waits_for_it(ReportingMode mode)
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        nint whole = arena.Allocate(10);
        arena.Free(whole);
        var device = new SlowDevice(SlowReport);
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1), Mode = mode });
        Task pass = StartSlowPass(reporter, device);

        nint block = arena.Allocate(10);
        Assert.Equal(whole, block);
        Assert.Equal(0, device.InFlight);
        ArenaStatistics stats = arena.GetStatistics();
        Assert.Equal(1, stats.SpinWaits);
        Assert.True(stats.LongestSpin > TimeSpan.Zero);
        Assert.Equal(0, stats.FailedAllocations);
        await pass;
        arena.Free(block);
        arena.CheckInvariants();
    }

    [Fact]
    public async Task In_isolate_mode_an_allocation_with_other_free_memory_never_waits()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        nint first = arena.Allocate(10);
        nint second = arena.Allocate(10);
        arena.Free(first);
        var device = new SlowDevice(SlowReport);
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        Task pass = StartSlowPass(reporter, device);
        arena.Free(second);

        // Memory freed after the pass took its batch serves these at once.
        nint small = arena.Allocate(0);
        nint large = arena.Allocate(9);
        Assert.Equal(1, device.InFlight);
        Assert.Equal(0, arena.GetStatistics().SpinWaits);
        Assert.InRange(small, second, second + (4 << 20) - 1);
        await pass;
        arena.Free(small);
        arena.Free(large);
        arena.CheckInvariants();
    }

    [Fact]
    public void A_device_that_never_answers_ends_the_wait_with_a_clear_error()
    {
        var time = new FakeTimeProvider();
        using var arena = new BuddyArena(new ArenaOptions { ValidateOnFree = true, Size = 4 * Arenas.MiB, ZoneCount = 1 }, timeProvider: time);
        arena.Free(arena.Allocate(10));
        using var gated = new GatedDevice();
        using var reporter = new PageReporter(arena, gated, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        var pass = Background<ReportingPassResult>.Run(reporter.ReportNow);
        gated.WaitUntilEntered();

        var allocation = Background<nint>.Run(() => arena.Allocate(0));
        TimeSpan advanced = TimeSpan.Zero;
        while (!allocation.IsCompleted)
        {
            time.Advance(TimeSpan.FromSeconds(1));
            advanced += TimeSpan.FromSeconds(1);
            Thread.Yield();
        }
        var e = Assert.Throws<AggregateException>(() => allocation.Join());
        Assert.Contains("come back from a report", Assert.IsType<TimeoutException>(e.InnerException).Message);
        Assert.True(advanced > arena.Options.ReportWaitTimeout, $"gave up after {advanced}");

        gated.Open();
        pass.Join();
        arena.CheckInvariants();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
    }

    [Fact]
    public void The_wait_timeout_counts_per_block_not_over_every_block_waited_for()
    {
        // Two free 4 MiB blocks, both mid-report in place in two batches whose devices the test holds.
        var time = new ReadCountingTimeProvider();
        using var arena = new BuddyArena(new ArenaOptions { Size = 8 * Arenas.MiB, ZoneCount = 1, ThreadCaches = false }, timeProvider: time);
        nint[] blocks = [arena.Allocate(10), arena.Allocate(10)];
        Array.ForEach(blocks, arena.Free);
        using var firstHeld = new ManualResetEventSlim();
        using var secondHeld = new ManualResetEventSlim();
        Background<ReportedBatch> Hold(ManualResetEventSlim held) => Background<ReportedBatch>.Run(() =>
            arena.ReportFreeBlocks(0, 10, ReportingMode.InPlace, new FreeBlock[1], _ =>
            {
                held.Wait();
                return ReportOutcome.Reported;
            }));
        try
        {
            var first = Hold(firstHeld);
            Wait.Until(() => arena.GetStatistics().ReportingPages == 1024, "the first block to be mid-report");
            var second = Hold(secondHeld);
            Wait.Until(() => arena.GetStatistics().ReportingPages == 2048, "the second block to be mid-report");

            // The allocation waits for the first block, then (it comes back reported, behind the fresh
            // one still mid-report) for the second: each wait is 20 s of a 30 s timeout, 40 s in all.
            long before = time.Reads;
            var allocation = Background<nint>.Run(() => arena.Allocate(10));
            Wait.Until(() => time.ReadsSince(before) >= 2, "the allocation to spin, reading the clock");
            time.Advance(TimeSpan.FromSeconds(20));
            firstHeld.Set();
            first.Join();
            time.Advance(TimeSpan.FromSeconds(20));
            // Two reads of the clock after the move: the wait has compared its time with the timeout and spun on.
            long reads = time.Reads;
            Wait.Until(() => time.ReadsSince(reads) >= 2 || allocation.IsCompleted, "the waiting allocation to read the clock");
            Assert.False(allocation.IsCompleted, "the allocation gave up although no block was mid-report for 30 s");
            secondHeld.Set();
            second.Join();
            nint block = allocation.Join();
            arena.Free(block);
            Assert.Equal(1, arena.GetStatistics().SpinWaits);
        }
        finally
        {
            // A failed assertion must not leave reports holding the arena open for its Dispose.
            firstHeld.Set();
            secondHeld.Set();
        }
        arena.CheckInvariants();
    }

    /// <summary>A fake clock that counts its reads, so a test knows a spinning thread has looked at the time it moved to.</summary>
    private sealed class ReadCountingTimeProvider : FakeTimeProvider
    {
        private long reads;

        public long Reads => Interlocked.Read(ref reads);

        public long ReadsSince(long earlier) => Reads - earlier;

        public override long GetTimestamp()
        {
            Interlocked.Increment(ref reads);
            return base.GetTimestamp();
        }
    }

    [Theory]
    [InlineData(ReportingMode.Isolate, false)]
    [InlineData(ReportingMode.InPlace, true)]
    public unsafe void An_allocation_never_fails_while_the_only_free_page_comes_and_goes_through_reports(ReportingMode mode, bool threadCaches)
    {
        // A full arena but for one page, and a reporter that takes that page as soon as it is free.
        using var arena = Arenas.Small(size: 4 * Arenas.MiB, threadCaches: threadCaches);
        var held = new List<nint>();
        while (arena.TryAllocate(0, out nint page)) held.Add(page);
        arena.Free(held[^1]);
        held.RemoveAt(held.Count - 1);
        using var reporter = new PageReporter(arena, new NullReportingDevice(),
            new PageReporterOptions { Delay = TimeSpan.Zero, ReportOrder = 0, Capacity = 1, Mode = mode });
        reporter.Start();
        long refusals = 0;
        // At least 200,000 rounds, and on until the reporter has taken the page (its thread may start late on a busy machine).
        for (int i = 0; i < 200_000 || (i < 50_000_000 && (i % 1024 != 0 || reporter.GetStatistics().DeviceCalls == 0)); i++)
        {
            if (!arena.TryAllocate(0, out nint block))
            {
                refusals++;
                continue;
            }
            *(byte*)block = 1;
            arena.Free(block);
            // A busy thread keeps its cache from automatic passes: send the page home now and then, so
            // refills meet it mid-report.
            if (threadCaches && i % 16 == 0) arena.DrainThreadCaches();
        }
        reporter.Stop();
        Assert.Equal(0, refusals);
        Assert.True(reporter.GetStatistics().DeviceCalls > 0, "the reporter never took the page");
        held.ForEach(arena.Free);
        arena.CheckInvariants();
    }

    [Fact]
    public void Exhaustion_without_memory_mid_report_still_fails_at_once()
    {
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        nint all = arena.Allocate(10);
        using var reporter = new PageReporter(arena, new SlowDevice(SlowReport), new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        Assert.False(arena.TryAllocate(0, out _));
        Assert.Equal(0, arena.GetStatistics().SpinWaits);
        arena.Free(all);
    }
}

/// <summary>An allocation fails only when nothing that could serve it is free, mid-report or in a thread cache.</summary>
public class ScarceMemoryTests
{
    [Theory]
    [InlineData(ReportingMode.InPlace)]
    [InlineData(ReportingMode.Isolate)]
    public void Threads_sharing_a_few_free_blocks_are_never_refused_while_one_is_free_cached_or_mid_report(ReportingMode mode)
    {
        const int threadCount = 4, freeBlocks = 6, order = 2;
        using var arena = Arenas.Small(size: 4 * Arenas.MiB);
        // Full but for a few order-2 blocks that cannot merge: every block's buddy stays allocated.
        var held = new List<nint>();
        while (arena.TryAllocate(order, out nint block)) held.Add(block);
        held.Sort();
        for (int i = 0; i < freeBlocks; i++) arena.Free(held[i * 2]);
        using var reporter = new PageReporter(arena, new NullReportingDevice(),
            new PageReporterOptions { Delay = TimeSpan.Zero, Mode = mode, ReportOrder = order, FloorOrder = order });
        reporter.Start();

        // Blocks travel between threads through shared slots, so they move from cache to cache. A
        // thread holds at most one block outside the slots: with the slots full, one block is still free.
        var slots = new nint[freeBlocks - threadCount];
        long refused = 0;
        Threads.Run(threadCount, id =>
        {
            var random = new Random(id);
            for (int i = 0; i < 2_000_000; i++)
            {
                ref nint slot = ref slots[random.Next(slots.Length)];
                nint taken = Interlocked.Exchange(ref slot, 0);
                if (taken != 0) arena.Free(taken);
                else if (!arena.TryAllocate(order, out nint block)) Interlocked.Increment(ref refused);
                else if (Interlocked.CompareExchange(ref slot, block, 0) != 0) arena.Free(block);
            }
        });
        foreach (nint block in slots)
            if (block != 0) arena.Free(block);
        reporter.Stop();


        Assert.Equal(0, Interlocked.Read(ref refused));
        Assert.True(reporter.GetStatistics().Passes > 0, "reports ran while the threads churned");
        for (int i = 0; i < held.Count; i++)
            if (i % 2 == 1 || i >= freeBlocks * 2) arena.Free(held[i]);
        arena.CheckInvariants();
    }
}
