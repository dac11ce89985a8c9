using Buddy.Reporting;
using Buddy.Reporting.Scheduling;

namespace Buddy.Tests;

/// <summary>The reporter's policy, driven synchronously: timestamps in, steps out, no thread or clock.</summary>
public class ReportScheduleTests
{
    private const long Second = 1000;
    private const long Delay = 2 * Second;

    private static ReportSchedule Schedule(bool caches = false, bool idle = false, long delay = Delay, long idleTime = 10 * Second)
    {
        var schedule = new ReportSchedule(delay, idleTime, caches, idle, Second);
        schedule.Park(0);
        return schedule;
    }

    [Fact]
    public void A_parked_schedule_with_nothing_to_look_at_waits_without_a_deadline()
    {
        ReporterStep step = Schedule().Next(5 * Second, requested: false, pressureSignaled: false, pressureLasts: false);
        Assert.Equal(new ReporterStep(StepKind.Wait, long.MaxValue), step);
    }

    [Fact]
    public void A_request_polls_pressure_then_waits_out_the_delay_advancing_the_round_halfway()
    {
        ReportSchedule s = Schedule();
        Assert.Equal(StepKind.PollPressure, s.Next(100, true, false, false).Kind);
        Assert.Equal(new ReporterStep(StepKind.Wait, 100 + Delay / 2), s.Next(100, true, false, false));
        Assert.Equal(SchedulePhase.FirstHalf, s.Phase);
        Assert.Equal(new ReporterStep(StepKind.Wait, 100 + Delay / 2), s.Next(100 + Delay / 2 - 1, true, false, false));
        Assert.Equal(StepKind.AdvanceRound, s.Next(100 + Delay / 2, true, false, false).Kind);
        Assert.Equal(new ReporterStep(StepKind.Wait, 100 + Delay), s.Next(100 + Delay / 2, true, false, false));
        Assert.Equal(ReporterStep.PassOf(PassKind.Automatic), s.Next(100 + Delay, true, false, false));
    }

    [Fact]
    public void A_clock_that_jumps_past_the_whole_delay_advances_the_round_and_passes_without_waiting_again()
    {
        ReportSchedule s = Schedule();
        s.Next(0, true, false, false);
        s.Next(0, true, false, false);
        Assert.Equal(StepKind.AdvanceRound, s.Next(10 * Delay, true, false, false).Kind);
        Assert.Equal(StepKind.Pass, s.Next(10 * Delay, true, false, false).Kind);
    }

