using Buddy.Reporting.Scheduling;

namespace Buddy.Reporting;

/// <summary>What a pass did, and the work it left for a later one.</summary>
/// <param name="Result">What the pass reported.</param>
/// <param name="CachesBusy">Busy threads' caches held blocks at the last timed pass.</param>
/// <param name="YoungLeft">The last timed pass left unreported blocks freed in the current round.</param>
/// <param name="HintedLeft">With the hint tier: hinted memory of report order or more is left to report.</param>
/// <param name="Stopped">The thread's pass did not run: a Stop or Dispose came first.</param>
internal readonly record struct PassReport(ReportingPassResult Result, bool CachesBusy, bool YoungLeft, bool HintedLeft = false, bool Stopped = false)
{
    public static readonly PassReport NotRun = new(default, false, false, Stopped: true);
}

/// <summary>
/// One reporting pass over an arena (Linux's page_reporting_process_zone for every zone): drain the
/// thread caches it may, then per zone hand scatterlists of isolated free blocks to the device until
/// the zone has none, the budget is spent, a call fails or the pass is told to stop. One pass at a
/// time: the caller holds the reporter's pass lock, which also guards the fields here.
/// </summary>
internal sealed class ReportingPass
{
    private readonly BuddyArena arena;
    private readonly IReportingDevice device;
    private readonly IReportingDevice? hintDevice;
    private readonly PageReporterOptions options;
    private readonly TimeProvider time;
    private readonly ReporterCounters counters;
    private readonly ReporterInstruments instruments;
    private readonly Action<string, Exception?> recordError;
    private readonly FreeBlock[] batch;
    private readonly ReportScatterlist reportScatterlist, hintScatterlist;
    private readonly int reportOrder, floorOrder;
    private bool cachesBusy, youngLeft;

    /// <summary>A pass over <paramref name="arena"/>; <paramref name="hintDevice"/> is the hint tier's device, null when the options turn the tier off.</summary>
    public ReportingPass(BuddyArena arena, IReportingDevice device, IReportingDevice? hintDevice, PageReporterOptions options, TimeProvider time,
        ReporterCounters counters, ReporterInstruments instruments, Action<string, Exception?> recordError)
    {
        (this.arena, this.device, this.hintDevice, this.options, this.time) = (arena, device, hintDevice, options, time);
        (this.counters, this.instruments, this.recordError) = (counters, instruments, recordError);
        reportOrder = options.ResolveReportOrder(arena);
        floorOrder = options.ResolveFloorOrder(arena);
        batch = new FreeBlock[options.Capacity];
        reportScatterlist = ReportScatterlist;
        hintScatterlist = HintScatterlist;
    }

    /// <summary>Runs a pass of <paramref name="kind"/>; <paramref name="stopped"/> ends it after the scatterlist in hand.</summary>
    public PassReport Run(PassKind kind, Func<bool> stopped)
    {
        bool hints = hintDevice is not null;
        // With the hint tier, a look that finds caches holding memory drains them into the hint tier.
        if (hints && kind == PassKind.Caches) kind = PassKind.Hint;
        PassReport report = kind == PassKind.Hint ? Hint(stopped) : Report(kind, hints, stopped);
        return hints ? report with { HintedLeft = arena.HintedFreeBytes(floorOrder) > 0 } : report;
    }

    /// <summary>The hint tier: idle caches home, then fresh blocks free for half a hint delay offered to the OS.</summary>
    private PassReport Hint(Func<bool> stopped)
    {
        var totals = new PassTotals();
        bool agedOnly = options.HintDelay > TimeSpan.Zero;
        var scope = new PassScope(floorOrder, long.MaxValue, IgnoreThreshold: true, agedOnly, FreeBlockSelection.Fresh, hintScatterlist);
        arena.DrainIdleCaches();
        ReportZones(scope, stopped, ref totals);
        (long drained, long busyBytes) = arena.DrainIdleCaches();
        cachesBusy = busyBytes > 0;
        if (drained > 0 && totals.Failures == 0) ReportZones(scope, stopped, ref totals);
        youngLeft = agedOnly && arena.HasYoungFreeBlocks(floorOrder);
        counters.Pass(PassKind.Hint);
        return new PassReport(new ReportingPassResult(totals.Blocks, totals.Bytes, totals.Calls, totals.Failures, false), cachesBusy, youngLeft);
    }

