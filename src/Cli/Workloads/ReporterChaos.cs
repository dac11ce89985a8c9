using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.FaultInjection;

namespace Buddy.Cli.Workloads;

/// <summary>
/// The reporter of a stress run: aggressive settings, a device with injected faults, and a
/// restart (stop or dispose mid-report, then a new reporter) at every <see cref="Restart"/>.
/// </summary>
internal sealed class ReporterChaos
{
    private readonly BuddyArena arena;
    private readonly StressOptions options;
    private readonly MadviseDontNeedDevice dontNeed = new();
    private readonly Random random;
    private PageReporter? current;
    private int generation;
    private long reports, failedReports;

    public ReporterChaos(BuddyArena arena, StressOptions options)
    {
        this.arena = arena;
        this.options = options;
        random = new Random(options.Seed);
    }

    public void Restart()
    {
        Retire();
        StressDevice kind = options.Device == StressDevice.Mixed ? (StressDevice)(generation % 3) : options.Device;
        ReportingMode mode = options.Device == StressDevice.Mixed ? (ReportingMode)(generation / 3 % 2) : options.Mode;
        generation++;
        IReportingDevice device = kind switch
        {
            StressDevice.Slow => new SlowDevice(TimeSpan.FromMilliseconds(random.Next(1, 6)), dontNeed),
            StressDevice.Failing => new FailingDevice(3, throwOnFailure: random.Next(2) == 0, inner: dontNeed, partial: random.Next(2) == 0),
            _ => dontNeed,
        };
        int reportOrder = random.Next(0, arena.PageblockOrder + 1);
        current = new PageReporter(arena, device, new PageReporterOptions
        {
            Delay = TimeSpan.FromMilliseconds(random.Next(0, 4)),
            Capacity = random.Next(1, 9),
            ReportOrder = reportOrder,
            Mode = mode,
            // Idle passes down to the floor in every quiet moment of a few milliseconds.
            FloorOrder = random.Next(0, reportOrder + 1),
            IdleTime = TimeSpan.FromMilliseconds(random.Next(0, 4)),
        });
        current.Start();
        if (random.Next(3) == 0) _ = current.ReportNowAsync();
        // Pressure passes: at once, down to the floor order, every cache drained, no budget.
        if (random.Next(3) == 0) current.SignalPressure();
    }

    /// <summary>Stops the last reporter and returns the device calls and failed reports of all of them.</summary>
    public (long Reports, long Failed) Finish()
    {
        Retire();
        dontNeed.Dispose();
        return (reports, failedReports);
    }

    private void Retire()
    {
        if (current is null) return;
        // Half the time dispose straight away (mid-report, if a report is in hand), else stop first.
        if (random.Next(2) == 0) current.Stop();
        ReporterStatistics before = current.GetStatistics();
        current.Dispose();
        ReporterStatistics stats = current.GetStatistics();
        reports += Math.Max(before.DeviceCalls, stats.DeviceCalls);
        failedReports += Math.Max(before.FailedReports, stats.FailedReports);
        current = null;
    }
}
