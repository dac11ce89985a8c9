namespace Buddy.Reporting.Testing;

/// <summary>Waits before each report, widening the window in which blocks are mid-report.</summary>
public sealed class SlowDevice : IReportingDevice
{
    private readonly IReportingDevice? inner;
    private readonly TimeSpan delay;
    private long inFlight;

    public SlowDevice(TimeSpan delay, IReportingDevice? inner = null)
    {
        this.delay = delay;
        this.inner = inner;
    }

    public string Name => $"slow ({delay.TotalMilliseconds} ms)";

    public bool ZeroesMemory => inner?.ZeroesMemory ?? false;

    /// <summary>Reports under way right now.</summary>
    public long InFlight => Interlocked.Read(ref inFlight);

    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        Interlocked.Increment(ref inFlight);
        try
        {
            Thread.Sleep(delay);
            return inner?.Report(ranges) ?? true;
        }
        finally
        {
            Interlocked.Decrement(ref inFlight);
        }
    }
}
