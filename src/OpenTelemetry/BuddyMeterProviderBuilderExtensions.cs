using Buddy;

namespace OpenTelemetry.Metrics;

/// <summary>Buddy's instruments for an OpenTelemetry <see cref="MeterProviderBuilder"/>.</summary>
public static class BuddyMeterProviderBuilderExtensions
{
    /// <summary>
    /// Collects every Buddy instrument: each arena's (<c>buddy.memory.*</c>, <c>buddy.allocations</c>,
    /// <c>buddy.sections.*</c>, ...), its page reporter's (<c>buddy.report.*</c>) and its memory pools'
    /// (<c>buddy.pool.*</c>), all on the <c>Buddy.Allocator</c> meter and tagged <c>buddy.arena</c>.
    /// Arenas built through an <c>IMeterFactory</c> (as <c>AddBuddy</c> builds them) publish on the
    /// factory's meter of that name, which a MeterProvider in the same host collects too.
    /// </summary>
    public static MeterProviderBuilder AddBuddyInstrumentation(this MeterProviderBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        return builder.AddMeter(ArenaMetrics.MeterName);
    }
}
