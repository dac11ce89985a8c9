using System.Diagnostics;
using Buddy.Reporting.Pressure;

namespace Buddy.Reporting;

/// <summary>
/// Free page reporting for one arena (Linux's mm/page_reporting.c). A background thread, woken
/// when a free block of report order or more appears, waits <see cref="PageReporterOptions.Delay"/>,
/// then per zone takes up to Capacity unreported free blocks, hands them to the device as one
/// scatterlist, and puts them back marked Reported. Reported blocks are never scanned again.
/// </summary>
/// <remarks>
/// Start, Stop and Dispose serialise on one lock that Stop holds across the join, so Stop returns
/// only once the thread is gone and its scatterlist is back, whatever other lifecycle calls race
/// with it. Each Start makes a <see cref="Worker"/> with its own stop flag, so a stopping thread can
/// never see a later Start's state. Wake-ups go through a monitor, not a disposable event, so a
/// free that races with Dispose cannot throw.
/// </remarks>
public sealed class PageReporter : IFreeBlockListener, IDisposable
{
    // The request state, written by frees without a lock:
    // Idle: nothing asked for. Requested: a pass is due (a free asked, or Start). Active: a pass runs.
    private const int Idle = 0, Requested = 1, Active = 2;

    private readonly BuddyArena arena;
    private readonly IReportingDevice device;
    private readonly PageReporterOptions options;
    private readonly TimeProvider time;
    private readonly PressureEpisodes episodes;
    private readonly ReporterInstruments instruments;
    private readonly int reportOrder;
    private readonly int floorOrder;
    private readonly FreeBlock[] batch;
    private readonly ReportScatterlist reportScatterlist;
    /// <summary>One pass at a time; Dispose takes it so no pass outlives the reporter.</summary>
    private readonly Lock passLock = new();
    /// <summary>Start, Stop and Dispose; never taken on the reporter thread.</summary>
    private readonly Lock lifecycle = new();
    /// <summary>Monitor for the thread's waits: requests, the delay timer and stop.</summary>
    private readonly object signal = new();
    private readonly Lock statsLock = new();
    private volatile Worker? worker;
    private int state;
    private bool disposed;
    private bool passesClosed;
    /// <summary>Counts Stop and Dispose calls: a pass that sees it change ends after its scatterlist in hand.</summary>
    private long stops;
    /// <summary>Set by Dispose before it waits for passes: a pass that starts after it does no work.</summary>
    private volatile bool closing;
    private bool waitingForDelay;
    /// <summary>Busy threads' caches held blocks at the last automatic pass (pass lock held to write).</summary>
    private volatile bool cachesBusy;
    /// <summary>The last timed pass left unreported blocks freed in the current round (reporter thread and passes).</summary>
    private volatile bool youngLeft;
    private bool waitingForWork;
    private int liveThreads;
    private long wakeups, rounds;
    private long looks;
    /// <summary>A source (or the host) signalled pressure since the thread last looked (signal monitor).</summary>
    private bool pressureSignaled;
    /// <summary>Pressure lasts until this timestamp on the reporter's clock, two poll intervals past the last signal.</summary>
    private long pressureUntil;
    private MemoryPressureMonitor? pressureMonitor;
    /// <summary>Arena activity as the parked thread last saw it (reporter thread only).</summary>
    private long opsSeen = -1, activitySeenAt, opsAtIdlePass = -1;
    private ReportOutcome lastOutcome;
    private long lastBytes;

    private long passes, deviceCalls, reportedBlocks, reportedBytes, failedReports, failuresInARow, deviceTicks, longestDeviceTicks, passTicks;
    private long idlePasses, pressurePasses, pressureSignals;
    private string? lastError;

    /// <param name="arena">The arena to report; one reporter per arena.</param>
    /// <param name="device">Where reported memory goes.</param>
    /// <param name="options">Reporting policy; null takes the defaults.</param>
    /// <param name="timeProvider">The clock for the delay and device timings; null takes the arena's.</param>
    public PageReporter(BuddyArena arena, IReportingDevice device, PageReporterOptions? options = null, TimeProvider? timeProvider = null)
    {
        ArgumentNullException.ThrowIfNull(arena);
        ArgumentNullException.ThrowIfNull(device);
        ObjectDisposedException.ThrowIf(arena.IsDisposed, arena);
        options ??= new PageReporterOptions();
        options.Validate(arena);
        this.arena = arena;
        this.device = device;
        this.options = options;
        time = timeProvider ?? arena.TimeProvider;
        reportOrder = options.ResolveReportOrder(arena);
        floorOrder = options.ResolveFloorOrder(arena);
        batch = new FreeBlock[options.Capacity];
        reportScatterlist = ReportScatterlist;
        instruments = ReporterInstruments.For(arena.Meter);
        episodes = new PressureEpisodes(time, 2 * options.PressurePollInterval, RaisePressureChanged);
        arena.Subscribe(this, reportOrder);
        instruments.Register(this);
    }

