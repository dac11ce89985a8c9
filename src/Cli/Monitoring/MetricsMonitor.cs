using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Diagnostics.NETCore.Client;
using Microsoft.Diagnostics.Tracing;

namespace Buddy.Cli.Monitoring;

/// <summary>One instrument's latest value in a monitored process.</summary>
public sealed record MetricValue(string Meter, string Instrument, string Unit, string Tags, double Value);

/// <summary>
/// Reads the <c>Buddy.Allocator</c> meter of another process over EventPipe, with the same
/// provider, keyword and arguments dotnet-counters uses for System.Diagnostics.Metrics.
/// </summary>
public sealed class MetricsMonitor : IDisposable
{
    public const string ProviderName = "System.Diagnostics.Metrics";
    private const long TimeSeriesValuesKeyword = 0x2;

    private readonly EventPipeSession session;
    private readonly string sessionId = Guid.NewGuid().ToString();
    private readonly Dictionary<string, MetricValue> latest = [];

    /// <summary>Attaches to <paramref name="pid"/>; throws <see cref="ArgumentException"/> for a pid that is not a .NET process.</summary>
    public MetricsMonitor(int pid, TimeSpan refresh, string meters = ArenaMetrics.MeterName)
    {
        var arguments = new Dictionary<string, string>
        {
            ["SessionId"] = sessionId,
            ["Metrics"] = meters,
            ["RefreshInterval"] = refresh.TotalSeconds.ToString(CultureInfo.InvariantCulture),
            ["MaxTimeSeries"] = "1000",
            ["MaxHistograms"] = "20",
            ["ClientId"] = Guid.NewGuid().ToString(),
        };
        var provider = new EventPipeProvider(ProviderName, EventLevel.Informational, TimeSeriesValuesKeyword, arguments);
        try
        {
            session = new DiagnosticsClient(pid).StartEventPipeSession([provider], requestRundown: false);
        }
        catch (ServerNotAvailableException e)
        {
            throw new ArgumentException($"Process {pid} is not a .NET process with diagnostics enabled ({e.Message}).", nameof(pid), e);
        }
    }

    /// <summary>
    /// Streams values until <paramref name="cancellation"/> fires or the process exits; after each
    /// collection interval <paramref name="onSnapshot"/> gets every value seen so far.
    /// </summary>
    public void Run(Action<IReadOnlyList<MetricValue>> onSnapshot, CancellationToken cancellation)
    {
        using CancellationTokenRegistration stop = cancellation.Register(() => session.Stop());
        using var source = new EventPipeEventSource(session.EventStream);
        source.Dynamic.All += e =>
        {
            if (e.ProviderName != ProviderName || (string?)e.PayloadByName("sessionId") != sessionId) return;
            // TraceEvent names the CollectionStop event by task and opcode.
            if (e.EventName is "CollectionStop" or "Collection/Stop")
            {
                onSnapshot(latest.Values.OrderBy(v => NaturalKey(v.Tags), StringComparer.Ordinal)
                    .ThenBy(v => v.Instrument, StringComparer.Ordinal).ToList());
                return;
            }
            if (Parse(e) is { } value) latest[value.Instrument + "|" + value.Tags] = value;
        };
        source.Process();
    }

    private static MetricValue? Parse(TraceEvent e)
    {
        string? field = e.EventName switch
        {
            "CounterRateValuePublished" or "UpDownCounterRateValuePublished" => "value",
            "GaugeValuePublished" => "lastValue",
            "HistogramValuePublished" => "sum",
            _ => null,
        };
        if (field is null || e.PayloadByName(field) is not string text || text.Length == 0) return null;
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out double value)) return null;
        if (e.EventName == "HistogramValuePublished" && e.PayloadByName("count") is string count
            && double.TryParse(count, NumberStyles.Float, CultureInfo.InvariantCulture, out double n) && n > 0)
            value /= n;
        return new MetricValue((string)e.PayloadByName("meterName"), (string)e.PayloadByName("instrumentName"),
            (string?)e.PayloadByName("unit") ?? "", (string?)e.PayloadByName("tags") ?? "", value);
    }

    /// <summary>Pads numbers so that "buddy.order=10" sorts after "buddy.order=9".</summary>
    private static string NaturalKey(string tags) => System.Text.RegularExpressions.Regex.Replace(tags, "[0-9]+", m => m.Value.PadLeft(6, '0'));

    public void Dispose() => session.Dispose();
}
