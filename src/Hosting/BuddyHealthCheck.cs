using Buddy.Reporting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Buddy.Hosting;

/// <summary>
/// The arena's health: Unhealthy once the reporting device has refused
/// <see cref="BuddyHealthCheckOptions.FailuresForUnhealthy"/> scatterlists in a row (free memory
/// is no longer going back to the OS); Degraded while the arena is near its maximum or memory
/// pressure was signalled since the last check; Healthy otherwise. Its data carries the figures.
/// </summary>
internal sealed class BuddyHealthCheck(BuddyArena arena, PageReporter reporter, IOptions<BuddyOptions> buddy, BuddyHealthCheckOptions options) : IHealthCheck
{
    private readonly Lock gate = new();
    private long pressureSignalsSeen;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        ArenaStatistics stats = arena.GetStatistics();
        ReporterStatistics reporting = reporter.GetStatistics();
        bool pressureSinceLastCheck;
        lock (gate)
        {
            pressureSinceLastCheck = reporting.PressureSignals > pressureSignalsSeen;
            pressureSignalsSeen = reporting.PressureSignals;
        }
        double used = (double)stats.AllocatedBytes / arena.MaximumSize;
        var data = new Dictionary<string, object>
        {
            ["arena"] = arena.Name,
            ["allocated_bytes"] = stats.AllocatedBytes,
            ["online_bytes"] = stats.OnlineBytes,
            ["maximum_bytes"] = arena.MaximumSize,
            ["reported_bytes"] = stats.ReportedBytes,
            ["reporter_enabled"] = buddy.Value.ReporterEnabled,
            ["failed_reports"] = reporting.FailedReports,
            ["failures_in_a_row"] = reporting.FailuresInARow,
            ["pressure_signals"] = reporting.PressureSignals,
        };
        HealthCheckResult result =
            reporting.FailuresInARow >= options.FailuresForUnhealthy
                ? new HealthCheckResult(context.Registration.FailureStatus,
                    $"The reporting device refused the last {reporting.FailuresInARow} scatterlists: free memory is not going back to the OS ({reporting.LastError}).", data: data)
            : used >= options.DegradedAtUsedShare
                ? HealthCheckResult.Degraded($"{stats.AllocatedBytes} of the arena's {arena.MaximumSize} bytes at most are allocated ({used:P0}).", data: data)
            : pressureSinceLastCheck
                ? HealthCheckResult.Degraded("Memory pressure was signalled since the last check: the arena hands back everything it can.", data: data)
            : HealthCheckResult.Healthy($"{stats.AllocatedBytes} of at most {arena.MaximumSize} bytes allocated; {stats.ReportedBytes} free bytes handed back.", data);
        return Task.FromResult(result);
    }
}

/// <summary>Thresholds of the Buddy health check.</summary>
public sealed record BuddyHealthCheckOptions
{
    /// <summary>Device calls that fail in a row before the check reports its failure status (Unhealthy by default).</summary>
    public int FailuresForUnhealthy { get; init; } = 3;

    /// <summary>Share of the arena's maximum size allocated at which the check reports Degraded.</summary>
    public double DegradedAtUsedShare { get; init; } = 0.9;
}
