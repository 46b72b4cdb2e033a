namespace Sentinel.Engine.Model;

/// <summary>
/// The kinds of <see cref="Sentinel.Abstractions.NotificationItem.Kind"/>, as channels and stored messages spell them
/// (strings in the contract and the outbox; named once here so the engine never compares a misspelt one).
/// </summary>
internal static class NotificationKind
{
    public const string Down = "down";
    public const string Resolved = "resolved";
    /// <summary>An outage that cleared before its message went out: told once, as over.</summary>
    public const string BrieflyDown = "briefly-down";
    public const string Reminder = "reminder";
    public const string Escalation = "escalation";
    public const string GaveUp = "gave-up";
    public const string RemediationFailed = "remediation-failed";
    public const string RestartRate = "restart-rate";
    public const string Exited = "exited";
    public const string Test = "test";

    /// <summary>What does not say the outage is over: it tells (or keeps telling) of one.</summary>
    public static bool TellsOutage(string kind) => kind is not (Resolved or BrieflyDown);
}