    [Fact]
    public void With_no_delay_a_request_passes_at_once()
    {
        ReportSchedule s = Schedule(delay: 0);
        s.Next(7, true, false, false);
        Assert.Equal(StepKind.AdvanceRound, s.Next(7, true, false, false).Kind);
        Assert.Equal(ReporterStep.PassOf(PassKind.Automatic), s.Next(7, true, false, false));
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    public void Pressure_when_a_request_is_seen_passes_at_once(bool signaled, bool lasts)
    {
        ReportSchedule s = Schedule();
        s.Next(0, true, signaled, lasts);
        Assert.Equal(ReporterStep.PassOf(PassKind.Pressure), s.Next(0, true, signaled, lasts));
    }

    [Fact]
    public void A_pressure_signal_cuts_the_delay_short_and_makes_the_pass_a_pressure_pass()
    {
        ReportSchedule s = Schedule();
        s.Next(0, true, false, false);
        s.Next(0, true, false, false);
        Assert.Equal(StepKind.AdvanceRound, s.Next(10, true, pressureSignaled: true, pressureLasts: true).Kind);
        Assert.Equal(ReporterStep.PassOf(PassKind.Pressure), s.Next(10, true, true, true));
    }

    [Fact]
    public void A_pressure_signal_wakes_a_parked_schedule_like_a_request()
    {
        ReportSchedule s = Schedule();
        Assert.Equal(StepKind.PollPressure, s.Next(0, requested: false, pressureSignaled: true, pressureLasts: true).Kind);
        Assert.Equal(ReporterStep.PassOf(PassKind.Pressure), s.Next(0, false, true, true));
    }

    [Fact]
    public void Lasting_pressure_alone_does_not_wake_a_parked_schedule()
    {
        Assert.Equal(StepKind.Wait, Schedule().Next(0, requested: false, pressureSignaled: false, pressureLasts: true).Kind);
    }

    [Fact]
    public void With_thread_caches_the_parked_schedule_looks_every_delay()
    {
        ReportSchedule s = Schedule(caches: true);
        Assert.Equal(new ReporterStep(StepKind.Wait, Delay), s.Next(Delay - 1, false, false, false));
        Assert.Equal(StepKind.Look, s.Next(Delay, false, false, false).Kind);
        Assert.Null(s.Looked(Delay, cachesHoldMemory: false, operations: 1, pressure: false));
        Assert.Equal(new ReporterStep(StepKind.Wait, 2 * Delay), s.Next(Delay, false, false, false));
        Assert.Equal(StepKind.Look, s.Next(2 * Delay, false, false, false).Kind);
        Assert.Equal(PassKind.Caches, s.Looked(2 * Delay, cachesHoldMemory: true, operations: 1, pressure: false));
    }

    [Fact]
    public void With_no_delay_the_schedule_looks_every_second()
    {
        ReportSchedule s = Schedule(caches: true, delay: 0);
        Assert.Equal(new ReporterStep(StepKind.Wait, Second), s.Next(0, false, false, false));
    }

    [Fact]
    public void A_look_under_lasting_pressure_makes_a_pressure_pass()
    {
        ReportSchedule s = Schedule(caches: true);
        s.Next(Delay, false, false, true);
        Assert.Equal(PassKind.Pressure, s.Looked(Delay, cachesHoldMemory: true, operations: 0, pressure: true));
    }

    [Fact]
    public void An_idle_pass_comes_once_per_idle_stretch_after_the_idle_time_without_operations()
    {
        ReportSchedule s = Schedule(idle: true, idleTime: 5 * Second);
        Assert.Null(s.Looked(1 * Second, false, operations: 40, pressure: false));
        Assert.Null(s.Looked(5 * Second, false, operations: 40, pressure: false));
        Assert.Equal(PassKind.Idle, s.Looked(6 * Second, false, operations: 40, pressure: false));
        Assert.Null(s.Looked(20 * Second, false, operations: 40, pressure: false));
        // Activity starts a new stretch, measured from when it was seen.
        Assert.Null(s.Looked(21 * Second, false, operations: 41, pressure: false));
        Assert.Null(s.Looked(25 * Second, false, operations: 41, pressure: false));
        Assert.Equal(PassKind.Idle, s.Looked(26 * Second, false, operations: 41, pressure: false));
    }

    [Fact]
    public void Idle_reporting_is_off_when_the_idle_time_is_infinite()
    {
        ReportSchedule s = Schedule(idle: true, idleTime: -1);
        Assert.Equal(new ReporterStep(StepKind.Wait, long.MaxValue), s.Next(0, false, false, false));
        Assert.Null(s.Looked(100 * Second, false, 0, false));
        Assert.Null(s.Looked(200 * Second, false, 0, false));
    }

    [Theory]
    [InlineData(false, false, false, false, false)]
    [InlineData(true, false, false, false, true)]
    [InlineData(false, true, false, false, true)]
    [InlineData(false, false, true, false, true)]
    [InlineData(false, false, false, true, true)]
    public void A_pass_asks_for_another_when_frees_asked_meanwhile_or_it_left_work(
        bool requestedMeanwhile, bool budgetExhausted, bool cachesBusy, bool youngLeft, bool again)
    {
        ReportSchedule s = Schedule(caches: true);
        var report = new PassReport(new ReportingPassResult(1, 4096, 1, 0, budgetExhausted), cachesBusy, youngLeft);
        Assert.Equal(again, s.Passed(50, requestedMeanwhile, report));
        Assert.Equal(SchedulePhase.Parked, s.Phase);
        Assert.Equal(new ReporterStep(StepKind.Wait, 50 + Delay), s.Next(50, false, false, false));
    }
}

/// <summary>The schedule's answers to what a pass found and to requests that came as it began.</summary>
public class ReportScheduleFollowUpTests
{
    private const long Second = 1000;
    private const long Delay = 2 * Second;

