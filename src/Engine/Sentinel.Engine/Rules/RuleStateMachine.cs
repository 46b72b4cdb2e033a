namespace Sentinel.Engine.Rules;

/// <summary>
/// <c>pending → healthy ⇄ failing → down → healthy</c>. <c>failure-threshold</c> failures in a row take a rule
/// down (through failing); <c>success-threshold</c> successes in a row bring a down rule back. A single success
/// ends a failing streak that had not yet reached the threshold. Paused rules ignore checks.
/// </summary>
internal static class RuleStateMachine
{
    public static (RuleState Next, RuleTransition? Transition) Apply(RuleState state, CheckRecord check, int failureThreshold, int successThreshold)
    {
        if (state.Status == RuleStatus.Paused) return (state, null);
        var success = check.IsSuccess;
        var failures = success ? 0 : state.ConsecutiveFailures + 1;
        var successes = success ? state.ConsecutiveSuccesses + 1 : 0;
        var next = state.Status switch
        {
            RuleStatus.Pending or RuleStatus.Healthy or RuleStatus.Failing when success => RuleStatus.Healthy,
            RuleStatus.Pending or RuleStatus.Healthy or RuleStatus.Failing => failures >= failureThreshold ? RuleStatus.Down : RuleStatus.Failing,
            RuleStatus.Down when success && successes >= successThreshold => RuleStatus.Healthy,
            _ => RuleStatus.Down,
        };
        var updated = state with
        {
            Status = next,
            Since = next == state.Status ? state.Since : check.At,
            ConsecutiveFailures = failures,
            ConsecutiveSuccesses = successes,
            Checks = state.Checks + 1,
            Failures = state.Failures + (success ? 0 : 1),
            LastCheck = check,
        };
        return (updated, next == state.Status ? null : new RuleTransition(state.Rule, state.Status, next, check.At, check, updated));
    }

    public static (RuleState Next, RuleTransition? Transition) SetPaused(RuleState state, bool paused, DateTimeOffset now)
    {
        if (paused == (state.Status == RuleStatus.Paused)) return (state, null);
        var next = paused ? RuleStatus.Paused : RuleStatus.Pending;
        var updated = state with { Status = next, Since = now, ConsecutiveFailures = 0, ConsecutiveSuccesses = 0 };
        return (updated, new RuleTransition(state.Rule, state.Status, next, now, state.LastCheck, updated));
    }
}
