namespace Buddy.Reporting.Testing;

/// <summary>
/// Holds every scatterlist until the test opens the gate, so a test can act while blocks are
/// provably mid-report instead of hoping a sleep lands in the window.
/// </summary>
public sealed class GatedDevice : IReportingDevice, IDisposable
{
    private readonly ManualResetEventSlim gate = new(false);
    private readonly SemaphoreSlim entered = new(0);
    private long calls;

    public string Name => "gated";

    public bool ZeroesMemory => false;

    public long Calls => Interlocked.Read(ref calls);

    /// <summary>Waits until a report has reached the device (and is held there while the gate is shut).</summary>
    public void WaitUntilEntered(TimeSpan? timeout = null)
    {
        if (!entered.Wait(timeout ?? TimeSpan.FromSeconds(30)))
            throw new TimeoutException("No report reached the gated device.");
    }

    public void Open() => gate.Set();

    public bool Report(ReadOnlySpan<FreeBlock> ranges)
    {
        Interlocked.Increment(ref calls);
        entered.Release();
        gate.Wait();
        return true;
    }

    public void Dispose()
    {
        gate.Set();
        entered.Dispose();
    }
}
