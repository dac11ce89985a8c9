using System.Diagnostics.Metrics;

namespace Buddy.Reporting;

/// <summary>
/// The reporter's instruments, published under the same <c>Buddy.Allocator</c> meter name and
/// <c>buddy.arena</c> tag as the arena's. Counters are read from reporter statistics at collection;
/// the duration histogram is recorded once per device call, off the allocation path.
/// </summary>
internal static class ReporterMetrics
{
    private static readonly Meter Meter = new(ArenaMetrics.MeterName);
    private static readonly Lock Gate = new();
    private static readonly List<PageReporter> Reporters = [];

    public static readonly Histogram<double> Duration =
        Meter.CreateHistogram<double>("buddy.report.duration", "s", "Time the device took for one scatterlist.");

    static ReporterMetrics()
    {
        Meter.CreateObservableCounter("buddy.report.passes", () => Observe(s => s.Passes), "{pass}", "Reporting passes.");
        Meter.CreateObservableCounter("buddy.report.device_calls", () => Observe(s => s.DeviceCalls), "{call}", "Scatterlists handed to the device.");
        Meter.CreateObservableCounter("buddy.report.bytes", () => Observe(s => s.ReportedBytes), "By", "Bytes reported to the device.");
        Meter.CreateObservableCounter("buddy.report.failures", () => Observe(s => s.FailedReports), "{call}", "Device calls that failed.");
    }

    public static void Register(PageReporter reporter)
    {
        lock (Gate) Reporters.Add(reporter);
    }

    public static void Unregister(PageReporter reporter)
    {
        lock (Gate) Reporters.Remove(reporter);
    }

    private static IEnumerable<Measurement<long>> Observe(Func<ReporterStatistics, long> pick)
    {
        PageReporter[] reporters;
        lock (Gate) reporters = Reporters.ToArray();
        return reporters.Select(r => new Measurement<long>(pick(r.GetStatistics()), new KeyValuePair<string, object?>(ArenaMetrics.ArenaTag, r.ArenaName)));
    }
}
