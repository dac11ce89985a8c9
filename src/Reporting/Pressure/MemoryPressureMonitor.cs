namespace Buddy.Reporting.Pressure;

/// <summary>
/// Listens to the sources a reporter's options name and calls back on pressure: cgroup usage against
/// its limit and GC memory load are read every poll interval; PSI triggers wake a thread of their own.
/// A cgroup is also under pressure when what is left under its limit is less than the free memory the
/// arena holds resident: a neighbour bursting as this process did would not fit, and a burst is faster
/// than any poll.
/// A source this machine lacks is left out; one that fails while running is reported and left out.
/// </summary>
internal sealed class MemoryPressureMonitor : IDisposable
{
    /// <summary>A trigger fires after 100 ms of memory stall within 2 s, the shortest window unprivileged processes may use.</summary>
    private const long StallUs = 100_000, WindowUs = 2_000_000;

    private readonly PageReporterOptions options;
    private readonly Action onPressure;
    private readonly Func<long> heldBytes;
    private readonly Action<string, Exception?> onFailure;
    private readonly CgroupMemory? cgroup;
    private readonly List<(string Path, IDisposable Subscription)> triggers = [];
    private readonly ITimer? poll;
    private readonly Lock gate = new();
    private readonly Lock polling = new();
    private bool disposed;

    private MemoryPressureMonitor(PageReporterOptions options, TimeProvider time, Func<long> heldBytes, Action onPressure, Action<string, Exception?> onFailure, CgroupMemory? group = null)
    {
        this.options = options;
        this.heldBytes = heldBytes;
        this.onPressure = onPressure;
        this.onFailure = onFailure;
        PressureSources sources = options.PressureSources;
        if (sources.HasFlag(PressureSources.Cgroup) || sources.HasFlag(PressureSources.Psi)) cgroup = group ?? CgroupMemory.OfThisProcess();
        if (sources.HasFlag(PressureSources.Psi)) ArmTriggers();
        if (!sources.HasFlag(PressureSources.Cgroup)) cgroup = null;
        if (cgroup is not null || sources.HasFlag(PressureSources.GcMemoryLoad))
            poll = time.CreateTimer(_ => Poll(), null, options.PressurePollInterval, options.PressurePollInterval);
    }

    /// <summary>The PSI files with an armed trigger.</summary>
    public IEnumerable<string> TriggerFiles => triggers.Select(t => t.Path);

    /// <summary>
    /// Starts listening; null when the options name no source. <paramref name="heldBytes"/> reads the free
    /// memory the reporter could hand back now.
    /// </summary>
    public static MemoryPressureMonitor? Start(PageReporterOptions options, TimeProvider time, Func<long> heldBytes, Action onPressure, Action<string, Exception?> onFailure)
        => options.PressureSources == PressureSources.None ? null : new MemoryPressureMonitor(options, time, heldBytes, onPressure, onFailure);

    /// <summary>A monitor of a given group rather than the process's own (tests watch a child group they made).</summary>
    internal static MemoryPressureMonitor ForGroup(CgroupMemory group, PageReporterOptions options, TimeProvider time, Func<long> heldBytes, Action onPressure, Action<string, Exception?> onFailure)
        => new(options, time, heldBytes, onPressure, onFailure, group);

    /// <summary>
    /// One look at the polled sources: the timer's callback, and the reporter's when a free wakes it
    /// (the moment memory is held is the moment a neighbour may need it). Tests call it directly.
    /// </summary>
    public bool Poll()
    {
        bool pressure;
        try
        {
            // Nothing held, nothing to hand back: the sources are not worth a read.
            lock (polling)
            {
                long held = heldBytes();
                pressure = held > 0 && (CgroupNearLimit(held) || GcMemoryLoadHigh());
            }
        }
        catch (Exception e)
        {
            onFailure($"Reading memory pressure failed: {e.GetType().Name}: {e.Message}", e);
            return false;
        }
        if (pressure) onPressure();
        return pressure;
    }

    private bool CgroupNearLimit(long held)
    {
        if (cgroup is null) return false;
        bool events = cgroup.NewLimitEvents();
        if (events) return true;
        if (cgroup.Limit() is not { } limit) return false;
        long usage = cgroup.Usage();
        return usage >= limit / 100 * options.PressurePercent || limit - usage < held;
    }

    /// <summary>As ArrayPool.Shared trims: the GC's memory load at the given share of its high-load threshold.</summary>
    private bool GcMemoryLoadHigh()
    {
        if (!options.PressureSources.HasFlag(PressureSources.GcMemoryLoad)) return false;
        GCMemoryInfo info = GC.GetGCMemoryInfo();
        return info.HighMemoryLoadThresholdBytes > 0 && info.MemoryLoadBytes >= info.HighMemoryLoadThresholdBytes / 100 * options.PressurePercent;
    }

    private void ArmTriggers()
    {
        if (!OperatingSystem.IsLinux()) return;
        foreach (string? path in new[] { cgroup?.PressureFile, "/proc/pressure/memory" })
        {
            // PSI compiled out, or not ours to arm: the polled sources remain.
            if (path is not null && File.Exists(path) && PsiTriggers.Subscribe(path, StallUs, WindowUs, onPressure) is { } subscription)
                triggers.Add((path, subscription));
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            if (disposed) return;
            disposed = true;
        }
        poll?.Dispose();
        foreach ((_, IDisposable subscription) in triggers) subscription.Dispose();
    }
}
