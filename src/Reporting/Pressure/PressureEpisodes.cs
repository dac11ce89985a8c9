namespace Buddy.Reporting;

/// <summary>
/// One stretch of memory pressure: from the first signal after a quiet stretch to the point where
/// no signal has come for two poll intervals (when the reporter stops treating frees as urgent).
/// </summary>
/// <param name="Started">True when the stretch begins; false when it has ended.</param>
/// <param name="Duration">From its first signal to its end (zero when it begins).</param>
/// <param name="Signals">Signals within it (1 when it begins).</param>
public sealed record PressureEpisode(bool Started, TimeSpan Duration, long Signals);

/// <summary>
/// Turns pressure signals into episodes, on the reporter's clock: its timer notices the end. Episodes
/// are raised one at a time and in the order they happened, with no lock held: an event is queued
/// under the gate, and whichever thread finds no delivery under way delivers the queue.
/// </summary>
internal sealed class PressureEpisodes(TimeProvider time, TimeSpan quiet, Action<PressureEpisode> raise) : IDisposable
{
    private readonly Lock gate = new();
    private readonly Queue<PressureEpisode> pending = new();
    private bool delivering;
    private ITimer? timer;
    private long start, lastSignal, signals;
    private bool disposed;

    public void OnSignal()
    {
        lock (gate)
        {
            if (disposed) return;
            lastSignal = time.GetTimestamp();
            signals++;
            if (timer is null)
            {
                (start, signals) = (lastSignal, 1);
                TimeSpan every = quiet / 2 > TimeSpan.Zero ? quiet / 2 : TimeSpan.FromMilliseconds(1);
                timer = time.CreateTimer(static state => ((PressureEpisodes)state!).CheckEnded(), this, every, every);
                pending.Enqueue(new PressureEpisode(Started: true, TimeSpan.Zero, 1));
            }
        }
        Deliver();
    }

    private void CheckEnded()
    {
        lock (gate)
        {
            if (timer is null || time.GetElapsedTime(lastSignal) < quiet) return;
            timer.Dispose();
            timer = null;
            pending.Enqueue(new PressureEpisode(Started: false, time.GetElapsedTime(start, lastSignal) + quiet, signals));
        }
        Deliver();
    }

    /// <summary>Raises queued episodes unless another thread is raising them; a handler that signals again queues behind.</summary>
    private void Deliver()
    {
        while (true)
        {
            PressureEpisode next;
            lock (gate)
            {
                if (delivering || !pending.TryDequeue(out next!)) return;
                delivering = true;
            }
            try
            {
                raise(next);
            }
            finally
            {
                lock (gate) delivering = false;
            }
        }
    }

    public void Dispose()
    {
        lock (gate)
        {
            disposed = true;
            timer?.Dispose();
            timer = null;
        }
    }
}
