using System.Diagnostics;

namespace Buddy.Reporting;

/// <summary>
/// Free page reporting for one arena (Linux's mm/page_reporting.c). A background thread, woken
/// when a free block of report order or more appears, waits <see cref="PageReporterOptions.Delay"/>,
/// then per zone takes up to Capacity unreported free blocks, hands them to the device as one
/// scatterlist, and puts them back marked Reported. Reported blocks are never scanned again.
/// </summary>
public sealed class PageReporter : IFreeBlockListener, IDisposable
{
    private const int Idle = 0, Requested = 1, Active = 2;

    private readonly BuddyArena arena;
    private readonly IReportingDevice device;
    private readonly PageReporterOptions options;
    private readonly int reportOrder;
    private readonly FreeBlock[] batch;
    private readonly Lock passLock = new();
    private readonly Lock lifecycle = new();
    private readonly Lock statsLock = new();
    private readonly AutoResetEvent wake = new(false);
    private readonly ManualResetEventSlim stopSignal = new(false);
    private Thread? thread;
    private int state;
    private bool disposed;

    private long passes, deviceCalls, reportedBlocks, reportedBytes, failedReports, deviceTicks, longestDeviceTicks;
    private string? lastError;

    public PageReporter(BuddyArena arena, IReportingDevice device, PageReporterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(arena);
        ArgumentNullException.ThrowIfNull(device);
        options ??= new PageReporterOptions();
        options.Validate(arena);
        this.arena = arena;
        this.device = device;
        this.options = options;
        reportOrder = options.ResolveReportOrder(arena);
        batch = new FreeBlock[options.Capacity];
        arena.SetFreeBlockListener(this, reportOrder);
        ReporterMetrics.Register(this);
    }

    internal string ArenaName => arena.Name;

    public PageReporterOptions Options => options;

    public IReportingDevice Device => device;

    public int ReportOrder => reportOrder;

    public bool IsRunning
    {
        get { lock (lifecycle) return thread is not null; }
    }