    [Fact]
    public void With_no_delay_busy_caches_wait_for_the_next_look_instead_of_a_pass_at_once()
    {
        var s = new ReportSchedule(0, -1, hasThreadCaches: true, idleReporting: false, Second);
        s.Park(0);
        Assert.False(s.Passed(5, false, new PassReport(default, CachesBusy: true, YoungLeft: false)));
        Assert.Equal(new ReporterStep(StepKind.Wait, 5 + Second), s.Next(5, false, false, false));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_request_pending_as_a_looks_pass_began_is_still_owed_its_pass(bool hints)
    {
        var s = new ReportSchedule(Delay, -1, hasThreadCaches: true, idleReporting: false, Second, hints ? Second : -1);
        s.Park(0);
        Assert.Equal(StepKind.Look, s.Next(Delay, false, false, false).Kind);
        Assert.Equal(PassKind.Caches, s.Looked(Delay, cachesHoldMemory: true, operations: 1, pressure: false));
        // A free asked between the look and the pass: the pass (the look's) does not answer it.
        Assert.True(s.Passed(Delay, false, default, requestedAtStart: true));
    }

    [Fact]
    public void An_idle_pass_cut_short_by_its_budget_runs_again_at_the_next_look_of_the_same_stretch()
    {
        var s = new ReportSchedule(Delay, 5 * Second, hasThreadCaches: false, idleReporting: true, Second);
        s.Park(0);
        Assert.Null(s.Looked(1 * Second, false, operations: 7, pressure: false));
        Assert.Equal(PassKind.Idle, s.Looked(6 * Second, false, operations: 7, pressure: false));
        var spent = new PassReport(new ReportingPassResult(1, 4096, 1, 0, BudgetExhausted: true), false, false);
        s.Passed(6 * Second, false, spent, kind: PassKind.Idle);
        Assert.Equal(PassKind.Idle, s.Looked(8 * Second, false, operations: 7, pressure: false));
        // One that finished its work is not repeated within the stretch.
        s.Passed(8 * Second, false, default, kind: PassKind.Idle);
        Assert.Null(s.Looked(10 * Second, false, operations: 7, pressure: false));
    }

    [Fact]
    public void A_request_that_began_its_own_pass_asks_for_nothing_more()
    {
        var s = new ReportSchedule(Delay, -1, hasThreadCaches: false, idleReporting: false, Second);
        s.Park(0);
        s.Next(0, true, false, false);
        s.Next(0, true, false, false);
        s.Next(Delay / 2, true, false, false);
        Assert.Equal(StepKind.Pass, s.Next(Delay, true, false, false).Kind);
        Assert.False(s.Passed(Delay, false, default, requestedAtStart: true));
    }
}

/// <summary>The schedule with the hint tier: requests end in hint passes, reports follow what stayed hinted.</summary>
public class HintScheduleTests
{
    private const long Second = 1000;
    private const long Delay = 10 * Second;
    private const long HintDelay = 1 * Second;

    private static ReportSchedule Schedule()
    {
        var schedule = new ReportSchedule(Delay, -1, hasThreadCaches: false, idleReporting: false, Second, HintDelay);
        schedule.Park(0);
        return schedule;
    }

    private static PassReport Left(bool hinted) => new(default, false, false, hinted);

    [Fact]
    public void A_request_waits_out_the_hint_delay_and_ends_in_a_hint_pass()
    {
        ReportSchedule s = Schedule();
        Assert.Equal(StepKind.PollPressure, s.Next(0, true, false, false).Kind);
        Assert.Equal(new ReporterStep(StepKind.Wait, HintDelay / 2), s.Next(0, true, false, false));
        Assert.Equal(StepKind.AdvanceRound, s.Next(HintDelay / 2, true, false, false).Kind);
        Assert.Equal(new ReporterStep(StepKind.Wait, HintDelay), s.Next(HintDelay / 2, true, false, false));
        Assert.Equal(ReporterStep.PassOf(PassKind.Hint), s.Next(HintDelay, true, false, false));
    }

