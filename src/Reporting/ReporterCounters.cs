namespace Buddy.Reporting;

/// <summary>What a reporter has done since it was built; one lock, never held across a device call.</summary>
internal sealed class ReporterCounters
{
    private readonly Lock gate = new();
    private long passes, deviceCalls, reportedBlocks, reportedBytes, failedReports, failuresInARow;
    private long deviceTicks, longestDeviceTicks, passTicks, idlePasses, pressurePasses, pressureSignals;
    private long hintPasses, hintedBlocks, hintedBytes, failedHints;
    private string? lastError;

    public void DeviceCall(TimeSpan took, bool failed, int blocks, long bytes)
    {
        lock (gate)
        {
            deviceCalls++;
            deviceTicks += took.Ticks;
            longestDeviceTicks = Math.Max(longestDeviceTicks, took.Ticks);
            if (failed)
            {
                failedReports++;
                failuresInARow++;
            }
            else
            {
                failuresInARow = 0;
                reportedBlocks += blocks;
                reportedBytes += bytes;
            }
        }
    }

    /// <summary>A call to the hint device: offered blocks count apart from reported ones.</summary>
    public void HintCall(bool failed, int blocks, long bytes)
    {
        lock (gate)
        {
            if (failed)
            {
                failedHints++;
                return;
            }
            hintedBlocks += blocks;
            hintedBytes += bytes;
        }
    }

    public void Pass(Scheduling.PassKind kind)
    {
        lock (gate)
        {
            if (kind == Scheduling.PassKind.Hint)
            {
                hintPasses++;
                return;
            }
            passes++;
            if (kind == Scheduling.PassKind.Idle) idlePasses++;
            if (kind == Scheduling.PassKind.Pressure) pressurePasses++;
        }
    }

    public void PassTime(TimeSpan took)
    {
        lock (gate) passTicks += took.Ticks;
    }

    public void PressureSignal() => Interlocked.Increment(ref pressureSignals);

    public void Error(string message)
    {
        lock (gate) lastError = message;
    }

    public ReporterStatistics Snapshot()
    {
        lock (gate)
            return new ReporterStatistics(passes, deviceCalls, reportedBlocks, reportedBytes, failedReports,
                TimeSpan.FromTicks(deviceTicks), TimeSpan.FromTicks(longestDeviceTicks), lastError, TimeSpan.FromTicks(passTicks),
                idlePasses, pressurePasses, Interlocked.Read(ref pressureSignals), failuresInARow,
                hintPasses, hintedBlocks, hintedBytes, failedHints);
    }
}