    /// <summary>Starts the background thread; it runs a first pass one delay from now. Starting twice is harmless.</summary>
    public void Start()
    {
        lock (lifecycle)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (thread is not null) return;
            stopSignal.Reset();
            Volatile.Write(ref state, Requested);
            thread = new Thread(Run) { IsBackground = true, Name = "Buddy page reporter" };
            thread.Start();
            wake.Set();
        }
    }

    /// <summary>Stops the thread after the scatterlist in hand, if any, is back on the free lists.</summary>
    public void Stop()
    {
        Thread? running;
        lock (lifecycle)
        {
            running = thread;
            thread = null;
            if (running is null) return;
            stopSignal.Set();
            wake.Set();
        }
        running.Join();
        Volatile.Write(ref state, Idle);
    }

    /// <summary>Runs one full pass on the calling thread now, whatever the delay and threshold.</summary>
    public ReportingPassResult ReportNow()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref disposed), this);
        return RunPass(ignoreThreshold: true);
    }

    /// <summary>Runs one full pass on the thread pool.</summary>
    public Task<ReportingPassResult> ReportNowAsync(CancellationToken cancellationToken = default)
        => Task.Run(ReportNow, cancellationToken);

    public ReporterStatistics GetStatistics()
    {
        lock (statsLock)
            return new ReporterStatistics(passes, deviceCalls, reportedBlocks, reportedBytes, failedReports,
                Stopwatch.GetElapsedTime(0, deviceTicks), Stopwatch.GetElapsedTime(0, longestDeviceTicks), lastError);
    }

    void IFreeBlockListener.OnFreeBlock(int zone, int order)
    {
        // Cheap on the allocator's path: one read while a pass is already requested.
        if (Volatile.Read(ref state) == Requested) return;
        if (Interlocked.Exchange(ref state, Requested) == Idle) wake.Set();
    }

    public void Dispose()
    {
        lock (lifecycle)
        {
            if (disposed) return;
            disposed = true;
        }
        Stop();
        ReporterMetrics.Unregister(this);
        arena.SetFreeBlockListener(null);
        wake.Dispose();
        stopSignal.Dispose();
    }

    private void Run()
    {
        try
        {
            while (true)
            {
                WaitHandle.WaitAny([wake, stopSignal.WaitHandle]);
                if (stopSignal.IsSet || stopSignal.Wait(options.Delay)) return;
                Volatile.Write(ref state, Active);
                ReportingPassResult result = RunPass(ignoreThreshold: false);
                // Frees during the pass asked for another; so does work left over by the budget.
                if (Interlocked.CompareExchange(ref state, Idle, Active) != Active || result.BudgetExhausted)
                {
                    Volatile.Write(ref state, Requested);
                    wake.Set();
                }
            }
        }
        catch (ObjectDisposedException)
        {
            // The arena went away under the reporter: nothing is left to report.
        }
    }

    private ReportingPassResult RunPass(bool ignoreThreshold)
    {
        lock (passLock)
        {
            // Small blocks parked in per-CPU caches go home first, so they can merge and be reported.
            arena.DrainPerCpuCaches();
            if (!ignoreThreshold && arena.UnreportedFreeBytes(reportOrder) < Math.Max(1, options.ThresholdBytes))
                return default;
            long blocks = 0, bytes = 0, calls = 0, failures = 0;
            bool budgetExhausted = false;
            for (int zone = 0; zone < arena.ZoneCount && failures == 0 && !budgetExhausted; zone++)
            {
                while (!stopSignal.IsSet)
                {
                    if (bytes >= options.BudgetBytesPerPass)
                    {
                        budgetExhausted = true;
                        break;
                    }
                    int count = arena.BeginReport(zone, reportOrder, options.Mode, batch);
                    if (count == 0) break;
                    long batchBytes = ReportBatch(batch.AsSpan(0, count), zone);
                    calls++;
                    if (batchBytes < 0)
                    {
                        // Stop the pass: the blocks are back unreported, and the next pass retries them.
                        failures++;
                        break;
                    }
                    blocks += count;
                    bytes += batchBytes;
                }
            }
            lock (statsLock) passes++;
            return new ReportingPassResult(blocks, bytes, calls, failures, budgetExhausted);
        }
    }

    /// <summary>
    /// Hands one scatterlist to the device and always puts the blocks back. Returns the bytes
    /// reported, or -1 when the device failed. Statistics count it at once, so they follow a long pass.
    /// </summary>
    private long ReportBatch(ReadOnlySpan<FreeBlock> blocks, int zone)
    {
        bool reported = false;
        long start = Stopwatch.GetTimestamp(), ticks = 0;
        try
        {
            reported = device.Report(blocks);
            if (!reported) RecordError($"{device.Name} reported failure for {blocks.Length} blocks");
        }
        catch (Exception e)
        {
            RecordError($"{device.Name} threw {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            ticks = Stopwatch.GetTimestamp() - start;
            arena.EndReport(zone, blocks, reported, reported && device.ZeroesMemory);
        }
        long bytes = 0;
        foreach (FreeBlock block in blocks) bytes += block.Length;
        ReporterMetrics.Duration.Record(Stopwatch.GetElapsedTime(0, ticks).TotalSeconds,
            new KeyValuePair<string, object?>(ArenaMetrics.ArenaTag, arena.Name));
        lock (statsLock)
        {
            deviceCalls++;
            deviceTicks += ticks;
            longestDeviceTicks = Math.Max(longestDeviceTicks, ticks);
            if (reported)
            {
                reportedBlocks += blocks.Length;
                reportedBytes += bytes;
            }
            else
            {
                failedReports++;
            }
        }
        return reported ? bytes : -1;
    }

    private void RecordError(string message)
    {
        lock (statsLock) lastError = message;
    }
}