    internal string ArenaName => arena.Name;

    /// <summary>A cgroup to watch instead of the process's own, from the next Start (tests watch a child group they made).</summary>
    internal CgroupMemory? WatchedGroup { get; set; }

    public PageReporterOptions Options => options;

    public IReportingDevice Device => device;

    public int ReportOrder => reportOrder;

    /// <summary>The smallest order reported when the arena is idle or memory is short.</summary>
    public int FloorOrder => floorOrder;

    public bool IsRunning => worker is not null;

    /// <summary>True while the thread waits out the delay before a pass (tests drive time from here).</summary>
    internal bool IsWaitingForDelay
    {
        get { lock (signal) return waitingForDelay; }
    }

    /// <summary>True while the thread is parked: waiting for a free to ask for a pass, for pressure, or for its next look.</summary>
    internal bool IsWaitingForWork
    {
        get { lock (signal) return waitingForWork; }
    }

    /// <summary>Times the parked thread has looked at the thread caches and the arena's idleness (every delay).</summary>
    internal long Looks => Interlocked.Read(ref looks);

    /// <summary>Passes the thread has begun, including those the threshold turned away.</summary>
    internal long Wakeups => Interlocked.Read(ref wakeups);

    /// <summary>Report rounds this reporter has started, one halfway through each delay.</summary>
    internal long Rounds => Interlocked.Read(ref rounds);

    /// <summary>This reporter's threads alive now: at most one, and none once Stop has returned.</summary>
    internal int LiveThreads => Volatile.Read(ref liveThreads);

