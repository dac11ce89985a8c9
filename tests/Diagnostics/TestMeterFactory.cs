using System.Diagnostics.Metrics;

namespace Buddy.Tests;

/// <summary>Makes meters scoped to itself, as the host's factory does.</summary>
internal sealed class TestMeterFactory : IMeterFactory
{
    private readonly List<Meter> meters = [];

    public Meter Create(MeterOptions options)
    {
        var meter = new Meter(new MeterOptions(options.Name) { Version = options.Version, Tags = options.Tags, Scope = this });
        lock (meters) meters.Add(meter);
        return meter;
    }

    public void Dispose()
    {
        lock (meters) meters.ForEach(m => m.Dispose());
    }
}
