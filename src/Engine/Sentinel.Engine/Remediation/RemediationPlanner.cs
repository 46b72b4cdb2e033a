using System.Text.Json.Serialization;

namespace Sentinel.Engine.Remediation;


[JsonConverter(typeof(JsonStringEnumConverter<RemediationDecisionKind>))]
internal enum RemediationDecisionKind { Run, Wait, GiveUp }

/// <summary>What to do now: run attempt <see cref="Attempt"/>, wait until <see cref="At"/>, or give up.</summary>
internal readonly record struct RemediationDecision(RemediationDecisionKind Kind, DateTimeOffset At, int Attempt);

/// <summary>
/// The remediation policy as pure functions of state, policy and time: exponential backoff between attempts (the
/// first of an episode is immediate), a budget of <c>max</c> attempts <c>within</c> a sliding window, giving up
/// once when it is spent, slow retries every <c>retry-after</c> after that, and a reset after <c>stable-after</c>
/// of health.
/// </summary>
internal static class RemediationPlanner
{
    public static RemediationDecision Decide(RemediationState s, RemediationPolicy p, DateTimeOffset now)
    {
        var attempt = s.Streak + 1;
        if (s.GaveUp)
        {
            var slow = s.NextAttemptAt ?? now;
            return now >= slow ? new(RemediationDecisionKind.Run, now, attempt) : new(RemediationDecisionKind.Wait, slow, attempt);
        }
        if (s.Attempts.Count(a => a > now - p.BudgetWithin) >= p.BudgetMax) return new(RemediationDecisionKind.GiveUp, now, attempt);
        var due = s.NextAttemptAt ?? now;
        return now >= due ? new(RemediationDecisionKind.Run, now, attempt) : new(RemediationDecisionKind.Wait, due, attempt);
    }

    /// <summary>The budget is spent: record it (the caller emits gave-up once) and set the first slow retry.</summary>
    public static RemediationState GiveUp(RemediationState s, RemediationPolicy p, DateTimeOffset now)
        => s with { GaveUp = true, GaveUpAt = now, NextAttemptAt = now + p.RetryAfter };

    /// <summary>An attempt starts now. <paramref name="random"/> in [0, 1) spreads the next wait by the jitter.</summary>
    public static RemediationState Attempted(RemediationState s, RemediationPolicy p, DateTimeOffset now, double random)
    {
        var streak = s.Streak + 1;
        return s with
        {
            Attempts = [.. s.Attempts.Where(a => a > now - p.BudgetWithin), now],
            Streak = streak,
            Total = s.Total + 1,
            LastAttemptAt = now,
            NextAttemptAt = now + (s.GaveUp ? p.RetryAfter : Delay(p, streak, random)),
            GraceUntil = now + p.Grace,
            FailuresAfterGrace = 0,
            HealthySince = null,
        };
    }

    /// <summary>The wait after attempt <paramref name="attemptsMade"/> before the next: initial × factor^(n−1), capped at max, ± jitter.</summary>
    public static TimeSpan Delay(RemediationPolicy p, int attemptsMade, double random)
    {
        var exponent = Math.Max(0, attemptsMade - 1);
        var ticks = Math.Min(p.BackoffMax.Ticks, p.BackoffInitial.Ticks * Math.Pow(p.BackoffFactor, Math.Min(exponent, 64)));
        ticks *= 1 + p.Jitter * (2 * random - 1);
        return TimeSpan.FromTicks((long)Math.Clamp(ticks, 0, p.BackoffMax.Ticks));
    }

    /// <summary>A healthy observation; resets the episode once healthy for stable-after. <paramref name="since"/> overrides when health began.</summary>
    public static RemediationState Healthy(RemediationState s, RemediationPolicy p, DateTimeOffset now, out bool reset, DateTimeOffset? since = null)
    {
        reset = false;
        var healthySince = since ?? s.HealthySince ?? now;
        if ((s.Streak > 0 || s.GaveUp) && now - healthySince >= p.StableAfter)
        {
            reset = true;
            return NewEpisode(s) with { HealthySince = healthySince };
        }
        // The service is up again: grace (time to start) is over. A failure from now on is real, so a memory cap or a
        // failing health check after a good start is acted on at once, not held for the rest of the grace period.
        return s with { HealthySince = healthySince, FailuresAfterGrace = 0, GraceUntil = null };
    }

    /// <summary>A fresh episode: budget, backoff and the given-up state cleared; the totals and the process kept.</summary>
    public static RemediationState NewEpisode(RemediationState s)
        => new() { Total = s.Total, LastOutcome = s.LastOutcome, Process = s.Process, RateAttempts = s.RateAttempts, RateExceededAt = s.RateExceededAt };

    /// <summary>
    /// Counts an attempt made now in the restart-rate window; <paramref name="exceeded"/> is the count when it has just
    /// gone over the limit (once per window), else null. Kept in the state, so a restart of Sentinel neither forgets
    /// the attempts nor tells the same rate twice.
    /// </summary>
    public static RemediationState CountRate(RemediationState s, RestartRateSpec rate, DateTimeOffset now, out int? exceeded)
    {
        List<DateTimeOffset> attempts = [.. s.RateAttempts.Where(a => a > now - rate.Within), now];
        var over = attempts.Count > rate.Max && (s.RateExceededAt is not { } told || now - told >= rate.Within);
        exceeded = over ? attempts.Count : null;
        return s with { RateAttempts = attempts, RateExceededAt = over ? now : s.RateExceededAt };
    }

    /// <summary>How much longer than its start period a service must have run for its crash to be restarted without backoff.</summary>
    public static readonly TimeSpan QuickRestartMargin = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A supervised service exited after running <paramref name="ran"/>. One that ran at least its start period plus
    /// <see cref="QuickRestartMargin"/> started fine and crashed later: it is restarted at once (the attempt still
    /// counts in the budget), not after the backoff of the crash loop that an immediate exit would be.
    /// </summary>
    public static RemediationState Exited(RemediationState s, SuperviseSpec spec, TimeSpan ran)
        => !s.GaveUp && ran >= spec.StartPeriod + QuickRestartMargin ? s with { NextAttemptAt = null } : s;

    /// <summary>A failed observation: health is interrupted; past the grace period it counts toward the next attempt.</summary>
    public static RemediationState Failed(RemediationState s, DateTimeOffset now)
        => s with { HealthySince = null, FailuresAfterGrace = s.GraceUntil is { } g && now < g ? s.FailuresAfterGrace : s.FailuresAfterGrace + 1 };

    /// <summary>True when failures have been seen past the grace period enough times to warrant the next attempt.</summary>
    public static bool FailuresWarrantAttempt(RemediationState s, int failureThreshold, DateTimeOffset now)
        => s.GraceUntil is not { } g || now >= g ? s.Streak == 0 || s.FailuresAfterGrace >= failureThreshold : false;
}
