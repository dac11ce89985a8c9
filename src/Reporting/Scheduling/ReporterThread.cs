namespace Buddy.Reporting.Scheduling;

/// <summary>
/// The reporter's background thread: it carries out what <see cref="ReportSchedule"/> decides, waits on
/// <see cref="ReporterSignals"/> and runs passes through its owner. One per Start; it ends when the stop
/// epoch it was started with moves on, or when the arena is gone.
/// </summary>
internal sealed class ReporterThread
{
    private readonly PageReporter owner;
    private readonly BuddyArena arena;
    private readonly ReporterSignals signals;
    private readonly ReporterProbe probe;
    private readonly TimeProvider time;
    private readonly long epoch;
    private readonly ReportSchedule schedule;

    public ReporterThread(PageReporter owner, BuddyArena arena, ReporterSignals signals, ReporterProbe probe, TimeProvider time, long epoch)
    {
        (this.owner, this.arena, this.signals, this.probe, this.time, this.epoch) = (owner, arena, signals, probe, time, epoch);
        PageReporterOptions options = owner.Options;
        long frequency = time.TimestampFrequency;
        schedule = new ReportSchedule(
            TicksOf(options.Delay, frequency),
            options.IdleTime == Timeout.InfiniteTimeSpan ? -1 : TicksOf(options.IdleTime, frequency),
            hasThreadCaches: arena.CachedOrders > 0,
            idleReporting: owner.FloorOrder < owner.ReportOrder,
            frequency,
            options.Hints ? TicksOf(options.HintDelay, frequency) : -1);
        Thread = new Thread(Run) { IsBackground = true, Name = "Buddy page reporter" };
    }

    public Thread Thread { get; }

    /// <summary>The phase the thread is waiting in, or null while it works (tests drive time from here).</summary>
    public SchedulePhase? WaitingIn => signals.WaitingIn;

    private static long TicksOf(TimeSpan span, long frequency) => (long)(span.TotalSeconds * frequency);

    private void Run()
    {
        probe.ThreadStarted();
        try
        {
            Loop();
        }
        catch (Exception e)
        {
            // Only the injected clock can get here (a pass records its own failures): end the thread, say why.
            owner.RecordError($"The reporter thread ended: {e.GetType().Name}: {e.Message}", e);
        }
        finally
        {
            probe.ThreadEnded();
        }
    }

    private void Loop()
    {
        schedule.Park(time.GetTimestamp());
        while (!signals.Stopped(epoch))
        {
            long now = time.GetTimestamp();
            (bool requested, bool signaled, bool lasts) = signals.Read(now);
            ReporterStep step = schedule.Next(now, requested, signaled, lasts);
            switch (step.Kind)
            {
                case StepKind.Wait:
                    if (!signals.Wait(epoch, step.WakeAt, schedule.Phase == SchedulePhase.Parked, schedule.Phase)) return;
                    break;
                case StepKind.PollPressure:
                    owner.PollPressure();
                    break;
                case StepKind.AdvanceRound:
                    arena.AdvanceReportRound();
                    probe.Round();
                    break;
                case StepKind.Look:
                    if (!Look(now)) return;
                    break;
                case StepKind.Pass:
                    if (!Pass(step.Pass)) return;
                    break;
            }
        }
    }

    /// <summary>Looks at the caches and the arena's activity; false when the arena is gone.</summary>
    private bool Look(long now)
    {
        bool cachesHoldMemory;
        long operations;
        try
        {
            // Outside the monitor: frees take it while holding the cache lock this reads under.
            cachesHoldMemory = arena.CachedBytes() > 0;
            operations = arena.OperationCount();
        }
        catch (ObjectDisposedException) when (arena.IsDisposed)
        {
            // The arena went first: nothing is left to report, and the thread ends as a pass would.
            return false;
        }
        probe.Look();
        PassKind? kind = schedule.Looked(now, cachesHoldMemory, operations, signals.Pressure(now));
        return kind is not PassKind pass || Pass(pass);
    }

    /// <summary>Runs a pass on the thread; false when the arena is gone and the thread should end.</summary>
    private bool Pass(PassKind kind)
    {
        // Only a pressure pass answers a signal: one that came as another kind began is still owed its pass.
        if (kind == PassKind.Pressure) signals.TakePressureSignal();
        probe.Wakeup();
        bool requestedAtStart = signals.BeginPass();
        PassReport report = default;
        try
        {
            report = owner.RunPass(kind, epoch);
            if (report.Stopped) return false;
        }
        catch (ObjectDisposedException) when (arena.IsDisposed || signals.Stopped(epoch))
        {
            // The arena, or the reporter (Dispose marks it before it stops the thread), is gone: end quietly.
            return false;
        }
        catch (Exception e)
        {
            // Anything else is recorded and the thread goes on: an exception must not end the process.
            owner.RecordError($"A reporting pass failed: {e.GetType().Name}: {e.Message}", e);
        }
        bool requestedMeanwhile = signals.EndPass();
        if (schedule.Passed(time.GetTimestamp(), requestedMeanwhile, report, requestedAtStart, kind)) signals.RequestAgain();
        return true;
    }
}

/// <summary>What tests watch of a reporter's thread: counts of what it did, and threads alive.</summary>
internal sealed class ReporterProbe
{
    private long looks, wakeups, rounds;
    private int liveThreads;

    /// <summary>Times the parked thread has looked at the thread caches and the arena's idleness (every delay).</summary>
    public long Looks => Interlocked.Read(ref looks);

    /// <summary>Passes the thread has begun, including those the threshold turned away.</summary>
    public long Wakeups => Interlocked.Read(ref wakeups);

    /// <summary>Report rounds started, one halfway through each delay.</summary>
    public long Rounds => Interlocked.Read(ref rounds);

    /// <summary>Reporter threads alive now: at most one, and none once Stop has returned.</summary>
    public int LiveThreads => Volatile.Read(ref liveThreads);

    public void Look() => Interlocked.Increment(ref looks);

    public void Wakeup() => Interlocked.Increment(ref wakeups);

    public void Round() => Interlocked.Increment(ref rounds);

    public void ThreadStarted() => Interlocked.Increment(ref liveThreads);

    public void ThreadEnded() => Interlocked.Decrement(ref liveThreads);
}