    [Fact]
    public void Hinted_memory_left_by_a_pass_is_reported_one_report_delay_later_and_only_once()
    {
        ReportSchedule s = Schedule();
        Assert.False(s.Passed(HintDelay, false, Left(hinted: true)));
        Assert.Equal(HintDelay + Delay, s.ReportDueAt);
        Assert.Equal(new ReporterStep(StepKind.Wait, HintDelay + Delay), s.Next(HintDelay, false, false, false));
        // A later hint pass does not push the report back.
        s.Passed(5 * Second, false, Left(hinted: true));
        Assert.Equal(HintDelay + Delay, s.ReportDueAt);
        Assert.Equal(ReporterStep.PassOf(PassKind.Automatic), s.Next(HintDelay + Delay, false, false, false));
        Assert.Equal(long.MaxValue, s.ReportDueAt);
        Assert.Equal(new ReporterStep(StepKind.Wait, long.MaxValue), s.Next(HintDelay + Delay, false, false, false));
    }

    [Fact]
    public void With_nothing_hinted_left_no_report_pass_is_due()
    {
        ReportSchedule s = Schedule();
        s.Passed(HintDelay, false, Left(hinted: false));
        Assert.Equal(long.MaxValue, s.ReportDueAt);
        Assert.Equal(new ReporterStep(StepKind.Wait, long.MaxValue), s.Next(100 * Second, false, false, false));
    }

    [Fact]
    public void A_due_report_under_lasting_pressure_is_a_pressure_pass()
    {
        ReportSchedule s = Schedule();
        s.Passed(0, false, Left(hinted: true));
        Assert.Equal(ReporterStep.PassOf(PassKind.Pressure), s.Next(Delay, false, false, pressureLasts: true));
    }

    [Fact]
    public void A_spent_report_budget_waits_for_the_next_report_delay_not_a_hint_pass()
    {
        ReportSchedule s = Schedule();
        var spent = new PassReport(new ReportingPassResult(1, 1, 1, 0, BudgetExhausted: true), false, false, HintedLeft: true);
        Assert.False(s.Passed(Delay, false, spent));
        Assert.Equal(2 * Delay, s.ReportDueAt);
    }

    [Fact]
    public void A_due_report_runs_before_a_pending_request_and_the_hint_pass_follows()
    {
        ReportSchedule s = Schedule();
        s.Passed(0, false, Left(hinted: true));
        // Frees keep asking; the report is due all the same.
        Assert.Equal(ReporterStep.PassOf(PassKind.Automatic), s.Next(Delay, requested: true, false, false));
        Assert.True(s.Passed(Delay, false, Left(hinted: false)), "the put-off request asks for its pass");
        Assert.Equal(StepKind.PollPressure, s.Next(Delay, requested: true, false, false).Kind);
    }

    [Fact]
    public void With_a_zero_hint_delay_busy_caches_wait_for_the_next_look_instead_of_a_pass_at_once()
    {
        var s = new ReportSchedule(Delay, -1, hasThreadCaches: true, idleReporting: false, Second, hintDelay: 0);
        s.Park(0);
        Assert.False(s.Passed(0, false, new PassReport(default, CachesBusy: true, YoungLeft: false)));
        // The next look comes a second later (the hint delay, at least a second), not a report delay.
        Assert.Equal(new ReporterStep(StepKind.Wait, Second), s.Next(0, false, false, false));
    }

    [Fact]
    public void With_the_hint_tier_caches_are_looked_at_every_hint_delay_not_every_report_delay()
    {
        var s = new ReportSchedule(Delay, -1, hasThreadCaches: true, idleReporting: false, Second, hintDelay: 3 * Second);
        s.Park(0);
        Assert.Equal(new ReporterStep(StepKind.Wait, 3 * Second), s.Next(0, false, false, false));
        Assert.Equal(StepKind.Look, s.Next(3 * Second, false, false, false).Kind);
    }

    [Fact]
    public void A_failed_report_of_hinted_memory_waits_a_look_even_with_no_delay()
    {
        var s = new ReportSchedule(0, -1, hasThreadCaches: false, idleReporting: false, Second, hintDelay: 0);
        s.Park(0);
        var failed = new PassReport(new ReportingPassResult(0, 0, 1, 1, false), false, false, HintedLeft: true);
        s.Passed(5, false, failed);
        Assert.Equal(5 + Second, s.ReportDueAt);
    }
}
