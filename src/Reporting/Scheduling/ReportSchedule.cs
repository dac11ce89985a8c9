namespace Buddy.Reporting.Scheduling;

/// <summary>Why a pass runs: it decides the smallest order, the budget and the threshold.</summary>
internal enum PassKind
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
    /// <summary>The hint tier: fresh blocks free for half a hint delay, down to the floor order, offered to the OS.</summary>
    Hint,
}

/// <summary>What the reporter thread does next.</summary>
internal enum StepKind
{
    /// <summary>Wait until <see cref="ReporterStep.WakeAt"/>, or sooner for a pressure signal (and a request when parked).</summary>
    Wait,
    /// <summary>Read the polled pressure sources now: a request is about to wait out the delay.</summary>
    PollPressure,
    /// <summary>Start a new report round: blocks freed from here on wait for the next pass.</summary>
    AdvanceRound,
    /// <summary>Look at the thread caches and the arena's activity, and tell <see cref="ReportSchedule.Looked"/>.</summary>
    Look,
    /// <summary>Run a pass of <see cref="ReporterStep.Pass"/>, and tell <see cref="ReportSchedule.Passed"/>.</summary>
    Pass,
}

/// <summary>One decision: what to do, and for a wait, until when (<see cref="long.MaxValue"/>: no deadline).</summary>
internal readonly record struct ReporterStep(StepKind Kind, long WakeAt = long.MaxValue, PassKind Pass = PassKind.Automatic)
{
    public static ReporterStep PassOf(PassKind kind) => new(StepKind.Pass, Pass: kind);
}

/// <summary>Where the schedule is: parked until something asks, or waiting out a delay before a pass.</summary>
internal enum SchedulePhase
{
    /// <summary>Waiting for a free to ask for a pass, for pressure, or for the next look.</summary>
    Parked,
    /// <summary>A request was seen; the pressure sources are read before the delay starts.</summary>
    Requested,
    /// <summary>In the first half of the delay: the report round has not advanced yet.</summary>
    FirstHalf,
    /// <summary>In the second half of the delay: blocks freed now wait for the next pass.</summary>
    SecondHalf,
}

/// <summary>
/// The reporter's policy as a pure decision (Linux's page_reporting_request and page_reporting_process
/// state machine): what happened goes in, which step and when to wake comes out. No thread, clock or
/// arena: timestamps are the caller's clock's, so tests drive it synchronously.
/// </summary>
/// <remarks>
/// A free's request waits out the delay, so frees batch up, and the round advances halfway, so a block
/// freed in the second half is younger than half a delay and waits for the next pass. Pressure cuts
/// any wait short. Blocks freed into thread caches never reach a zone, and fragments below the report
/// order announce nothing, so while the arena has caches or idle reporting is on the parked thread
/// also looks every delay (or every second with no delay), as Linux's vmstat worker drains idle
/// per-CPU lists.
/// <para>
/// With the hint tier, a request waits out the hint delay instead and ends in a hint pass; the timed
/// report pass comes one report delay after a pass first left hinted memory, and hands back only what
/// is hinted. Fresh memory is never reported by time alone: it goes through the hint tier first.
/// </para>
/// </remarks>
internal sealed class ReportSchedule
{
    private readonly long delay;
    /// <summary>What a request waits out: the hint delay with the hint tier, else the report delay.</summary>
    private readonly long requestDelay;
    private readonly bool hints;
    private readonly long lookEvery;
    private readonly long idleTime;
    private readonly bool idleReporting;
    private readonly bool looks;

    private long delayStartedAt;
    private long nextLookAt = long.MaxValue;
    /// <summary>With the hint tier: when hinted memory is reported (<see cref="long.MaxValue"/>: none waits).</summary>
    private long reportDueAt = long.MaxValue;
    /// <summary>A request was pending when a due report pass ran first: the pass asks for the hint pass it put off.</summary>
    private bool requestPutOff;
    /// <summary>The pass running was begun by the parked thread (a due report, a look), not by a request.</summary>
    private bool parkedPass;
    /// <summary>Arena activity as the parked thread last saw it.</summary>
    private long opsSeen = -1, activitySeenAt, opsAtIdlePass = -1;

    /// <param name="delay">The reporter's delay, in ticks of the caller's clock.</param>
    /// <param name="idleTime">How long without an allocation or free makes the arena idle, in ticks; negative: never.</param>
    /// <param name="hasThreadCaches">Whether the arena has thread caches to look at.</param>
    /// <param name="idleReporting">Whether idle passes report below the report order.</param>
    /// <param name="frequency">Ticks per second of the caller's clock.</param>
    /// <param name="hintDelay">The hint tier's delay, in ticks; negative: no hint tier.</param>
    public ReportSchedule(long delay, long idleTime, bool hasThreadCaches, bool idleReporting, long frequency, long hintDelay = -1)
    {
        this.delay = delay;
        hints = hintDelay >= 0;
        requestDelay = hints ? hintDelay : delay;
        this.idleTime = idleTime;
        this.idleReporting = idleReporting && idleTime >= 0;
        lookEvery = delay > 0 ? delay : frequency;
        // With the hint tier, caches are looked at as often as the hint delay asks, down to once a second:
        // memory in an idle thread's cache is offered within about a hint delay, as a free's would be.
        if (hints) lookEvery = Math.Min(lookEvery, Math.Max(hintDelay, frequency));
        looks = hasThreadCaches || this.idleReporting;
    }

    public SchedulePhase Phase { get; private set; } = SchedulePhase.Parked;

