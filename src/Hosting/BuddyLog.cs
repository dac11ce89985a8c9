using Buddy.Reporting;
using Microsoft.Extensions.Logging;

namespace Buddy.Hosting;

/// <summary>What the hosted arena and reporter log, with stable event ids and structured fields.</summary>
internal static partial class BuddyLog
{
    [LoggerMessage(EventId = 1, EventName = "ArenaStarted", Level = LogLevel.Information,
        Message = "Buddy arena {Arena}: {OnlineBytes} bytes online, at most {MaximumBytes}; free memory goes to {Device} after {Delay}")]
    public static partial void ArenaStarted(ILogger logger, string arena, long onlineBytes, long maximumBytes, string device, TimeSpan delay);

    [LoggerMessage(EventId = 2, EventName = "ArenaStartedWithoutReporting", Level = LogLevel.Information,
        Message = "Buddy arena {Arena}: {OnlineBytes} bytes online, at most {MaximumBytes}; page reporting is off")]
    public static partial void ArenaStartedWithoutReporting(ILogger logger, string arena, long onlineBytes, long maximumBytes);

    [LoggerMessage(EventId = 3, EventName = "ReportingFailed", Level = LogLevel.Error, Message = "Buddy page reporting failed: {Failure}")]
    public static partial void ReportingFailed(ILogger logger, Exception? exception, string failure);

    [LoggerMessage(EventId = 10, EventName = "SectionAdded", Level = LogLevel.Debug,
        Message = "Buddy arena {Arena} added a section: {OnlineSections} online, {OnlineBytes} bytes")]
    public static partial void SectionAdded(ILogger logger, string arena, int onlineSections, long onlineBytes);

    [LoggerMessage(EventId = 11, EventName = "SectionsRemoved", Level = LogLevel.Debug,
        Message = "Buddy arena {Arena} took {Count} free sections offline: {OnlineSections} online, {OnlineBytes} bytes")]
    public static partial void SectionsRemoved(ILogger logger, string arena, int count, int onlineSections, long onlineBytes);

    [LoggerMessage(EventId = 12, EventName = "GrowthFailed", Level = LogLevel.Warning,
        Message = "Buddy arena {Arena} could not add a section ({OnlineBytes} bytes online): {Failure}")]
    public static partial void GrowthFailed(ILogger logger, string arena, long onlineBytes, string? failure);

    [LoggerMessage(EventId = 13, EventName = "OfflineFailed", Level = LogLevel.Warning, Message = "Buddy arena {Arena}: {Failure}")]
    public static partial void OfflineFailed(ILogger logger, string arena, string? failure);

    [LoggerMessage(EventId = 20, EventName = "PressureStarted", Level = LogLevel.Warning,
        Message = "Buddy arena {Arena}: memory is short; free memory goes back to the OS at once")]
    public static partial void PressureStarted(ILogger logger, string arena);

    [LoggerMessage(EventId = 21, EventName = "PressureEnded", Level = LogLevel.Information,
        Message = "Buddy arena {Arena}: memory pressure ended after {Duration} and {Signals} signals")]
    public static partial void PressureEnded(ILogger logger, string arena, TimeSpan duration, long signals);

    public static void Section(ILogger logger, string arena, ArenaSectionEvent e)
    {
        switch (e.Kind)
        {
            case ArenaSectionEventKind.Added: SectionAdded(logger, arena, e.OnlineSections, e.OnlineBytes); break;
            case ArenaSectionEventKind.Removed: SectionsRemoved(logger, arena, e.Count, e.OnlineSections, e.OnlineBytes); break;
            case ArenaSectionEventKind.GrowthFailed: GrowthFailed(logger, arena, e.OnlineBytes, e.Failure); break;
            case ArenaSectionEventKind.OfflineFailed: OfflineFailed(logger, arena, e.Failure); break;
        }
    }

    public static void Pressure(ILogger logger, string arena, PressureEpisode e)
    {
        if (e.Started) PressureStarted(logger, arena);
        else PressureEnded(logger, arena, e.Duration, e.Signals);
    }
}
