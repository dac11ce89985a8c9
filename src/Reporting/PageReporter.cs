using Buddy.Reporting.Pressure;
using Buddy.Reporting.Scheduling;

namespace Buddy.Reporting;

/// <summary>
/// Free page reporting for one arena (Linux's mm/page_reporting.c). A background thread, woken
/// when a free block of report order or more appears, waits <see cref="PageReporterOptions.Delay"/>,
/// then per zone takes up to Capacity unreported free blocks, hands them to the device as one
/// scatterlist, and puts them back marked Reported. Reported blocks are never scanned again.
/// </summary>
/// <remarks>
/// Three parts: this class owns the lifecycle (one state, changed under one lock that Stop holds across
/// the join, so Stop returns only once the thread is gone and its scatterlist is back, whatever other
/// lifecycle calls race with it); <see cref="ReportSchedule"/> decides when passes run, as a pure
/// function of what happened; <see cref="ReportingPass"/> runs one. Every Stop advances a stop epoch
/// that a thread and a pass keep from their start, so a stopping thread never sees a later Start.
/// </remarks>
public sealed class PageReporter : IFreeBlockListener, IDisposable
{
    private enum Lifecycle { Stopped, Running, Disposed }

    private readonly BuddyArena arena;
    private readonly IReportingDevice device;
    private readonly PageReporterOptions options;
    private readonly TimeProvider time;
    private readonly PressureEpisodes episodes;
    private readonly ReporterInstruments instruments;
    private readonly ReporterCounters counters = new();
    private readonly ReporterSignals signals;
    private readonly ReportingPass pass;
    private readonly int reportOrder;
    private readonly int floorOrder;
    /// <summary>One pass at a time; Dispose takes it so no pass outlives the reporter.</summary>
    private readonly Lock passLock = new();
    /// <summary>Start, Stop and Dispose; never taken on the reporter thread.</summary>
    private readonly Lock lifecycleLock = new();
    private volatile Lifecycle lifecycle;
    private volatile ReporterThread? thread;
    private MemoryPressureMonitor? pressureMonitor;