    /// <summary>When hinted memory is due to be reported, or <see cref="long.MaxValue"/>.</summary>
    public long ReportDueAt => reportDueAt;

    /// <summary>Parks: from here the thread waits for a request, pressure, or its next look.</summary>
    public void Park(long now)
    {
        Phase = SchedulePhase.Parked;
        nextLookAt = looks ? now + lookEvery : long.MaxValue;
    }

    /// <summary>
    /// The next step. <paramref name="requested"/>: a free (or Start) asked for a pass;
    /// <paramref name="pressureSignaled"/>: a signal arrived since the last pass; <paramref name="pressureLasts"/>:
    /// the last signal is recent enough that pressure still holds.
    /// </summary>
    public ReporterStep Next(long now, bool requested, bool pressureSignaled, bool pressureLasts)
    {
        bool pressure = pressureSignaled || pressureLasts;
        switch (Phase)
        {
            case SchedulePhase.Parked:
                // A due report first: steady frees would otherwise put it off for ever.
                if (now >= reportDueAt)
                {
                    reportDueAt = long.MaxValue;
                    requestPutOff = requested;
                    parkedPass = true;
                    return PassOf(pressure ? PassKind.Pressure : PassKind.Automatic);
                }
                if (requested || pressureSignaled)
                {
                    Phase = SchedulePhase.Requested;
                    return new ReporterStep(StepKind.PollPressure);
                }
                return now >= nextLookAt ? new ReporterStep(StepKind.Look) : new ReporterStep(StepKind.Wait, Math.Min(nextLookAt, reportDueAt));
            case SchedulePhase.Requested:
                if (pressure) return PassOf(PassKind.Pressure);
                Phase = SchedulePhase.FirstHalf;
                delayStartedAt = now;
                goto case SchedulePhase.FirstHalf;
            case SchedulePhase.FirstHalf:
                if (pressureSignaled || now - delayStartedAt >= requestDelay / 2)
                {
                    Phase = SchedulePhase.SecondHalf;
                    return new ReporterStep(StepKind.AdvanceRound);
                }
                return new ReporterStep(StepKind.Wait, delayStartedAt + requestDelay / 2);
            default:
                // Measured from the start, so a clock that jumped past the whole delay does not wait again.
                if (pressureSignaled || now - delayStartedAt >= requestDelay)
                    return PassOf(pressure ? PassKind.Pressure : hints ? PassKind.Hint : PassKind.Automatic);
                return new ReporterStep(StepKind.Wait, delayStartedAt + requestDelay);
        }
    }

    /// <summary>
    /// What a look found. Caches holding free memory get a pass at once (which drains the quiet ones);
    /// an arena with no allocation or free for the idle time gets one pass down to the floor order per
    /// idle stretch. Null: nothing to do, and the thread stays parked until the next look.
    /// </summary>
    public PassKind? Looked(long now, bool cachesHoldMemory, long operations, bool pressure)
    {
        nextLookAt = now + lookEvery;
        bool idle = idleReporting && IdleLongEnough(now, operations);
        if (!cachesHoldMemory && !idle) return null;
        parkedPass = true;
        return pressure ? PassKind.Pressure : idle ? PassKind.Idle : PassKind.Caches;
    }

    /// <summary>
    /// A pass ended. Another is asked for when frees asked during it, or when it left work: a spent
    /// budget, busy threads' caches, or blocks too young for it. True: request another pass. With the
    /// hint tier, hinted memory left behind is reported one report delay after the first pass that
    /// left it, and what a timed report pass's budget left waits for that too.
    /// <paramref name="requestedAtStart"/>: a free had asked for a pass when this one began; a pass the
    /// parked thread began answers no request, so that one is still owed its pass.
    /// </summary>
    public bool Passed(long now, bool requestedMeanwhile, in PassReport report, bool requestedAtStart = false, PassKind kind = PassKind.Automatic)
    {
        bool owed = parkedPass && requestedAtStart;
        parkedPass = false;
        // An idle pass its budget cut short is owed again: the next look of the same idle stretch runs one.
        if (kind == PassKind.Idle && report.Result.BudgetExhausted) opsAtIdlePass = -1;
        Park(now);
        // Busy caches are looked at again at the next look; with no delay, asking at once would spin.
        if (!hints) return requestedMeanwhile || owed || report.Result.BudgetExhausted || (report.CachesBusy && delay > 0) || report.YoungLeft;
        // A failed report waits for the next look, so a device that keeps failing is not called in a loop.
        if (report.HintedLeft && reportDueAt == long.MaxValue) reportDueAt = now + (report.Result.FailedReports > 0 ? Math.Max(delay, lookEvery) : delay);
        bool putOff = requestPutOff;
        requestPutOff = false;
        // Busy caches are looked at again every look; with a zero hint delay, asking again at once would spin.
        return requestedMeanwhile || owed || putOff || report.YoungLeft;
    }

    private ReporterStep PassOf(PassKind kind)
    {
        Phase = SchedulePhase.Parked;
        return ReporterStep.PassOf(kind);
    }

    /// <summary>True once per idle stretch: the arena has seen no allocation or free for the idle time.</summary>
    private bool IdleLongEnough(long now, long operations)
    {
        if (operations != opsSeen)
        {
            (opsSeen, activitySeenAt) = (operations, now);
            return false;
        }
        if (operations == opsAtIdlePass || now - activitySeenAt < idleTime) return false;
        opsAtIdlePass = operations;
        return true;
    }
}
