using Buddy.Reporting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Buddy.Hosting;

/// <summary>
/// Builds the arena when the host starts (so bad options fail the start, not the first request),
/// runs the page reporter from start to stop, and logs its failures.
/// </summary>
internal sealed class BuddyReporterService(IServiceProvider services, IOptions<BuddyOptions> options, ILogger<BuddyReporterService> logger) : IHostedService
{
    private readonly Lock gate = new();
    private BuddyArena? watched;
    private PageReporter? running;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        BuddyArena arena = services.GetRequiredService<BuddyArena>();
        lock (gate)
        {
            if (watched is not null) return Task.CompletedTask;
            arena.SectionChanged += LogSection;
            watched = arena;
        }
        if (!options.Value.ReporterEnabled)
        {
            BuddyLog.ArenaStartedWithoutReporting(logger, arena.Name, arena.OnlineBytes, arena.MaximumSize);
            return Task.CompletedTask;
        }
        PageReporter reporter = services.GetRequiredService<PageReporter>();
        lock (gate)
        {
            reporter.Failed += LogFailure;
            reporter.PressureChanged += LogPressure;
            reporter.Start();
            running = reporter;
        }
        BuddyLog.ArenaStarted(logger, arena.Name, arena.OnlineBytes, arena.MaximumSize, reporter.Device.Name, reporter.Options.Delay);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (running is not null)
            {
                running.Stop();
                running.Failed -= LogFailure;
                running.PressureChanged -= LogPressure;
                running = null;
            }
            if (watched is not null) watched.SectionChanged -= LogSection;
            watched = null;
        }
        return Task.CompletedTask;
    }

    private void LogFailure(ReporterFailure failure) => BuddyLog.ReportingFailed(logger, failure.Exception, failure.Message);

    private void LogSection(ArenaSectionEvent e) => BuddyLog.Section(logger, watched?.Name ?? "", e);

    private void LogPressure(PressureEpisode e) => BuddyLog.Pressure(logger, watched?.Name ?? "", e);
}