    /// <param name="arena">The arena to report; one reporter per arena.</param>
    /// <param name="device">Where reported memory goes.</param>
    /// <param name="options">Reporting policy; null takes the defaults.</param>
    /// <param name="timeProvider">The clock for the delay and device timings; null takes the arena's.</param>
    /// <param name="hintDevice">
    /// Where the hint tier offers memory, when <see cref="PageReporterOptions.HintDelay"/> turns it on;
    /// null takes <see cref="Devices.ReportingDevices.CreateDefaultHint"/> (MADV_FREE on Linux).
    /// </param>
    public PageReporter(BuddyArena arena, IReportingDevice device, PageReporterOptions? options = null, TimeProvider? timeProvider = null,
        IReportingDevice? hintDevice = null)
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
        instruments = ReporterInstruments.For(arena.Meter);
        signals = new ReporterSignals(time);
        HintDevice = options.Hints ? hintDevice ?? Devices.ReportingDevices.CreateDefaultHint() : null;
        pass = new ReportingPass(arena, device, HintDevice, options, time, counters, instruments, RecordError);
        episodes = new PressureEpisodes(time, 2 * options.PressurePollInterval, RaisePressureChanged);
        // With the hint tier, fragments down to the floor order ask for a pass too.
        arena.Subscribe(this, options.Hints ? floorOrder : reportOrder);
        instruments.Register(this);
    }

    internal string ArenaName => arena.Name;

    /// <summary>A cgroup to watch instead of the process's own, from the next Start (tests watch a child group they made).</summary>
    internal CgroupMemory? WatchedGroup { get; set; }

    /// <summary>What tests watch of the thread: what it did, and whether it is alive.</summary>
    internal ReporterProbe Probe { get; } = new();

    /// <summary>The phase the thread waits in, or null while it works or is stopped (tests drive time from here).</summary>
    internal SchedulePhase? WaitingIn => thread is null ? null : signals.WaitingIn;

    /// <summary>The reporting policy.</summary>
    public PageReporterOptions Options => options;

    /// <summary>Where reported memory goes.</summary>
    public IReportingDevice Device => device;

    /// <summary>Where the hint tier offers memory, or null when <see cref="PageReporterOptions.HintDelay"/> leaves the tier off.</summary>
    public IReportingDevice? HintDevice { get; }

    /// <summary>The smallest order a timed pass reports.</summary>
    public int ReportOrder => reportOrder;

    /// <summary>The smallest order reported when the arena is idle or memory is short.</summary>
    public int FloorOrder => floorOrder;

    /// <summary>Whether the background thread has been started and not stopped.</summary>
    public bool IsRunning => thread is not null;

    /// <summary>Starts the background thread; it runs a first pass one delay from now. Starting twice is harmless.</summary>
    public void Start()
    {
        RefuseOnOwnThread();
        lock (lifecycleLock)
        {
            ObjectDisposedException.ThrowIf(lifecycle == Lifecycle.Disposed, this);
            if (lifecycle == Lifecycle.Running) return;
            var next = new ReporterThread(this, arena, signals, Probe, time, signals.StopEpoch);
            // The monitor first: the thread's first pass polls it.
            pressureMonitor = WatchedGroup is { } group
                ? MemoryPressureMonitor.ForGroup(group, options, time, HeldBytes, SignalPressure, RecordError)
                : MemoryPressureMonitor.Start(options, time, HeldBytes, SignalPressure, RecordError);
            // What was signalled while stopped was only counted: the new thread starts from a request alone.
            signals.ForgetPressure();
            signals.RequestAgain();
            // Known before it runs, so a handler it raises that calls Stop is refused, not joined by itself.
            thread = next;
            try
            {
                next.Thread.Start();
            }
            catch
            {
                // No thread (a thread limit, no memory): nothing may keep polling for it.
                thread = null;
                pressureMonitor?.Dispose();
                pressureMonitor = null;
                signals.ForgetRequest();
                throw;
            }
            lifecycle = Lifecycle.Running;
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
        lock (lifecycleLock)
        {
            StopLocked();
            if (lifecycle == Lifecycle.Running) lifecycle = Lifecycle.Stopped;
        }
    }

    /// <summary>Runs one full pass on the calling thread now, whatever the delay and threshold.</summary>
    public ReportingPassResult ReportNow() => RunPass(PassKind.Now, epoch: null).Result;

    /// <summary>Runs one full pass on the thread pool.</summary>
    public Task<ReportingPassResult> ReportNowAsync(CancellationToken cancellationToken = default)
        => Task.Run(ReportNow, cancellationToken);

    /// <summary>
    /// Tells the running reporter that memory is short: it reports at once, down to <see cref="FloorOrder"/>,
    /// with no budget, every thread cache included, and keeps doing so for any free that follows until
    /// two <see cref="PageReporterOptions.PressurePollInterval"/>s pass without another signal. The
    /// configured sources call this; a host that knows better can too. A stopped reporter only counts it.
    /// </summary>
    public void SignalPressure()
    {
        counters.PressureSignal();
        signals.SignalPressure(2 * options.PressurePollInterval);
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

    /// <summary>What the reporter has done since it was built.</summary>
    public ReporterStatistics GetStatistics() => counters.Snapshot();

    void IFreeBlockListener.OnFreeBlock(int zone, int order) => signals.RequestFromFree();

    /// <summary>Stops the thread, waits for a pass running on another thread, and leaves the arena.</summary>
    public void Dispose()
    {
        RefuseOnOwnThread();
        bool first;
        lock (lifecycleLock)
        {
            first = lifecycle != Lifecycle.Disposed;
            // Disposed before the epoch moves: a pass that keeps the new epoch sees it and does not start.
            lifecycle = Lifecycle.Disposed;
            if (first) StopLocked();
        }
        lock (passLock)
        {
            // Waits for a pass running on another thread to end after its scatterlist in hand; a second
            // Dispose waits too, so neither returns while the device may still be in use.
        }
        if (!first) return;
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
        if (thread?.Thread == Thread.CurrentThread || passLock.IsHeldByCurrentThread)
            throw new InvalidOperationException("Start, Stop and Dispose cannot be called from inside a reporting pass (from a device): the pass would wait for itself.");
    }

    private void StopLocked()
    {
        // Ends a pass running on any thread (ReportNow included) after its scatterlist in hand.
        signals.Stop();
        ReporterThread? running = thread;
        if (running is null) return;
        // Joined before the monitor goes, so the thread is never inside a poll of a disposed monitor;
        // a signal the monitor raises meanwhile only counts.
        running.Thread.Join();
        pressureMonitor?.Dispose();
        pressureMonitor = null;
        thread = null;
        signals.ForgetRequest();
    }

    /// <summary>Reads the polled pressure sources (the thread, before a request waits out the delay).</summary>
    internal void PollPressure() => Volatile.Read(ref pressureMonitor)?.Poll();

    /// <summary>
    /// Runs one pass under the pass lock. <paramref name="epoch"/> is the thread's stop epoch; null
    /// (ReportNow) keeps the one the pass starts in. Either way a Stop or Dispose ends the pass after
    /// its scatterlist in hand.
    /// </summary>
    internal PassReport RunPass(PassKind kind, long? epoch)
    {
        // The lock is reentrant; a pass started by a device inside a pass would reuse the batch in hand.
        if (passLock.IsHeldByCurrentThread)
            throw new InvalidOperationException("A reporting pass cannot be started from inside a pass (from a device).");
        lock (passLock)
        {
            long kept = epoch ?? signals.StopEpoch;
            // The thread's pass waited for the lock while Stop or Dispose came: it does nothing and counts nothing.
            if (epoch is long own && (signals.Stopped(own) || lifecycle == Lifecycle.Disposed)) return PassReport.NotRun;
            ObjectDisposedException.ThrowIf(lifecycle == Lifecycle.Disposed, this);
            long started = time.GetTimestamp();
            try
            {
                return pass.Run(kind, () => signals.Stopped(kept));
            }
            finally
            {
                counters.PassTime(time.GetElapsedTime(started));
            }
        }
    }

    internal void RecordError(string message, Exception? exception)
    {
        counters.Error(message);
        try
        {
            Failed?.Invoke(new ReporterFailure(message, exception));
        }
        catch (Exception)
        {
            // A failing handler must not turn a recorded failure into a lost pass.
        }
    }
}
