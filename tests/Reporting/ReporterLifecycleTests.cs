using Buddy.Reporting;
using Buddy.Reporting.Testing;

namespace Buddy.Tests;

/// <summary>Lifecycle calls racing each other and the allocator, and devices that misbehave.</summary>
public class ReporterLifecycleTests
{
    /// <summary>An arena with one free 4 MiB block, and a ReportNow on another thread held in the device with it.</summary>
    private static (BuddyArena, GatedDevice, PageReporter, Background<ReportingPassResult>) ReportNowHeldInTheDevice()
    {
        var arena = Arenas.Small(size: 8 * Arenas.MiB);
        arena.Free(arena.Allocate(10));
        var gated = new GatedDevice();
        var reporter = new PageReporter(arena, gated);
        var pass = Background<ReportingPassResult>.Run(reporter.ReportNow);
        gated.WaitUntilEntered();
        return (arena, gated, reporter, pass);
    }

    /// <summary>
    /// Makes the same call from two threads at once; each answers the pages still mid-report when its call
    /// returned. Each thread signals just before it calls, so one that returned early is never seen blocked.
    /// </summary>
    private static Background<long>[] TwiceAtOnce(Action call, BuddyArena arena)
    {
        using var bothCalling = new CountdownEvent(2);
        Background<long>[] calls = Enumerable.Range(0, 2).Select(_ => Background<long>.Run(() =>
        {
            bothCalling.Signal();
            call();
            return arena.GetStatistics().ReportingPages;
        })).ToArray();
        bothCalling.Wait(TestContext.Current.CancellationToken);
        return calls;
    }

