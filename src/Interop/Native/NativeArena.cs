using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.Testing;

namespace Buddy.Native;

/// <summary>What a buddy_arena handle points to: the arena and, once asked for, its reporter.</summary>
internal sealed class NativeArena
{
    private readonly Lock gate = new();
    private readonly NativeOptions options;
    private PageReporter? reporter;
    private IReportingDevice? realDevice;

    public NativeArena(NativeOptions options)
    {
        this.options = options;
        Arena = new BuddyArena(new ArenaOptions
        {
            Size = checked((long)options.Size),
            ZoneCount = checked((int)options.ZoneCount),
            Backing = options.Backing == 1 ? ArenaBacking.Reserve : options.Backing == 0 ? ArenaBacking.AlignedAlloc : (ArenaBacking)options.Backing,
            PoisonFreedMemory = (options.Flags & NativeOptions.Poison) != 0,
            ValidateOnFree = (options.Flags & NativeOptions.Validate) != 0,
            ReportWaitTimeout = options.ReportWaitTimeoutMs == 0 ? TimeSpan.FromSeconds(30) : TimeSpan.FromMilliseconds(options.ReportWaitTimeoutMs),
        });
    }

    public BuddyArena Arena { get; }

    /// <summary>The reporter, built on first use with the device the options name.</summary>
    public PageReporter Reporter
    {
        get
        {
            lock (gate)
            {
                ObjectDisposedException.ThrowIf(Arena.IsDisposed, Arena);
                if (reporter is not null) return reporter;
                IReportingDevice real = options.Device switch
                {
                    0 => ReportingDevices.CreateDefault(),
                    1 => new MadviseFreeDevice(),
                    2 => new RecordingDevice(),
                    _ => throw new ArgumentOutOfRangeException("device", options.Device, "Device must be 0 (default), 1 (MADV_FREE) or 2 (none)."),
                };
                realDevice = real;
                IReportingDevice device = options.DeviceDelayMs == 0 ? real : new SlowDevice(TimeSpan.FromMilliseconds(options.DeviceDelayMs), real);
                reporter = new PageReporter(Arena, device, new PageReporterOptions
                {
                    Delay = TimeSpan.FromMilliseconds(options.ReportDelayMs == 0 ? 2000 : options.ReportDelayMs),
                    Mode = (options.Flags & NativeOptions.InPlace) != 0 ? ReportingMode.InPlace : ReportingMode.Isolate,
                });
                return reporter;
            }
        }
    }

    public PageReporter? ExistingReporter
    {
        get { lock (gate) return reporter; }
    }

    public void Destroy()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(Arena.IsDisposed, Arena);
            reporter?.Dispose();
            (realDevice as IDisposable)?.Dispose();
            Arena.Dispose();
        }
    }
}
