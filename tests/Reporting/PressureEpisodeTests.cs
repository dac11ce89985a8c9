using Buddy.Reporting;
using Microsoft.Extensions.Time.Testing;

namespace Buddy.Tests;

/// <summary>Pressure episodes: begun by a signal, ended by the clock, raised one at a time and in order.</summary>
public class PressureEpisodeTests
{
    private static readonly TimeSpan Quiet = TimeSpan.FromSeconds(2);

    [Fact]
    public void An_episode_starts_with_a_signal_and_ends_a_quiet_stretch_after_the_last()
    {
        var time = new FakeTimeProvider();
        var seen = new List<PressureEpisode>();
        using var episodes = new PressureEpisodes(time, Quiet, seen.Add);
        episodes.OnSignal();
        time.Advance(TimeSpan.FromSeconds(1));
        episodes.OnSignal();
        Assert.Equal([new PressureEpisode(true, TimeSpan.Zero, 1)], seen);
        time.Advance(Quiet);
        Assert.Equal(new PressureEpisode(false, TimeSpan.FromSeconds(1) + Quiet, 2), seen[^1]);
    }

    [Fact]
    public void A_signal_while_the_end_is_being_raised_starts_the_next_episode_after_it()
    {
        var time = new FakeTimeProvider();
        var seen = new List<PressureEpisode>();
        using var inEndHandler = new ManualResetEventSlim();
        using var finishEnd = new ManualResetEventSlim();
        using var episodes = new PressureEpisodes(time, Quiet, episode =>
        {
            lock (seen) seen.Add(episode);
            if (!episode.Started)
            {
                inEndHandler.Set();
                finishEnd.Wait(TimeSpan.FromSeconds(30));
            }
        });
        episodes.OnSignal();
        // The timer fires on the thread that moves the clock; its handler holds the end's delivery open.
        var ender = new Thread(() => time.Advance(Quiet));
        ender.Start();
        Assert.True(inEndHandler.Wait(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken));
        episodes.OnSignal();
        // The new episode waits behind the end still being raised: no handler runs beside another.
        lock (seen) Assert.Equal([true, false], seen.Select(e => e.Started));
        finishEnd.Set();
        Assert.True(ender.Join(TimeSpan.FromSeconds(30)));
        lock (seen) Assert.Equal([true, false, true], seen.Select(e => e.Started));
    }
}
