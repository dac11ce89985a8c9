namespace Buddy.Reporting.FaultInjection;

/// <summary>
/// Waits before each report, widening the window in which blocks are mid-report: the chaos run of
/// <c>buddy stress</c> and the C ABI's <c>device_delay_ms</c> use it to provoke races in their callers.
/// </summary>
internal sealed class SlowDevice : IReportingDevice
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
