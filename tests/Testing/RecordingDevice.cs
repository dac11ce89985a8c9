namespace Buddy.Reporting.Testing;

/// <summary>Records every scatterlist it is handed, then passes it on (or just succeeds).</summary>
public sealed class RecordingDevice : IReportingDevice
{
    private readonly IReportingDevice? inner;
    private readonly List<FreeBlock[]> calls = [];
    private readonly Lock gate = new();

    public RecordingDevice(IReportingDevice? inner = null) => this.inner = inner;

    public string Name => inner is null ? "recording" : $"recording ({inner.Name})";

    public bool ZeroesMemory => inner?.ZeroesMemory ?? false;

    /// <summary>A copy of each call's ranges, in order.</summary>
    public IReadOnlyList<FreeBlock[]> Calls
    {
        get { lock (gate) return calls.ToArray(); }
    }

    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        lock (gate) calls.Add(ranges.ToArray());
        return inner?.Report(ranges) ?? true;
    }
}