    [Fact]
    public void Start_and_stop_racing_from_two_threads_never_hang_or_leave_a_second_thread()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        using var reporter = new PageReporter(arena, new RecordingDevice(), new PageReporterOptions { Delay = TimeSpan.Zero });
        int mostThreads = 0;
        var race = Background.Run(() => Threads.Run(2, id =>
        {
            for (int i = 0; i < 2_000; i++)
            {
                if (id == 0) reporter.Start();
                else reporter.Stop();
                int live = reporter.LiveThreads;
                if (live > Volatile.Read(ref mostThreads)) Interlocked.Exchange(ref mostThreads, live);
            }
        }));
        race.Join();
        reporter.Stop();
        Assert.False(reporter.IsRunning);
        Assert.Equal(0, reporter.LiveThreads);
        Assert.True(mostThreads <= 1, $"{mostThreads} reporter threads were alive at once");
    }

    [Fact]
    public void Two_concurrent_stops_both_return_only_after_the_scatterlist_is_back()
    {
        var arena = Arenas.Small(size: 8 * Arenas.MiB);
        using var _a = arena;
        var held = Enumerable.Range(0, 4).Select(_ => arena.Allocate(9)).ToList();
        arena.Free(held[0]);
        using var gated = new GatedDevice();
        using var reporter = new PageReporter(arena, gated, new PageReporterOptions { Delay = TimeSpan.Zero });
        reporter.Start();
        gated.WaitUntilEntered();
        Background<long>[] stops = TwiceAtOnce(reporter.Stop, arena);
        // Neither Stop may return while the device holds the batch: both must block.
        Wait.Until(() => stops.All(stop => stop.IsBlocked), "both Stops to wait for the scatterlist in hand");
        gated.Open();
        Assert.All(stops, stop => Assert.Equal(0, stop.Join()));
        Assert.Equal(0, reporter.LiveThreads);
    }

    [Fact]
    public void Frees_never_throw_while_reporters_come_and_go()
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB, threadCaches: false);
        using var done = new CancellationTokenSource();
        Exception? failure = null;
        var workers = Enumerable.Range(0, 2).Select(id => new Thread(() =>
        {
            int order = id == 0 ? 0 : 9;
            try
            {
                while (!done.IsCancellationRequested)
                    if (arena.TryAllocate(order, out nint block)) arena.Free(block);
            }
            catch (Exception e)
            {
                failure = e;
            }
        })).ToList();
        workers.ForEach(t => t.Start());
        var options = new PageReporterOptions { Delay = TimeSpan.Zero, ReportOrder = 0 };
        for (int i = 0; i < 3_000 && failure is null; i++)
        {
            var reporter = new PageReporter(arena, new RecordingDevice(), options);
            if (i % 2 == 0) reporter.Start();
            reporter.Dispose();
        }
        done.Cancel();
        workers.ForEach(t => t.Join());
        Assert.Null(failure);
        arena.CheckInvariants();
        Assert.Equal(0, arena.GetStatistics().AllocatedPages);
    }

    [Fact]
    public void A_device_whose_properties_throw_fails_its_reports_and_loses_nothing()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        arena.Free(arena.Allocate(10));
        var device = new ThrowingPropertiesDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.Zero });

        ReportingPassResult pass = reporter.ReportNow();
        Assert.Equal(1, pass.FailedReports);
        Assert.Contains(nameof(ThrowingPropertiesDevice), reporter.GetStatistics().LastError);
        Assert.Equal(0, arena.GetStatistics().ReportingPages);
        Assert.Equal(0, arena.GetStatistics().ReportedPages);

        // On the thread too: it records the failure and lives on, and the arena can still be disposed.
        reporter.Start();
        Wait.Until(() => reporter.GetStatistics().DeviceCalls >= 2, "the thread to call the device");
        Assert.True(reporter.IsRunning);
        Assert.Equal(1, reporter.LiveThreads);
        reporter.Stop();
        arena.CheckInvariants();
    }

    [Fact]
    public void Stop_ends_a_pass_running_on_another_thread_after_its_scatterlist()
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB, threadCaches: false);
        var held = Enumerable.Range(0, 8).Select(_ => arena.Allocate(9)).ToList();
        held.Where((_, i) => i % 2 == 0).ToList().ForEach(arena.Free);
        using var gated = new GatedDevice();
        using var reporter = new PageReporter(arena, gated, new PageReporterOptions { Capacity = 1 });
        var pass = Background<ReportingPassResult>.Run(reporter.ReportNow);
        gated.WaitUntilEntered();
        reporter.Stop();
        gated.Open();
        Assert.Equal(1, pass.Join().ReportedBlocks);
        Assert.Equal(1, gated.Calls);
        Assert.Equal(0, arena.GetStatistics().ReportingPages);
    }

    [Fact]
    public void A_thread_pass_that_waited_behind_a_pass_on_another_thread_does_nothing_once_stopped()
    {
        using var arena = Arenas.Small(size: 16 * Arenas.MiB, threadCaches: false);
        var held = Enumerable.Range(0, 8).Select(_ => arena.Allocate(9)).ToList();
        held.Where((_, i) => i % 2 == 0).ToList().ForEach(arena.Free);
        using var gated = new GatedDevice();
        using var reporter = new PageReporter(arena, gated, new PageReporterOptions
        {
            Delay = TimeSpan.Zero, Capacity = 1, IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
        });
        var pass = Background<ReportingPassResult>.Run(reporter.ReportNow);
        gated.WaitUntilEntered();
        // Start asks for a pass at once (no delay): the thread begins it and waits for the pass lock ReportNow holds.
        reporter.Start();
        Wait.Until(() => reporter.Wakeups == 1, "the thread to begin its pass");
        var stop = Background.Run(reporter.Stop);
        Wait.Until(() => stop.IsBlocked, "Stop to wait for the thread");
        gated.Open();
        stop.Join();
        Assert.Equal(1, pass.Join().ReportedBlocks);
        // The thread's pass came after Stop: it neither called the device nor counted a pass.
        Assert.Equal(1, gated.Calls);
        Assert.Equal(1, reporter.GetStatistics().Passes);
        Assert.Equal(0, reporter.LiveThreads);
    }

    [Fact]
    public void Pressure_signalled_while_stopped_is_only_counted_and_the_next_start_waits_out_its_delay()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB, threadCaches: false);
        arena.Free(arena.Allocate(9));
        var device = new RecordingDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions
        {
            Delay = TimeSpan.FromHours(1), IdleTime = Timeout.InfiniteTimeSpan, PressureSources = PressureSources.None,
        });
        reporter.SignalPressure();
        Assert.Equal(1, reporter.GetStatistics().PressureSignals);
        reporter.Start();
        // A pressure pass would run at once and park the thread; a plain start waits out the delay first.
        Wait.Until(() => reporter.IsWaitingForDelay, "the started thread to wait out its delay");
        Assert.Equal(0, reporter.GetStatistics().PressurePasses);
        Assert.Empty(device.Calls);
        // Pressure signalled while it runs still cuts the delay short.
        reporter.SignalPressure();
        Wait.Until(() => reporter.GetStatistics().PressurePasses == 1, "the pressure pass");
        Assert.Single(device.Calls);
    }

    [Fact]
    public void A_second_dispose_also_waits_for_a_pass_running_on_another_thread()
    {
        (BuddyArena arena, GatedDevice gated, PageReporter reporter, Background<ReportingPassResult> pass) = ReportNowHeldInTheDevice();
        using var _a = arena;
        using var _g = gated;
        Background<long>[] disposes = TwiceAtOnce(reporter.Dispose, arena);
        Wait.Until(() => disposes.All(d => d.IsBlocked), "both Disposes to wait for the scatterlist in hand");
        gated.Open();
        Assert.All(disposes, d => Assert.Equal(0, d.Join()));
        Assert.Equal(1, pass.Join().ReportedBlocks);
    }

    [Fact]
    public void A_reporter_cannot_be_built_on_a_disposed_arena()
    {
        var arena = Arenas.Small();
        arena.Dispose();
        Assert.Throws<ObjectDisposedException>(() => new PageReporter(arena, new RecordingDevice()));
    }

    [Fact]
    public void Dispose_waits_for_a_pass_running_on_another_thread()
    {
        (BuddyArena arena, GatedDevice gated, PageReporter reporter, Background<ReportingPassResult> pass) = ReportNowHeldInTheDevice();
        using var _a = arena;
        using var _g = gated;
        // What Dispose must wait for is the scatterlist coming back, not the other thread's return.
        var dispose = Background<ArenaStatistics>.Run(() =>
        {
            reporter.Dispose();
            return arena.GetStatistics();
        });
        gated.Open();
        ArenaStatistics atDispose = dispose.Join();
        Assert.True(atDispose.ReportingPages == 0 && atDispose.ReportedPages == 1024, "Dispose returned while a pass still used the device");
        Assert.Equal(1, pass.Join().ReportedBlocks);
    }

    [Fact]
    public void Lifecycle_calls_and_passes_from_inside_a_pass_are_refused()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        arena.Free(arena.Allocate(10));
        var device = new ReenteringDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.FromHours(1) });
        device.Reporter = reporter;
        Assert.Equal(1, reporter.ReportNow().ReportedBlocks);
        Assert.Equal(3, device.Refusals.Count);
        Assert.All(device.Refusals, e => Assert.IsType<InvalidOperationException>(e));
        arena.CheckInvariants();
    }

    [Fact]
    public void Stop_from_the_device_is_refused_instead_of_waiting_for_itself()
    {
        using var arena = Arenas.Small(size: 8 * Arenas.MiB);
        arena.Free(arena.Allocate(10));
        var device = new StoppingDevice();
        using var reporter = new PageReporter(arena, device, new PageReporterOptions { Delay = TimeSpan.Zero });
        device.Reporter = reporter;
        reporter.Start();
        Wait.Until(() => device.Refusal is not null, "the device to try stopping its reporter");
        Assert.IsType<InvalidOperationException>(device.Refusal);
        reporter.Stop();
    }

    private sealed class ThrowingPropertiesDevice : IReportingDevice
    {
        public string Name => throw new InvalidOperationException("no name");

        public bool ZeroesMemory => throw new InvalidOperationException("no idea");

        public bool Report(ReadOnlySpan<FreeBlock> ranges) => true;
    }

    /// <summary>Tries a nested pass, Dispose and Start from inside a pass run by ReportNow.</summary>
    private sealed class ReenteringDevice : IReportingDevice
    {
        public PageReporter? Reporter;
        public readonly List<Exception> Refusals = [];

        public string Name => "reentering";

        public bool ZeroesMemory => false;

        public bool Report(ReadOnlySpan<FreeBlock> ranges)
        {
            foreach (Action call in new Action[] { () => Reporter!.ReportNow(), Reporter!.Dispose, Reporter.Start })
            {
                try
                {
                    call();
                }
                catch (Exception e)
                {
                    Refusals.Add(e);
                }
            }
            return true;
        }
    }

    private sealed class StoppingDevice : IReportingDevice
    {
        public PageReporter? Reporter;
        public Exception? Refusal;

        public string Name => "stopping";

        public bool ZeroesMemory => false;

        public bool Report(ReadOnlySpan<FreeBlock> ranges)
        {
            try
            {
                Reporter!.Stop();
            }
            catch (Exception e)
            {
                Refusal = e;
            }
            return true;
        }
    }
}
