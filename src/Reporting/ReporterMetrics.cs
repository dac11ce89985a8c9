using System.Diagnostics.Metrics;
using System.Runtime.CompilerServices;

namespace Buddy.Reporting;

/// <summary>
/// The reporter's instruments, on the arena's own <c>Buddy.Allocator</c> meter with the same
/// <c>buddy.arena</c> tag. Counters are read from reporter statistics at collection; the duration
/// histogram is recorded once per device call, off the allocation path.
/// </summary>
internal sealed class ReporterInstruments
{
    private static readonly ConditionalWeakTable<Meter, ReporterInstruments> ByMeter = [];

    private readonly Lock gate = new();
    private readonly List<PageReporter> reporters = [];

    private ReporterInstruments(Meter meter)
    {
        Duration = meter.CreateHistogram<double>("buddy.report.duration", "s", "Time the device took for one scatterlist.");
        meter.CreateObservableCounter("buddy.report.passes", () => Observe(s => s.Passes), "{pass}", "Reporting passes.");
        meter.CreateObservableCounter("buddy.report.device_calls", () => Observe(s => s.DeviceCalls), "{call}", "Scatterlists handed to the device.");
        meter.CreateObservableCounter("buddy.report.bytes", () => Observe(s => s.ReportedBytes), "By", "Bytes reported to the device.");
        meter.CreateObservableCounter("buddy.report.failures", () => Observe(s => s.FailedReports), "{call}", "Device calls that failed.");
        meter.CreateObservableCounter("buddy.report.idle_passes", () => Observe(s => s.IdlePasses), "{pass}", "Passes down to the floor order because the arena was idle.");
        meter.CreateObservableCounter("buddy.report.pressure_passes", () => Observe(s => s.PressurePasses), "{pass}", "Passes down to the floor order, at once and with no budget, because memory was short.");
        meter.CreateObservableCounter("buddy.hint.passes", () => Observe(s => s.HintPasses), "{pass}", "Hint passes: fresh free blocks offered to the OS.");
        meter.CreateObservableCounter("buddy.hint.bytes", () => Observe(s => s.HintedBytes), "By", "Bytes offered to the OS (MADV_FREE, MEM_RESET).");
        meter.CreateObservableCounter("buddy.hint.failures", () => Observe(s => s.FailedHints), "{call}", "Hint calls that failed; their blocks went back fresh.");
        meter.CreateObservableCounter("buddy.report.pressure_signals", () => Observe(s => s.PressureSignals), "{signal}", "Times a pressure source or the host said memory was short.");
    }

    public Histogram<double> Duration { get; }

    public static ReporterInstruments For(Meter meter) => ByMeter.GetValue(meter, m => new ReporterInstruments(m));

    public void Register(PageReporter reporter)
    {
        lock (gate) reporters.Add(reporter);
    }

    public void Unregister(PageReporter reporter)
    {
        lock (gate) reporters.Remove(reporter);
    }

    private IEnumerable<Measurement<long>> Observe(Func<ReporterStatistics, long> pick)
    {
        PageReporter[] current;
        lock (gate) current = reporters.ToArray();
        return current.Select(r => new Measurement<long>(pick(r.GetStatistics()), new KeyValuePair<string, object?>(ArenaMetrics.ArenaTag, r.ArenaName)));
    }
}
