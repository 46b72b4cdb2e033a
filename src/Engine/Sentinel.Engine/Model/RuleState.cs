using System.Text.Json.Serialization;
using Sentinel.Abstractions;

namespace Sentinel.Engine.Model;

[JsonConverter(typeof(JsonStringEnumConverter<RuleStatus>))]
internal enum RuleStatus
{
    Pending, Healthy, Failing, Down, Paused,
    /// <summary>Its probe or action type is not provided by any loaded plugin yet; it is not checked until one is.</summary>
    Waiting,
    /// <summary>Cluster mode, shown only (never stored): the node that runs it is down or stopped, so it is not checked.</summary>
    Unknown,
}

/// <summary>The outcome of one check of a rule, after conditions were judged.</summary>
internal sealed record CheckRecord(
    ProbeStatus Status,
    string? Description,
    DateTimeOffset At,
    TimeSpan Duration,
    IReadOnlyDictionary<string, object>? Data = null,
    bool Stuck = false)
{
    [JsonIgnore]
    public bool IsSuccess => Status != ProbeStatus.Unhealthy;
}

/// <summary>A rule's state: what the thresholds have made of its recent checks.</summary>
internal sealed record RuleState(
    string Rule,
    RuleStatus Status,
    DateTimeOffset Since,
    int ConsecutiveFailures = 0,
    int ConsecutiveSuccesses = 0,
    long Checks = 0,
    long Failures = 0,
    CheckRecord? LastCheck = null,
    IReadOnlyDictionary<string, string>? ProbeState = null,
    RemediationState? Remediation = null)
{
    /// <summary>
    /// The rule's <c>paused:</c> in the configuration when it was last applied. The config's value is applied only
    /// when it changes (or the rule is new), so a pause or resume through the API outlives a restart of Sentinel.
    /// </summary>
    public bool? ConfigPaused { get; init; }

    public static RuleState New(string rule, DateTimeOffset now, bool paused = false)
        => new(rule, paused ? RuleStatus.Paused : RuleStatus.Pending, now);
}
