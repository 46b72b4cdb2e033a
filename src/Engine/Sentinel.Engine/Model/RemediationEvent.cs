using System.Text.Json.Serialization;

namespace Sentinel.Engine.Model;

[JsonConverter(typeof(JsonStringEnumConverter<RemediationEventKind>))]
internal enum RemediationEventKind { Remediating, Remediated, RemediationFailed, GaveUp, Exited }

/// <summary>
/// Remediation of a rule: an attempt starts (<c>remediating</c>), succeeds (<c>remediated</c>) or fails
/// (<c>remediation-failed</c>), the budget is spent (<c>gave-up</c>, once per episode), or a supervised service
/// exited (<c>exited</c>). <see cref="Output"/> holds the last lines the actions (or the service) printed.
/// <see cref="RateExceeded"/>, on a <c>remediating</c> event, is the number of attempts within the rule's
/// restart-rate window when this attempt has just taken it over the limit (once per window).
/// </summary>
internal sealed record RemediationEvent(
    string Rule, RemediationEventKind Kind, int Attempt, DateTimeOffset When, string Message, IReadOnlyList<string> Output, int? RateExceeded = null)
    : EngineEvent(When)
{
    /// <summary>The kind as written in config and messages: remediating, remediated, remediation-failed, gave-up, exited.</summary>
    public string Name => Kind switch
    {
        RemediationEventKind.RemediationFailed => NotificationKind.RemediationFailed,
        RemediationEventKind.GaveUp => NotificationKind.GaveUp,
        _ => Kind.ToString().ToLowerInvariant(),
    };
}
