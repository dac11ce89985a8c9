using Buddy.Reporting;
using Buddy.Reporting.Scheduling;

namespace Buddy.Tests;

/// <summary>What the tests watch of a reporter's thread, read from its probe and its schedule's phase.</summary>
internal static class ReporterProbes
{
    extension(PageReporter reporter)
    {
        /// <summary>True while the thread waits out the delay before a pass.</summary>
        public bool IsWaitingForDelay => reporter.WaitingIn is SchedulePhase.FirstHalf or SchedulePhase.SecondHalf;

        /// <summary>True while the thread is parked: waiting for a request, for pressure, or for its next look.</summary>
        public bool IsWaitingForWork => reporter.WaitingIn is SchedulePhase.Parked;

        public long Looks => reporter.Probe.Looks;

        public long Wakeups => reporter.Probe.Wakeups;

        public long Rounds => reporter.Probe.Rounds;

        public int LiveThreads => reporter.Probe.LiveThreads;
    }
}
