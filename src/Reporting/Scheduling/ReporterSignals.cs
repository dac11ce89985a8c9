namespace Buddy.Reporting.Scheduling;

/// <summary>
/// What reaches the reporter thread from other threads: requests from frees, pressure signals and
/// stops, and the one monitor the thread waits on. A monitor, not a disposable event, so a free that
/// races with Dispose cannot throw.
/// </summary>
internal sealed class ReporterSignals(TimeProvider time)
{
    // The request state, written by frees without the monitor:
    // Idle: nothing asked for. Requested: a pass is due (a free asked, or Start). Active: a pass runs.
    private const int Idle = 0, Requested = 1, Active = 2;

    private readonly object monitor = new();
    private int request;
    private bool pressureSignaled;
    /// <summary>Pressure lasts until this timestamp on the reporter's clock.</summary>
    private long pressureUntil;
    /// <summary>Advanced by every Stop and Dispose: a thread or pass that saw another value ends.</summary>
    private long stops;
    private SchedulePhase? waitingIn;

    /// <summary>The stop count now: a thread or pass keeps it, and ends once it changes.</summary>
    public long StopEpoch => Interlocked.Read(ref stops);

    public bool Stopped(long epoch) => Interlocked.Read(ref stops) != epoch;

    /// <summary>The phase the thread waits in, or null while it works.</summary>
    public SchedulePhase? WaitingIn
    {
        get { lock (monitor) return waitingIn; }
    }

    /// <summary>From a free: cheap, one read while a pass is already requested.</summary>
    public void RequestFromFree()
    {
        if (Volatile.Read(ref request) == Requested) return;
        if (Interlocked.Exchange(ref request, Requested) != Idle) return;
        lock (monitor) Monitor.PulseAll(monitor);
    }

    /// <summary>Asks for a pass without waking anyone: the thread is starting, or has just passed.</summary>
    public void RequestAgain()
    {
        lock (monitor) request = Requested;
    }

    /// <summary>A pass begins; true when a pass was requested as it began.</summary>
    public bool BeginPass()
    {
        lock (monitor)
        {
            bool requested = request == Requested;
            request = Active;
            return requested;
        }
    }

    /// <summary>Ends a pass; true when a free asked for another meanwhile.</summary>
    public bool EndPass() => Interlocked.CompareExchange(ref request, Idle, Active) != Active;

    /// <summary>Ends every thread and pass that kept an earlier epoch, and forgets any request.</summary>
    public void Stop()
    {
        lock (monitor)
        {
            stops++;
            Monitor.PulseAll(monitor);
        }
    }

    public void ForgetRequest()
    {
        lock (monitor) request = Idle;
    }

    /// <summary>Forgets signals that came while no thread ran: a stopped reporter only counts them.</summary>
    public void ForgetPressure()
    {
        lock (monitor)
        {
            pressureSignaled = false;
            pressureUntil = 0;
        }
    }

    /// <summary>Memory is short; pressure lasts <paramref name="lasts"/> past this signal.</summary>
    public void SignalPressure(TimeSpan lasts)
    {
        lock (monitor)
        {
            pressureSignaled = true;
            pressureUntil = time.GetTimestamp() + (long)(lasts.TotalSeconds * time.TimestampFrequency);
            Monitor.PulseAll(monitor);
        }
    }

    /// <summary>The facts the schedule decides on, read together.</summary>
    public (bool Requested, bool PressureSignaled, bool PressureLasts) Read(long now)
    {
        lock (monitor) return (request == Requested, pressureSignaled, now < pressureUntil);
    }

    /// <summary>Whether pressure holds now: signalled since the last pass, or recently enough.</summary>
    public bool Pressure(long now)
    {
        lock (monitor) return pressureSignaled || now < pressureUntil;
    }

    /// <summary>A pass starts: the signals so far are answered by it.</summary>
    public void TakePressureSignal()
    {
        lock (monitor) pressureSignaled = false;
    }

    /// <summary>
    /// Waits until <paramref name="wakeAt"/> on the reporter's clock, a pressure signal, or (when
    /// <paramref name="wakeOnRequest"/>) a request. False when stopped meanwhile.
    /// </summary>
    public bool Wait(long epoch, long wakeAt, bool wakeOnRequest, SchedulePhase phase)
    {
        bool elapsed = false;
        using ITimer? timer = wakeAt == long.MaxValue ? null : time.CreateTimer(_ =>
        {
            lock (monitor)
            {
                elapsed = true;
                Monitor.PulseAll(monitor);
            }
        }, null, Until(wakeAt), Timeout.InfiniteTimeSpan);
        lock (monitor)
        {
            waitingIn = phase;
            while (stops == epoch && !elapsed && !pressureSignaled && !(wakeOnRequest && request == Requested)) Monitor.Wait(monitor);
            waitingIn = null;
            return stops == epoch;
        }
    }

    /// <summary>
    /// The time to <paramref name="timestamp"/>, rounded up so a timer never fires before it: to the
    /// TimeSpan tick, and on the system clock, whose timers count whole milliseconds, to the millisecond.
    /// </summary>
    private TimeSpan Until(long timestamp)
    {
        long ticks = Math.Max(0, timestamp - time.GetTimestamp());
        var due = TimeSpan.FromTicks((long)Math.Ceiling(ticks * (double)TimeSpan.TicksPerSecond / time.TimestampFrequency));
        return ReferenceEquals(time, TimeProvider.System) ? TimeSpan.FromMilliseconds(Math.Ceiling(due.TotalMilliseconds)) : due;
    }
}