    /// <summary>
    /// The report tier. With the hint tier before it, a timed pass reports only hinted blocks, down to
    /// the floor order: fragments that stayed offered for a report delay go back too, not only after idleness.
    /// </summary>
    private PassReport Report(PassKind kind, bool hints, Func<bool> stopped)
    {
        var totals = new PassTotals();
        bool deep = kind is PassKind.Idle or PassKind.Pressure;
        // A timed pass reports what has been free for a delay; with no delay, everything. Hinted
        // blocks have been free for half a hint delay at least, so a pass that takes only them needs no age.
        bool timed = kind is PassKind.Automatic or PassKind.Caches;
        FreeBlockSelection selection = hints && timed ? FreeBlockSelection.Hinted : FreeBlockSelection.Unreported;
        bool agedOnly = timed && !hints && options.Delay > TimeSpan.Zero;
        var scope = new PassScope(deep || selection == FreeBlockSelection.Hinted ? floorOrder : reportOrder, kind == PassKind.Pressure ? long.MaxValue : options.BudgetBytesPerPass,
            IgnoreThreshold: !timed || selection == FreeBlockSelection.Hinted, agedOnly, selection, reportScatterlist);
        if (timed && !hints) youngLeft = false;
        bool worked;
        // Blocks parked in thread caches go home first, so they can merge and be reported. Asked for
        // a pass now, or short of memory, every cache goes. Otherwise a cache goes if its thread neither
        // allocated nor freed since the last look: the previous pass, then (once what is free has been
        // reported) the start of this one. Busy caches stay with their owners, and a pass comes back for them.
        if (kind is PassKind.Now or PassKind.Pressure)
        {
            arena.DrainThreadCaches();
            // Short of memory, free added sections go offline at once rather than after their idle
            // time: all their memory goes back, and a PinnedArray section stops counting toward the GC's heap.
            if (kind == PassKind.Pressure) arena.RemoveFreeSections();
            worked = ReportZones(scope, stopped, ref totals);
        }
        else
        {
            arena.DrainIdleCaches();
            worked = ReportZones(scope, stopped, ref totals);
            (long drained, long busyBytes) = arena.DrainIdleCaches();
            cachesBusy = busyBytes > 0;
            if (drained > 0 && totals.Failures == 0 && !totals.BudgetExhausted) worked |= ReportZones(scope, stopped, ref totals);
        }
        // With the hint tier, young blocks are the hint pass's to come back for, not a report pass's.
        if (!worked) return new PassReport(default, cachesBusy, youngLeft && !hints);
        if (agedOnly) youngLeft = arena.HasYoungFreeBlocks(reportOrder);
        counters.Pass(kind);
        var result = new ReportingPassResult(totals.Blocks, totals.Bytes, totals.Calls, totals.Failures, totals.BudgetExhausted);
        return new PassReport(result, cachesBusy, youngLeft && !hints);
    }

    /// <summary>
    /// What a pass may take: down to which order, how much, whether the threshold applies, only blocks
    /// free for a delay, which runs of the lists, and the device call that hands them over.
    /// </summary>
    private readonly record struct PassScope(int MinOrder, long Budget, bool IgnoreThreshold, bool AgedOnly,
        FreeBlockSelection Selection, ReportScatterlist Scatterlist);

    private struct PassTotals
    {
        public long Blocks, Bytes, Calls, Failures;
        public bool BudgetExhausted;
    }

