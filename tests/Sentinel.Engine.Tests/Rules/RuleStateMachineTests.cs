using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Tests.Rules;

public sealed class RuleStateMachineTests
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 11, 22, 12, 0, 0, TimeSpan.Zero));

    private CheckRecord Check(bool ok, ProbeStatus? status = null)
    {
        _time.Advance(TimeSpan.FromSeconds(10));
        return new CheckRecord(status ?? (ok ? ProbeStatus.Healthy : ProbeStatus.Unhealthy), ok ? "fine" : "broken", _time.GetUtcNow(), TimeSpan.FromMilliseconds(5));
    }

    private (RuleState, List<RuleTransition>) Run(RuleState state, IEnumerable<bool> results, int failure = 3, int success = 2)
    {
        var transitions = new List<RuleTransition>();
        foreach (var ok in results)
        {
            (state, var t) = RuleStateMachine.Apply(state, Check(ok), failure, success);
            if (t is not null) transitions.Add(t);
        }
        return (state, transitions);
    }

    private static string Path(IEnumerable<RuleTransition> ts) => string.Join(" ", ts.Select(t => $"{t.From}>{t.To}"));

    [Fact]
    public void Pending_FirstSuccess_IsHealthy()
    {
        var (state, ts) = Run(RuleState.New("r", _time.GetUtcNow()), [true]);
        state.Status.Should().Be(RuleStatus.Healthy);
        Path(ts).Should().Be("Pending>Healthy");
    }

    [Fact]
    public void FailureThreshold_FailuresInARow_TakeTheRuleDown_ThroughFailing()
    {
        var start = RuleState.New("r", _time.GetUtcNow());
        var (state, ts) = Run(start, [true, false, false, false, false]);
        state.Status.Should().Be(RuleStatus.Down);
        state.ConsecutiveFailures.Should().Be(4);
        Path(ts).Should().Be("Pending>Healthy Healthy>Failing Failing>Down");
        ts[^1].Check!.Description.Should().Be("broken");
    }

    [Fact]
    public void Failing_ASuccessBeforeTheThreshold_ReturnsToHealthy_WithoutGoingDown()
    {
        var (state, ts) = Run(RuleState.New("r", _time.GetUtcNow()), [true, false, false, true, false, false, true]);
        state.Status.Should().Be(RuleStatus.Healthy);
        Path(ts).Should().Be("Pending>Healthy Healthy>Failing Failing>Healthy Healthy>Failing Failing>Healthy");
    }

    [Fact]
    public void Down_NeedsSuccessThresholdSuccessesInARow_ToRecover()
    {
        var (down, _) = Run(RuleState.New("r", _time.GetUtcNow()), [false, false, false]);
        down.Status.Should().Be(RuleStatus.Down);

        var (flapping, ts1) = Run(down, [true, false, true, false]);
        flapping.Status.Should().Be(RuleStatus.Down);
        ts1.Should().BeEmpty();

        var (recovered, ts2) = Run(flapping, [true, true, true], success: 3);
        recovered.Status.Should().Be(RuleStatus.Healthy);
        Path(ts2).Should().Be("Down>Healthy");
    }

    [Fact]
    public void FailureThresholdOfOne_GoesStraightDown()
    {
        var (state, ts) = Run(RuleState.New("r", _time.GetUtcNow()), [true, false], failure: 1);
        state.Status.Should().Be(RuleStatus.Down);
        Path(ts).Should().Be("Pending>Healthy Healthy>Down");
    }

    [Fact]
    public void Degraded_CountsAsASuccess()
    {
        var state = RuleState.New("r", _time.GetUtcNow());
        (state, _) = RuleStateMachine.Apply(state, Check(true, ProbeStatus.Degraded), 3, 2);
        state.Status.Should().Be(RuleStatus.Healthy);
        state.LastCheck!.Status.Should().Be(ProbeStatus.Degraded);
    }

    [Fact]
    public void Since_ChangesOnlyOnTransitions_AndCountersAccumulate()
    {
        var state = RuleState.New("r", _time.GetUtcNow());
        (state, _) = Run(state, [true]);
        var healthySince = state.Since;
        (state, _) = Run(state, [true, true]);
        state.Since.Should().Be(healthySince);
        (state, _) = Run(state, [false]);
        state.Since.Should().Be(_time.GetUtcNow());
        state.Checks.Should().Be(4);
        state.Failures.Should().Be(1);
    }

    [Fact]
    public void Paused_IgnoresChecks_AndResumeStartsPending()
    {
        var state = RuleState.New("r", _time.GetUtcNow());
        (state, var pause) = RuleStateMachine.SetPaused(state, true, _time.GetUtcNow());
        pause!.To.Should().Be(RuleStatus.Paused);
        var (after, ts) = Run(state, [false, false, false, false]);
        after.Status.Should().Be(RuleStatus.Paused);
        ts.Should().BeEmpty();
        (after, var resume) = RuleStateMachine.SetPaused(after, false, _time.GetUtcNow());
        resume!.To.Should().Be(RuleStatus.Pending);
        RuleStateMachine.SetPaused(after, false, _time.GetUtcNow()).Transition.Should().BeNull();
    }
}
