using Microsoft.Extensions.Time.Testing;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Tests.Remediation;

public class RemediationPlannerTests
{
    private static readonly RemediationPolicy Policy = new(
        BackoffInitial: TimeSpan.FromSeconds(1), BackoffFactor: 2, BackoffMax: TimeSpan.FromSeconds(10), Jitter: 0,
        BudgetMax: 5, BudgetWithin: TimeSpan.FromMinutes(10), RetryAfter: TimeSpan.FromMinutes(10), StableAfter: TimeSpan.FromMinutes(5),
        Grace: TimeSpan.FromSeconds(30));

    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    private RemediationState Attempt(RemediationState s, RemediationPolicy? p = null)
    {
        var d = RemediationPlanner.Decide(s, p ?? Policy, _time.GetUtcNow());
        d.Kind.Should().Be(RemediationDecisionKind.Run);
        return RemediationPlanner.Attempted(s, p ?? Policy, _time.GetUtcNow(), 0.5);
    }

    [Fact]
    public void FirstAttempt_IsImmediate_ThenWaitsDoubleUpToMax()
    {
        var s = Attempt(new RemediationState());
        var waits = new List<TimeSpan>();
        for (var i = 0; i < 4; i++)
        {
            var d = RemediationPlanner.Decide(s, Policy, _time.GetUtcNow());
            d.Kind.Should().Be(RemediationDecisionKind.Wait);
            waits.Add(d.At - _time.GetUtcNow());
            _time.Advance(d.At - _time.GetUtcNow() - TimeSpan.FromMilliseconds(1));
            RemediationPlanner.Decide(s, Policy, _time.GetUtcNow()).Kind.Should().Be(RemediationDecisionKind.Wait, "the backoff has 1ms left");
            _time.Advance(TimeSpan.FromMilliseconds(1));
            s = Attempt(s);
        }
        waits.Should().Equal(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4), TimeSpan.FromSeconds(8));
        RemediationPlanner.Delay(Policy, 5, 0.5).Should().Be(TimeSpan.FromSeconds(10), "16s is capped at max");
        s.Streak.Should().Be(5);
    }

    [Fact]
    public void TheReadmeExample_WithDefaults_KeepsACrashLoopingBotTriedAtLeastEveryMinute_Forever()
    {
        // restart-budget: { max: 5, within: 10m } and nothing else, as README shows it; jitter 0 for exact times.
        var p = RemediationPolicy.From(new BackoffSpec { Jitter = 0 }, new RestartBudgetSpec { Max = 5, Within = TimeSpan.FromMinutes(10) }, null);
        var start = _time.GetUtcNow();
        var s = new RemediationState();
        var times = new List<TimeSpan>();
        for (var n = 0; n < 12; n++)
        {
            var d = RemediationPlanner.Decide(s, p, _time.GetUtcNow());
            if (d.Kind == RemediationDecisionKind.GiveUp) { s = RemediationPlanner.GiveUp(s, p, _time.GetUtcNow()); d = RemediationPlanner.Decide(s, p, _time.GetUtcNow()); }
            if (d.Kind == RemediationDecisionKind.Wait) _time.Advance(d.At - _time.GetUtcNow());
            times.Add(_time.GetUtcNow() - start);
            s = RemediationPlanner.Attempted(s, p, _time.GetUtcNow(), 0.5);
        }
        // Attempts at 0, 1s, 3s, 7s, 15s; the sixth would exceed the budget: gave up, then one attempt a minute.
        times.Take(5).Should().Equal(TimeSpan.Zero, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(3), TimeSpan.FromSeconds(7), TimeSpan.FromSeconds(15));
        times[5].Should().Be(TimeSpan.FromSeconds(75), "gave up at 15 s, when a sixth attempt was needed; the first slow retry a minute later");
        times.Zip(times.Skip(1), (a, b) => b - a).Skip(4).Should().OnlyContain(gap => gap <= TimeSpan.FromMinutes(1), "never dead for longer than a minute");
        p.RetryAfter.Should().Be(TimeSpan.FromMinutes(1));
        p.BackoffMax.Should().Be(TimeSpan.FromMinutes(1));
    }

    [Fact]
    public void Jitter_SpreadsTheWait_WithinItsFraction_AndNeverPastMax()
    {
        var p = Policy with { Jitter = 0.2 };
        RemediationPlanner.Delay(p, 2, 0).Should().Be(TimeSpan.FromSeconds(1.6));
        RemediationPlanner.Delay(p, 2, 0.999999).Should().BeCloseTo(TimeSpan.FromSeconds(2.4), TimeSpan.FromMilliseconds(1));
        RemediationPlanner.Delay(p, 10, 0.999999).Should().Be(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void SpentBudget_GivesUpOnce_ThenRetriesSlowly_NeverStops()
    {
        var p = Policy with { BudgetMax = 3, BackoffInitial = TimeSpan.Zero, BackoffMax = TimeSpan.Zero };
        var s = new RemediationState();
        for (var i = 0; i < 3; i++) { s = Attempt(s, p); _time.Advance(TimeSpan.FromSeconds(1)); }
        var d = RemediationPlanner.Decide(s, p, _time.GetUtcNow());
        d.Kind.Should().Be(RemediationDecisionKind.GiveUp);
        s = RemediationPlanner.GiveUp(s, p, _time.GetUtcNow());
        s.GaveUp.Should().BeTrue();

        // Given up: no further GiveUp decisions (so one event), an attempt every retry-after.
        for (var slow = 0; slow < 3; slow++)
        {
            _time.Advance(p.RetryAfter - TimeSpan.FromSeconds(1));
            RemediationPlanner.Decide(s, p, _time.GetUtcNow()).Kind.Should().Be(RemediationDecisionKind.Wait);
            _time.Advance(TimeSpan.FromSeconds(1));
            var retry = RemediationPlanner.Decide(s, p, _time.GetUtcNow());
            retry.Kind.Should().Be(RemediationDecisionKind.Run);
            retry.Attempt.Should().Be(4 + slow);
            s = RemediationPlanner.Attempted(s, p, _time.GetUtcNow(), 0.5);
            s.GaveUp.Should().BeTrue();
        }
    }

    [Fact]
    public void Budget_CountsAttemptsInASlidingWindow()
    {
        var p = Policy with { BudgetMax = 2, BudgetWithin = TimeSpan.FromMinutes(1), BackoffInitial = TimeSpan.Zero, BackoffMax = TimeSpan.Zero };
        var s = Attempt(new RemediationState(), p);
        _time.Advance(TimeSpan.FromSeconds(40));
        s = Attempt(s, p);
        RemediationPlanner.Decide(s, p, _time.GetUtcNow()).Kind.Should().Be(RemediationDecisionKind.GiveUp);
        _time.Advance(TimeSpan.FromSeconds(21)); // the first attempt left the window
        RemediationPlanner.Decide(s, p, _time.GetUtcNow()).Kind.Should().Be(RemediationDecisionKind.Run);
    }

    [Fact]
    public void StableAfter_ResetsBudgetBackoffAndGivenUp_ButAFailureRestartsTheClock()
    {
        var s = RemediationPlanner.GiveUp(Attempt(new RemediationState()), Policy, _time.GetUtcNow());
        s = RemediationPlanner.Healthy(s, Policy, _time.GetUtcNow(), out var reset);
        reset.Should().BeFalse();
        _time.Advance(TimeSpan.FromMinutes(4));
        s = RemediationPlanner.Failed(s, _time.GetUtcNow());
        s = RemediationPlanner.Healthy(s, Policy, _time.GetUtcNow(), out reset);
        _time.Advance(TimeSpan.FromMinutes(4));
        s = RemediationPlanner.Healthy(s, Policy, _time.GetUtcNow(), out reset);
        reset.Should().BeFalse("health was interrupted 4 minutes ago");
        _time.Advance(TimeSpan.FromMinutes(1));
        s = RemediationPlanner.Healthy(s, Policy, _time.GetUtcNow(), out reset);
        reset.Should().BeTrue();
        s.Should().BeEquivalentTo(new { Streak = 0, GaveUp = false, NextAttemptAt = (DateTimeOffset?)null, Total = 1L });
        s.Attempts.Should().BeEmpty();
        RemediationPlanner.Decide(s, Policy, _time.GetUtcNow()).Kind.Should().Be(RemediationDecisionKind.Run);
    }

    [Fact]
    public void FailuresDuringGrace_DoNotCountTowardTheNextAttempt()
    {
        var s = Attempt(new RemediationState());
        for (var i = 0; i < 5; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(5));
            s = RemediationPlanner.Failed(s, _time.GetUtcNow());
            RemediationPlanner.FailuresWarrantAttempt(s, failureThreshold: 2, _time.GetUtcNow()).Should().BeFalse("inside the 30s grace");
        }
        s.FailuresAfterGrace.Should().Be(0);
        _time.Advance(TimeSpan.FromSeconds(6));
        s = RemediationPlanner.Failed(s, _time.GetUtcNow());
        RemediationPlanner.FailuresWarrantAttempt(s, 2, _time.GetUtcNow()).Should().BeFalse("one failure after grace, threshold 2");
        _time.Advance(TimeSpan.FromSeconds(5));
        s = RemediationPlanner.Failed(s, _time.GetUtcNow());
        RemediationPlanner.FailuresWarrantAttempt(s, 2, _time.GetUtcNow()).Should().BeTrue();
    }

    [Fact]
    public void TheRestartRate_IsToldOncePerWindow_AndOutlivesEpisodes()
    {
        var rate = new RestartRateSpec { Max = 2, Within = TimeSpan.FromHours(1) };
        var s = new RemediationState();
        var told = new List<int?>();
        for (var i = 0; i < 6; i++)
        {
            s = RemediationPlanner.CountRate(s, rate, _time.GetUtcNow(), out var exceeded);
            told.Add(exceeded);
            if (i == 3) s = RemediationPlanner.NewEpisode(s); // stable in between: the rate still counts
            _time.Advance(TimeSpan.FromMinutes(5));
        }
        told.Should().Equal(null, null, 3, null, null, null);
        _time.Advance(TimeSpan.FromMinutes(35)); // 55m after it was told: still the same window
        s = RemediationPlanner.CountRate(s, rate, _time.GetUtcNow(), out var same);
        same.Should().BeNull();
        _time.Advance(TimeSpan.FromMinutes(5)); // an hour after it was told; the attempts at 15m, 20m, 25m and 65m are still within the hour
        RemediationPlanner.CountRate(s, rate, _time.GetUtcNow(), out var again);
        again.Should().Be(5, "a new window, and five attempts within its hour");
    }

    [Fact]
    public void TheFirstHealthyCheckAfterAnAttempt_EndsItsGrace_SoAFailureAfterAGoodStartCountsAtOnce()
    {
        var s = Attempt(new RemediationState());
        _time.Advance(TimeSpan.FromSeconds(5));
        s = RemediationPlanner.Failed(s, _time.GetUtcNow());
        RemediationPlanner.FailuresWarrantAttempt(s, 1, _time.GetUtcNow()).Should().BeFalse("still starting: inside the 30s grace");
        _time.Advance(TimeSpan.FromSeconds(5));
        s = RemediationPlanner.Healthy(s, Policy, _time.GetUtcNow(), out _);
        s.GraceUntil.Should().BeNull();
        _time.Advance(TimeSpan.FromSeconds(5)); // 15s after the restart: over its memory cap
        s = RemediationPlanner.Failed(s, _time.GetUtcNow());
        RemediationPlanner.FailuresWarrantAttempt(s, 1, _time.GetUtcNow()).Should().BeTrue("it came up healthy: grace no longer holds the rule");
    }
}
