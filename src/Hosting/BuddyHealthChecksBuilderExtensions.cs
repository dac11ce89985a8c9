using Buddy;
using Buddy.Hosting;
using Buddy.Reporting;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>Registers the arena and reporter health check.</summary>
public static class BuddyHealthChecksBuilderExtensions
{
    /// <summary>
    /// Adds a health check of the arena <c>AddBuddy</c> registered: Unhealthy after repeated reporter
    /// failures, Degraded near the arena's maximum or under memory pressure (see <see cref="BuddyHealthCheckOptions"/>).
    /// </summary>
    public static IHealthChecksBuilder AddBuddy(this IHealthChecksBuilder builder, string name = "buddy", HealthStatus failureStatus = HealthStatus.Unhealthy,
        IEnumerable<string>? tags = null, BuddyHealthCheckOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        options ??= new BuddyHealthCheckOptions();
        if (options.FailuresForUnhealthy < 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.FailuresForUnhealthy, "FailuresForUnhealthy must be at least 1.");
        if (options.DegradedAtUsedShare is <= 0 or > 1)
            throw new ArgumentOutOfRangeException(nameof(options), options.DegradedAtUsedShare, "DegradedAtUsedShare must be above 0 and at most 1.");
        // One check object per registration, so what it saw at the last check is kept between checks.
        BuddyHealthCheck? check = null;
        var gate = new Lock();
        return builder.Add(new HealthCheckRegistration(name, services =>
        {
            lock (gate)
                return check ??= new BuddyHealthCheck(services.GetRequiredService<BuddyArena>(), services.GetRequiredService<PageReporter>(),
                    services.GetRequiredService<IOptions<BuddyOptions>>(), options);
        }, failureStatus, tags));
    }
}