    /// <summary>Starts the background thread; it runs a first pass one delay from now. Starting twice is harmless.</summary>
    public void Start()
    {
        RefuseOnOwnThread();
        lock (lifecycle)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (worker is not null) return;
            var next = new Worker();
            next.Thread = new Thread(() => Run(next)) { IsBackground = true, Name = "Buddy page reporter" };
            // The monitor first: the thread's first pass polls it.
            pressureMonitor = WatchedGroup is { } group
                ? MemoryPressureMonitor.ForGroup(group, options, time, HeldBytes, SignalPressure, RecordError)
                : MemoryPressureMonitor.Start(options, time, HeldBytes, SignalPressure, RecordError);
            lock (signal) state = Requested;
            next.Thread.Start();
            worker = next;
        }
    }

    /// <summary>
    /// Stops the thread and returns once it has ended and its scatterlist in hand, if any, is back on
    /// the free lists. A pass running on another thread (ReportNow) ends after its scatterlist in
    /// hand. Stopping a stopped reporter is harmless.
    /// </summary>
    public void Stop()
    {
        RefuseOnOwnThread();
        lock (lifecycle) StopLocked();
    }

    /// <summary>Runs one full pass on the calling thread now, whatever the delay and threshold.</summary>
    public ReportingPassResult ReportNow() => RunPass(PassKind.Now, self: null);

    /// <summary>
    /// Tells the running reporter that memory is short: it reports at once, down to <see cref="FloorOrder"/>,
    /// with no budget, every thread cache included, and keeps doing so for any free that follows until
    /// two <see cref="PageReporterOptions.PressurePollInterval"/>s pass without another signal. The
    /// configured sources call this; a host that knows better can too. A stopped reporter only counts it.
    /// </summary>
    public void SignalPressure()
    {
        Interlocked.Increment(ref pressureSignals);
        lock (signal)
        {
            pressureSignaled = true;
            pressureUntil = time.GetTimestamp() + (long)(2 * options.PressurePollInterval.TotalSeconds * time.TimestampFrequency);
            Monitor.PulseAll(signal);
        }
        episodes.OnSignal();
    }

    /// <summary>Free memory the reporter could hand back now: unreported blocks down to the floor and thread caches.</summary>
    private long HeldBytes()
    {
        try
        {
            return arena.UnreportedFreeBytes(floorOrder) + arena.CachedBytes();
        }
        catch (ObjectDisposedException) when (arena.IsDisposed)
        {
            return 0;
        }
    }

    /// <summary>Runs one full pass on the thread pool.</summary>
    public Task<ReportingPassResult> ReportNowAsync(CancellationToken cancellationToken = default)
        => Task.Run(ReportNow, cancellationToken);

    /// <summary>
    /// Raised on the thread that met the failure (usually the reporter's) each time a device call or a
    /// pass fails; the same message is kept in <see cref="ReporterStatistics.LastError"/>. A handler
    /// that throws is ignored: logging must not stop reporting.
    /// </summary>
    public event Action<ReporterFailure>? Failed;

    /// <summary>
    /// Raised when memory pressure begins (the first signal after a quiet stretch) and when it ends
    /// (two <see cref="PageReporterOptions.PressurePollInterval"/>s with no signal), on the signalling
    /// thread and on a timer of the reporter's clock. A handler that throws is ignored.
    /// </summary>
    public event Action<PressureEpisode>? PressureChanged;

    private void RaisePressureChanged(PressureEpisode episode)
    {
        try
        {
            PressureChanged?.Invoke(episode);
        }
        catch (Exception)
        {
            // Logging must not stop reporting.
        }
    }

    public ReporterStatistics GetStatistics()
    {
        lock (statsLock)
            return new ReporterStatistics(passes, deviceCalls, reportedBlocks, reportedBytes, failedReports,
                TimeSpan.FromTicks(deviceTicks), TimeSpan.FromTicks(longestDeviceTicks), lastError, TimeSpan.FromTicks(passTicks),
                idlePasses, pressurePasses, Interlocked.Read(ref pressureSignals), failuresInARow);
    }

    void IFreeBlockListener.OnFreeBlock(int zone, int order)
    {
        // Cheap on the allocator's path: one read while a pass is already requested.
        if (Volatile.Read(ref state) == Requested) return;
        if (Interlocked.Exchange(ref state, Requested) != Idle) return;
        lock (signal) Monitor.PulseAll(signal);
    }

    /// <summary>Stops the thread, waits for a pass running on another thread, and leaves the arena.</summary>
    public void Dispose()
    {
        RefuseOnOwnThread();
        lock (lifecycle)
        {
            if (disposed) return;
            StopLocked();
            disposed = true;
            closing = true;
        }
        lock (passLock) passesClosed = true;
        episodes.Dispose();
        arena.Unsubscribe(this);
        instruments.Unregister(this);
    }

    /// <summary>
    /// Lifecycle calls from a device (on the reporter's thread, or inside any pass) would wait for
    /// the very pass that calls them: refused before any lock is taken.
    /// </summary>
    private void RefuseOnOwnThread()
    {
        if (worker?.Thread == Thread.CurrentThread || passLock.IsHeldByCurrentThread)
            throw new InvalidOperationException("Start, Stop and Dispose cannot be called from inside a reporting pass (from a device): the pass would wait for itself.");
    }

    private void StopLocked()
    {
        // Ends a pass running on any thread (ReportNow included) after its scatterlist in hand.
        Interlocked.Increment(ref stops);
        Worker? running = worker;
        if (running is null) return;
        pressureMonitor?.Dispose();
        pressureMonitor = null;
        lock (signal)
        {
            running.StopRequested = true;
            Monitor.PulseAll(signal);
        }
        running.Thread.Join();
        worker = null;
        lock (signal) state = Idle;
    }

    private void Run(Worker self)
    {
        Interlocked.Increment(ref liveThreads);
        try
        {
            RunLoop(self);
        }
        catch (Exception e)
        {
            // Only the injected clock can get here (a pass records its own failures): end the thread, say why.
            RecordError($"The reporter thread ended: {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            Interlocked.Decrement(ref liveThreads);
        }
    }

    private void RunLoop(Worker self)
    {
        while (WaitForWork(self, out PassKind kind))
        {
            // A free's request waits out the delay, so frees batch up; under pressure nothing waits.
            if (kind == PassKind.Automatic) Volatile.Read(ref pressureMonitor)?.Poll();
            bool pressure = TakePressure();
            if (kind == PassKind.Automatic && !pressure)
            {
                if (!WaitForDelay(self)) return;
                pressure = TakePressure();
            }
            if (pressure) kind = PassKind.Pressure;
            Interlocked.Increment(ref wakeups);
            lock (signal) state = Active;
            if (!TryRunPass(self, kind, out ReportingPassResult result)) return;
            // Frees during the pass asked for another; so does work left over by the budget, in busy caches,
            // or in blocks too young for this pass.
            if (Interlocked.CompareExchange(ref state, Idle, Active) != Active || result.BudgetExhausted || cachesBusy || youngLeft)
                lock (signal) state = Requested;
        }
    }

    /// <summary>
    /// Waits for something to report: a free of report order asking for a pass (<see cref="PassKind.Automatic"/>),
    /// or a pressure signal. Blocks freed into thread caches never reach a zone, so no free announces
    /// them, and fragments below the report order announce nothing either: while the arena has caches
    /// or idle reporting is on, the thread also looks every delay. Caches holding free memory get a
    /// pass at once (which drains the quiet ones), as Linux's vmstat worker drains idle per-CPU lists;
    /// an arena with no allocation or free for <see cref="PageReporterOptions.IdleTime"/> gets one pass
    /// down to the floor order. False when stopped.
    /// </summary>
    private bool WaitForWork(Worker self, out PassKind kind)
    {
        kind = PassKind.Automatic;
        bool idleReporting = floorOrder < reportOrder && options.IdleTime != Timeout.InfiniteTimeSpan;
        TimeSpan lookEvery = options.Delay > TimeSpan.Zero ? options.Delay : TimeSpan.FromSeconds(1);
        bool looked = false;
        using ITimer? timer = arena.CachedOrders == 0 && !idleReporting ? null : time.CreateTimer(_ =>
        {
            lock (signal)
            {
                looked = true;
                Monitor.PulseAll(signal);
            }
        }, null, lookEvery, lookEvery);
        while (true)
        {
            lock (signal)
            {
                waitingForWork = true;
                while (!self.StopRequested && state != Requested && !looked && !pressureSignaled) Monitor.Wait(signal);
                waitingForWork = false;
                if (self.StopRequested) return false;
                if (state == Requested || pressureSignaled) return true;
                looked = false;
            }
            // Outside the monitor: frees take it while holding the cache lock this reads under.
            bool cachesHoldMemory, idle;
            try
            {
                cachesHoldMemory = arena.CachedBytes() > 0;
                idle = idleReporting && IdleLongEnough();
            }
            catch (ObjectDisposedException) when (arena.IsDisposed)
            {
                // The arena went first: nothing is left to report, and the thread ends as a pass would.
                return false;
            }
            Interlocked.Increment(ref looks);
            if (cachesHoldMemory || idle)
            {
                kind = idle ? PassKind.Idle : PassKind.Caches;
                return true;
            }
        }
    }

    /// <summary>True once per idle stretch: the arena has seen no allocation or free for the idle time.</summary>
    private bool IdleLongEnough()
    {
        long ops = arena.OperationCount();
        long now = time.GetTimestamp();
        if (ops != opsSeen)
        {
            (opsSeen, activitySeenAt) = (ops, now);
            return false;
        }
        if (ops == opsAtIdlePass || time.GetElapsedTime(activitySeenAt, now) < options.IdleTime) return false;
        opsAtIdlePass = ops;
        return true;
    }

    /// <summary>True while pressure lasts; clears the signal.</summary>
    private bool TakePressure()
    {
        lock (signal)
        {
            bool signaled = pressureSignaled;
            pressureSignaled = false;
            return signaled || time.GetTimestamp() < pressureUntil;
        }
    }

    /// <summary>
    /// Waits out the delay on the injected clock, starting a new report round halfway: a block freed
    /// in the second half is younger than half a delay and waits for the next pass. False when stopped meanwhile.
    /// </summary>
    private bool WaitForDelay(Worker self)
    {
        long started = time.GetTimestamp();
        TimeSpan half = options.Delay / 2;
        if (!WaitFor(self, half)) return false;
        arena.AdvanceReportRound();
        Interlocked.Increment(ref rounds);
        // Measured from the start, so a clock that jumped past the whole delay does not wait again.
        TimeSpan rest = options.Delay - time.GetElapsedTime(started);
        return rest <= TimeSpan.Zero || WaitFor(self, rest);
    }

    /// <summary>Waits <paramref name="span"/> on the injected clock, or until pressure; false when stopped meanwhile.</summary>
    private bool WaitFor(Worker self, TimeSpan span)
    {
        bool elapsed = span <= TimeSpan.Zero;
        using ITimer? timer = elapsed ? null : time.CreateTimer(_ =>
        {
            lock (signal)
            {
                elapsed = true;
                Monitor.PulseAll(signal);
            }
        }, null, span, Timeout.InfiniteTimeSpan);
        lock (signal)
        {
            waitingForDelay = true;
            while (!self.StopRequested && !elapsed && !pressureSignaled) Monitor.Wait(signal);
            waitingForDelay = false;
            return !self.StopRequested;
        }
    }

    /// <summary>Runs a pass on the thread; false when the arena is gone and the thread should end.</summary>
    private bool TryRunPass(Worker self, PassKind kind, out ReportingPassResult result)
    {
        result = default;
        try
        {
            result = RunPass(kind, self);
            return true;
        }
        catch (ObjectDisposedException) when (arena.IsDisposed)
        {
            return false;
        }
        catch (Exception e)
        {
            // Anything else is recorded and the thread goes on: an exception must not end the process.
            RecordError($"A reporting pass failed: {e.GetType().Name}: {e.Message}", e);
            return true;
        }
    }

    private ReportingPassResult RunPass(PassKind kind, Worker? self)
    {
        // The lock is reentrant; a pass started by a device inside a pass would reuse the batch in hand.
        if (passLock.IsHeldByCurrentThread)
            throw new InvalidOperationException("A reporting pass cannot be started from inside a pass (from a device).");
        lock (passLock)
        {
            ObjectDisposedException.ThrowIf(passesClosed, this);
            long started = time.GetTimestamp();
            try
            {
                return RunPassLocked(kind, self);
            }
            finally
            {
                TimeSpan took = time.GetElapsedTime(started);
                lock (statsLock) passTicks += took.Ticks;
            }
        }
    }

    /// <summary>A pass, with the pass lock held.</summary>
    private ReportingPassResult RunPassLocked(PassKind kind, Worker? self)
    {
        long stopsAtStart = Interlocked.Read(ref stops);
        var totals = new PassTotals();
        bool deep = kind is PassKind.Idle or PassKind.Pressure;
        // A timed pass reports what has been free for a delay; with no delay, everything.
        bool timed = kind is PassKind.Automatic or PassKind.Caches;
        bool agedOnly = timed && options.Delay > TimeSpan.Zero;
        var scope = new PassScope(deep ? floorOrder : reportOrder, kind == PassKind.Pressure ? long.MaxValue : options.BudgetBytesPerPass,
            IgnoreThreshold: !timed, AgedOnly: agedOnly);
        if (timed) youngLeft = false;
        bool worked;
        // Blocks parked in thread caches go home first, so they can merge and be reported. Asked for
        // a pass now, or short of memory, every cache goes. Otherwise a cache goes if its thread neither
        // allocated nor freed since the last look: the previous pass, then (once what is free has been
        // reported) the start of this one. Busy caches stay with their owners, and a pass comes back for them.
        if (kind is PassKind.Now or PassKind.Pressure)
        {
            arena.DrainPerCpuCaches();
            // Short of memory, free added sections go offline at once rather than after their idle
            // time: all their memory goes back, and a PinnedArray section stops counting toward the GC's heap.
            if (kind == PassKind.Pressure) arena.RemoveFreeSections();
            worked = ReportZones(scope, stopsAtStart, self, ref totals);
        }
        else
        {
            arena.DrainIdleCaches();
            worked = ReportZones(scope, stopsAtStart, self, ref totals);
            (long drained, long busyBytes) = arena.DrainIdleCaches();
            cachesBusy = busyBytes > 0;
            if (drained > 0 && totals.Failures == 0 && !totals.BudgetExhausted) worked |= ReportZones(scope, stopsAtStart, self, ref totals);
        }
        if (!worked) return default;
        if (agedOnly) youngLeft = arena.HasYoungFreeBlocks(reportOrder);
        lock (statsLock)
        {
            passes++;
            if (kind == PassKind.Idle) idlePasses++;
            if (kind == PassKind.Pressure) pressurePasses++;
        }
        return new ReportingPassResult(totals.Blocks, totals.Bytes, totals.Calls, totals.Failures, totals.BudgetExhausted);
    }

    /// <summary>Why a pass runs: it decides the smallest order, the budget and the threshold.</summary>
    private enum PassKind
    {
        /// <summary>A free of report order asked, one delay ago.</summary>
        Automatic,
        /// <summary>Thread caches held free memory when the parked thread looked.</summary>
        Caches,
        /// <summary>The arena stayed idle for the idle time: down to the floor order.</summary>
        Idle,
        /// <summary>Memory is short: at once, down to the floor order, every cache, no budget.</summary>
        Pressure,
        /// <summary>ReportNow: every cache, at report order, no threshold.</summary>
        Now,
    }

    /// <summary>What a pass may report: down to which order, how much, whether the threshold applies, and only blocks free for a delay.</summary>
    private readonly record struct PassScope(int MinOrder, long Budget, bool IgnoreThreshold, bool AgedOnly);

    private struct PassTotals
    {
        public long Blocks, Bytes, Calls, Failures;
        public bool BudgetExhausted;
    }

    /// <summary>Reports what is free, zone by zone, within the pass budget; false when the threshold turned the pass away.</summary>
    private bool ReportZones(PassScope scope, long stopsAtStart, Worker? self, ref PassTotals totals)
    {
        if (!scope.IgnoreThreshold && arena.UnreportedFreeBytes(reportOrder) < Math.Max(1, options.ThresholdBytes))
            return false;
        for (int zone = 0; zone < arena.ZoneCount && totals.Failures == 0 && !totals.BudgetExhausted; zone++)
        {
            while (!closing && Interlocked.Read(ref stops) == stopsAtStart && (self is null || !Volatile.Read(ref self.StopRequested)))
            {
                if (totals.Bytes >= scope.Budget)
                {
                    totals.BudgetExhausted = true;
                    break;
                }
                int count = arena.ReportFreeBlocks(zone, scope.MinOrder, options.Mode, batch, reportScatterlist, scope.AgedOnly);
                if (count == 0) break;
                totals.Calls++;
                if (lastOutcome == ReportOutcome.Failed)
                {
                    // Stop the pass: the blocks are back unreported, and the next pass retries them.
                    totals.Failures++;
                    break;
                }
                totals.Blocks += count;
                totals.Bytes += lastBytes;
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
        ReportOutcome outcome = ReportOutcome.Failed;
        try
        {
            if (device.Report(blocks)) outcome = device.ZeroesMemory ? ReportOutcome.ReportedZeroed : ReportOutcome.Reported;
            else RecordError($"{DeviceName()} reported failure for {blocks.Length} blocks", null);
        }
        catch (Exception e)
        {
            outcome = ReportOutcome.Failed;
            RecordError($"{DeviceName()} threw {e.GetType().Name}: {e.Message}", e);
        }
        TimeSpan took = time.GetElapsedTime(start);
        long bytes = 0;
        foreach (FreeBlock block in blocks) bytes += block.Length;
        instruments.Duration.Record(took.TotalSeconds, new KeyValuePair<string, object?>(ArenaMetrics.ArenaTag, arena.Name));
        lock (statsLock)
        {
            deviceCalls++;
            deviceTicks += took.Ticks;
            longestDeviceTicks = Math.Max(longestDeviceTicks, took.Ticks);
            if (outcome == ReportOutcome.Failed)
            {
                failedReports++;
                failuresInARow++;
            }
            else
            {
                failuresInARow = 0;
                reportedBlocks += blocks.Length;
                reportedBytes += bytes;
            }
        }
        (lastOutcome, lastBytes) = (outcome, bytes);
        return outcome;
    }

    private string DeviceName()
    {
        try
        {
            return device.Name;
        }
        catch (Exception)
        {
            return device.GetType().Name;
        }
    }

    private void RecordError(string message, Exception? exception)
    {
        lock (statsLock) lastError = message;
        try
        {
            Failed?.Invoke(new ReporterFailure(message, exception));
        }
        catch (Exception)
        {
            // A failing handler must not turn a recorded failure into a lost pass.
        }
    }

    /// <summary>One started thread and its own stop flag (written under the signal monitor).</summary>
    private sealed class Worker
    {
        public Thread Thread = null!;
        public bool StopRequested;
    }
}
