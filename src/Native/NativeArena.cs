using Buddy.Reporting;
using Buddy.Reporting.Devices;
using Buddy.Reporting.FaultInjection;

namespace Buddy.Native;

/// <summary>What a buddy_arena handle points to: the arena and, once asked for, its reporter.</summary>
internal sealed class NativeArena
{
    private readonly Lock gate = new();
    private readonly NativeOptions options;
    private readonly PageReporterOptions reporterOptions;
    private PageReporter? reporter;
    private IReportingDevice? device;

    /// <summary>Checks every option before anything is built, so a refusal leaves nothing behind.</summary>
    public NativeArena(NativeOptions options)
    {
        if ((options.Flags & ~NativeOptions.KnownFlags) != 0)
            throw new ArgumentOutOfRangeException("flags", options.Flags, $"Unknown flag bits 0x{options.Flags & ~NativeOptions.KnownFlags:x}: flags take BUDDY_FLAG_* only.");
        if (options.Backing > 1)
            throw new ArgumentOutOfRangeException("backing", options.Backing, "Backing must be BUDDY_BACKING_ALIGNED_ALLOC (0) or BUDDY_BACKING_RESERVE (1).");
        if ((options.Pressure & ~NativeOptions.KnownPressure) != 0)
            throw new ArgumentOutOfRangeException("pressure", options.Pressure, $"Unknown pressure bits 0x{options.Pressure & ~NativeOptions.KnownPressure:x}: pressure takes BUDDY_PRESSURE_* only.");
        uint floorKiB = options.FloorKiB == 0 ? 64 : options.FloorKiB;
        if (!uint.IsPow2(floorKiB) || (long)floorKiB << 10 < Environment.SystemPageSize || floorKiB > 2048)
            throw new ArgumentOutOfRangeException("floor_kib", options.FloorKiB, "floor_kib must be 0 (64) or a power of two from one page to 2048 KiB.");
        if (options.Device > 2)
            throw new ArgumentOutOfRangeException("device", options.Device, "Device must be BUDDY_DEVICE_DEFAULT (0), BUDDY_DEVICE_MADV_FREE (1) or BUDDY_DEVICE_NONE (2).");
        if (options.DeviceDelayMs > MaxDelayMs)
            throw new ArgumentOutOfRangeException("device_delay_ms", options.DeviceDelayMs, $"device_delay_ms must be at most {MaxDelayMs} (an hour).");
        if (options.Size > long.MaxValue)
            throw new ArgumentOutOfRangeException("size", options.Size, "size must be a multiple of 4 MiB below 2^63.");
        if (options.ZoneCount > int.MaxValue)
            throw new ArgumentOutOfRangeException("zone_count", options.ZoneCount, "zone_count must be 0 (automatic) or a count of zones per section.");
        if (options.Reserved != 0)
            throw new ArgumentOutOfRangeException("reserved", options.Reserved, "reserved must be 0.");
        this.options = options;
        var arenaOptions = new ArenaOptions
        {
            Size = (long)options.Size,
            // A growing arena's sections are the size it starts with.
            SectionSize = options.MaximumSizeMiB == 0 ? 0 : (long)options.Size,
            MaximumSize = (long)options.MaximumSizeMiB << 20,
            ZoneCount = (int)options.ZoneCount,
            Backing = options.Backing == 1 ? ArenaBacking.Reserve : ArenaBacking.AlignedAlloc,
            PoisonFreedMemory = (options.Flags & NativeOptions.Poison) != 0,
            ValidateOnFree = (options.Flags & NativeOptions.Validate) != 0,
            TransparentHugePages = (options.Flags & NativeOptions.HugePages) != 0,
            PopulateReportedBlocks = (options.Flags & NativeOptions.Populate) != 0,
            ReportWaitTimeout = options.ReportWaitTimeoutMs == 0 ? TimeSpan.FromSeconds(30) : TimeSpan.FromMilliseconds(options.ReportWaitTimeoutMs),
        };
        reporterOptions = new PageReporterOptions
        {
            Delay = TimeSpan.FromMilliseconds(options.ReportDelayMs == 0 ? 2000 : options.ReportDelayMs),
            Mode = (options.Flags & NativeOptions.InPlace) != 0 ? ReportingMode.InPlace : ReportingMode.Isolate,
            // Pages are 4 KiB (the arena's default), so a floor of 2^k KiB is order k - 2.
            FloorOrder = System.Numerics.BitOperations.Log2(floorKiB) - System.Numerics.BitOperations.Log2(4),
            IdleTime = options.IdleMs switch
            {
                0 => TimeSpan.FromSeconds(10),
                uint.MaxValue => Timeout.InfiniteTimeSpan,
                uint ms => TimeSpan.FromMilliseconds(ms),
            },
            PressureSources = options.Pressure switch
            {
                0 => PressureSources.All,
                uint bits when (bits & NativeOptions.PressureOff) != 0 => PressureSources.None,
                uint bits => (PressureSources)bits,
            },
            HintDelay = options.HintDelayMs == 0 ? Timeout.InfiniteTimeSpan : TimeSpan.FromMilliseconds(options.HintDelayMs),
        };
        // Both checked before anything is built: a refused create reserves, maps and names nothing.
        arenaOptions.Validate();
        reporterOptions.Validate(arenaOptions);
        Arena = new BuddyArena(arenaOptions);
    }

    private const uint MaxDelayMs = 3_600_000;

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
                    1 => new MadviseFreeDevice(),
                    2 => new NullReportingDevice(),
                    _ => ReportingDevices.CreateDefault(),
                };
                try
                {
                    IReportingDevice used = options.DeviceDelayMs == 0 ? real : new SlowDevice(TimeSpan.FromMilliseconds(options.DeviceDelayMs), real);
                    reporter = new PageReporter(Arena, used, reporterOptions);
                }
                catch
                {
                    (real as IDisposable)?.Dispose();
                    throw;
                }
                device = real;
                return reporter;
            }
        }
    }

    public PageReporter? ExistingReporter
    {
        get { lock (gate) return reporter; }
    }

    /// <summary>
    /// Stops the reporter and waits for any pass in progress (PageReporter.Dispose does both) before
    /// the device and the arena go, so no report runs on a disposed device or on unmapped memory.
    /// </summary>
    public void Destroy()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(Arena.IsDisposed, Arena);
            reporter?.Dispose();
            (device as IDisposable)?.Dispose();
            Arena.Dispose();
        }
    }
}
