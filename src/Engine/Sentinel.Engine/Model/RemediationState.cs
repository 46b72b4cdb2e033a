using System.Text.Json.Serialization;

namespace Sentinel.Engine.Model;

/// <summary>
/// A rule's remediation bookkeeping, persisted with its state so that counts and timers survive a restart of
/// Sentinel. Times are absolute; nothing here depends on when the engine started.
/// </summary>
internal sealed record RemediationState
{
    /// <summary>When the attempts inside the budget window were made.</summary>
    public IReadOnlyList<DateTimeOffset> Attempts { get; init; } = [];

    /// <summary>Attempts in the current episode (since the last reset); the next attempt's number is this plus one.</summary>
    public int Streak { get; init; }

    /// <summary>Attempts ever made for this rule.</summary>
    public long Total { get; init; }

    public DateTimeOffset? LastAttemptAt { get; init; }

    /// <summary>The earliest time of the next attempt (backoff, or the slow retry after giving up).</summary>
    public DateTimeOffset? NextAttemptAt { get; init; }

    /// <summary>Failures before this time do not count toward the next attempt; cleared by the first healthy check after the attempt.</summary>
    public DateTimeOffset? GraceUntil { get; init; }

    /// <summary>Since when the rule has been healthy without a break (for the reset after stable-after).</summary>
    public DateTimeOffset? HealthySince { get; init; }

    /// <summary>Failed checks since the grace period of the last attempt ended.</summary>
    public int FailuresAfterGrace { get; init; }

    /// <summary>The budget is spent: attempts continue only every retry-after, until the rule is stable again.</summary>
    public bool GaveUp { get; init; }

    public DateTimeOffset? GaveUpAt { get; init; }

    /// <summary>What the last attempt did, in one line.</summary>
    public string? LastOutcome { get; init; }

    /// <summary>Stopped by the operator (`sentinel stop`): not started or restarted, its rule paused, until `sentinel start`.</summary>
    public bool Held { get; init; }

    /// <summary>The supervised service's process, when the rule supervises one and it runs.</summary>
    public SupervisedProcess? Process { get; init; }

    /// <summary>When the attempts inside the restart-rate window were made (kept across episodes and restarts of Sentinel).</summary>
    public IReadOnlyList<DateTimeOffset> RateAttempts { get; init; } = [];

    /// <summary>When the restart rate was last found over its limit (it is told once per window).</summary>
    public DateTimeOffset? RateExceededAt { get; init; }
}

/// <summary>A supervised process, identified by PID and kernel start time (so a reused PID is never adopted).</summary>
internal sealed record SupervisedProcess(int Pid, long StartTicks, DateTimeOffset StartedAt);