    /// <summary>Hands what is free to the scope's device, zone by zone, within the budget; false when the threshold turned the pass away.</summary>
    private bool ReportZones(PassScope scope, Func<bool> stopped, ref PassTotals totals)
    {
        if (!scope.IgnoreThreshold && arena.UnreportedFreeBytes(reportOrder) < Math.Max(1, options.ThresholdBytes))
            return false;
        for (int zone = 0; zone < arena.ZoneCount && totals.Failures == 0 && !totals.BudgetExhausted; zone++)
        {
            while (!stopped())
            {
                if (totals.Bytes >= scope.Budget)
                {
                    totals.BudgetExhausted = true;
                    break;
                }
                ReportedBatch reported = arena.ReportFreeBlocks(zone, scope.MinOrder, options.Mode, batch, scope.Scatterlist, scope.AgedOnly, scope.Selection);
                if (reported.Blocks == 0) break;
                totals.Calls++;
                if (reported.Outcome == ReportOutcome.Failed)
                {
                    // Stop the pass: the blocks are back as they were, and the next pass retries them.
                    totals.Failures++;
                    break;
                }
                totals.Blocks += reported.Blocks;
                totals.Bytes += reported.Bytes;
            }
        }
        return true;
    }

    /// <summary>
    /// Hands one scatterlist to the device, outside every zone lock. Whatever the device does, even
    /// throwing from a property, this returns an outcome, and the arena puts the blocks back by it.
    /// </summary>
    private ReportOutcome ReportScatterlist(ReadOnlySpan<FreeBlock> blocks)
    {
        long start = time.GetTimestamp();
        ReportOutcome outcome = Call(device, blocks) ? ReportedOutcome() : ReportOutcome.Failed;
        TimeSpan took = time.GetElapsedTime(start);
        instruments.Duration.Record(took.TotalSeconds, new KeyValuePair<string, object?>(ArenaMetrics.ArenaTag, arena.Name));
        counters.DeviceCall(took, outcome == ReportOutcome.Failed, blocks.Length, BytesOf(blocks));
        return outcome;
    }

    /// <summary>Offers one scatterlist to the hint device, outside every zone lock; the blocks go back hinted or as they were.</summary>
    private ReportOutcome HintScatterlist(ReadOnlySpan<FreeBlock> blocks)
    {
        ReportOutcome outcome = Call(hintDevice!, blocks) ? ReportOutcome.Hinted : ReportOutcome.Failed;
        counters.HintCall(outcome == ReportOutcome.Failed, blocks.Length, BytesOf(blocks));
        return outcome;
    }

    /// <summary>How reported blocks go back: zeroed when the device says so; failed when even asking it throws.</summary>
    private ReportOutcome ReportedOutcome()
    {
        try
        {
            return device.ZeroesMemory ? ReportOutcome.ReportedZeroed : ReportOutcome.Reported;
        }
        catch (Exception e)
        {
            recordError($"{DeviceName(device)} threw {e.GetType().Name}: {e.Message}", e);
            return ReportOutcome.Failed;
        }
    }

    /// <summary>One device call: true when it reported every range; a false return or a throw is recorded.</summary>
    private bool Call(IReportingDevice target, ReadOnlySpan<FreeBlock> blocks)
    {
        try
        {
            if (target.Report(blocks)) return true;
            recordError($"{DeviceName(target)} reported failure for {blocks.Length} blocks", null);
        }
        catch (Exception e)
        {
            recordError($"{DeviceName(target)} threw {e.GetType().Name}: {e.Message}", e);
        }
        return false;
    }

    private static long BytesOf(ReadOnlySpan<FreeBlock> blocks)
    {
        long bytes = 0;
        foreach (FreeBlock block in blocks) bytes += block.Length;
        return bytes;
    }

    private static string DeviceName(IReportingDevice target)
    {
        try
        {
            return target.Name;
        }
        catch (Exception)
        {
            return target.GetType().Name;
        }
    }
}
