using Buddy.Reporting;

namespace Buddy.Hosting;

/// <summary>
/// What <c>services.AddBuddy()</c> builds, bound from the <c>Buddy</c>
/// configuration section: <c>Buddy:Arena:*</c> for the arena, <c>Buddy:Reporter:*</c> for reporting.
/// </summary>
public sealed class BuddyOptions
{
    /// <summary>The configuration section <c>services.AddBuddy()</c> binds by default.</summary>
    public const string SectionName = "Buddy";

    /// <summary>
    /// The arena's shape. The service default starts at 32 MiB of pinned arrays (array-backed, as
    /// Kestrel's sockets need) and grows by 32 MiB sections up to 2 GiB, taking idle sections offline.
    /// </summary>
    public ArenaOptions Arena { get; set; } = new()
    {
        Name = "buddy",
        Backing = ArenaBacking.PinnedArray,
        Size = 32L << 20,
        SectionSize = 32L << 20,
        MaximumSize = 2L << 30,
    };

    /// <summary>Reporting policy: delay, batch size, budget.</summary>
    public PageReporterOptions Reporter { get; set; } = new();

    /// <summary>Run the page reporter with the host, so freed memory goes back to the OS. On by default.</summary>
    public bool ReporterEnabled { get; set; } = true;
}
