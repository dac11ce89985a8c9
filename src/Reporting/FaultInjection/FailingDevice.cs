namespace Buddy.Reporting.FaultInjection;

/// <summary>
/// Fails every <c>failEvery</c>-th call, by returning false or by throwing; the other calls go on
/// (the chaos run of <c>buddy stress</c>).
/// With <c>partial</c>, a failing call first reports the first half of its ranges to the inner device.
/// </summary>
internal sealed class FailingDevice : IReportingDevice
{
    private readonly IReportingDevice? inner;
    private readonly int failEvery;
    private readonly bool throwOnFailure;
    private readonly bool partial;
    private long calls;
    private long failures;

    public FailingDevice(int failEvery = 1, bool throwOnFailure = false, IReportingDevice? inner = null, bool partial = false)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(failEvery, 1);
        if (partial && inner is null) throw new ArgumentException("A partial failure needs an inner device to report the first half.", nameof(partial));
        this.partial = partial;
        this.failEvery = failEvery;
        this.throwOnFailure = throwOnFailure;
        this.inner = inner;
    }

    public string Name => $"failing (1 in {failEvery}{(partial ? ", partial" : "")})";

    public bool ZeroesMemory => inner?.ZeroesMemory ?? false;

    public long Failures => Interlocked.Read(ref failures);

    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        if (Interlocked.Increment(ref calls) % failEvery != 0) return inner?.Report(ranges) ?? true;
        Interlocked.Increment(ref failures);
        if (partial) inner!.Report(ranges[..(ranges.Length / 2)]);
        if (throwOnFailure) throw new IOException($"Injected reporting failure on a scatterlist of {ranges.Length} ranges.");
        return false;
    }
}
