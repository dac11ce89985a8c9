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
    private PageReporter? running;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        BuddyArena arena = services.GetRequiredService<BuddyArena>();
        if (!options.Value.ReporterEnabled)
        {
            logger.LogInformation("Buddy arena {Arena}: {Online} bytes online, at most {Maximum}; page reporting is off",
                arena.Name, arena.OnlineBytes, arena.MaximumSize);
            return Task.CompletedTask;
        }
        PageReporter reporter = services.GetRequiredService<PageReporter>();
        lock (gate)
        {
            if (running is not null) return Task.CompletedTask;
            reporter.Failed += LogFailure;
            reporter.Start();
            running = reporter;
        }
        logger.LogInformation("Buddy arena {Arena}: {Online} bytes online, at most {Maximum}; free memory goes to {Device} after {Delay}",
            arena.Name, arena.OnlineBytes, arena.MaximumSize, reporter.Device.Name, reporter.Options.Delay);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        lock (gate)
        {
            if (running is null) return Task.CompletedTask;
            running.Stop();
            running.Failed -= LogFailure;
            running = null;
        }
        return Task.CompletedTask;
    }

    private void LogFailure(ReporterFailure failure) =>
        logger.LogError(failure.Exception, "Buddy page reporting failed: {Message}", failure.Message);
}
