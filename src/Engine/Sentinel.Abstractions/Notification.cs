namespace Sentinel.Abstractions;

/// <summary>
/// What a notification channel sends: a subject and bodies composed by the engine (from its templates, with
/// grouping already applied), and the facts behind them for channels that send structured payloads.
/// </summary>
public sealed class Notification
{
    /// <summary>One line: <c>[Sentinel] DOWN: api</c>, <c>[Sentinel] 3 rules DOWN: a, b, c</c>.</summary>
    public required string Subject { get; init; }

    /// <summary>The plain-text body.</summary>
    public required string Text { get; init; }

    /// <summary>An HTML body, for channels that can show one (email).</summary>
    public string? Html { get; init; }

    /// <summary>A short form for SMS-sized channels (subject plus the essentials).</summary>
    public required string Short { get; init; }

    /// <summary>The incidents and events this notification is about (several when grouped).</summary>
    public IReadOnlyList<NotificationItem> Items { get; init; } = [];

    /// <summary>True for a test message (<c>sentinel notify-test</c>).</summary>
    public bool IsTest { get; init; }
}

/// <summary>One incident or event in a notification.</summary>
/// <param name="Rule">The rule.</param>
/// <param name="Kind"><c>down</c>, <c>resolved</c>, <c>reminder</c>, <c>escalation</c>, <c>gave-up</c>, <c>remediation-failed</c>, <c>test</c>.</param>
/// <param name="Status">The rule's state when the message was composed.</param>
/// <param name="Since">When the incident opened (or the event happened).</param>
/// <param name="Description">What the probe saw (or the remediation said).</param>
/// <param name="Incident">The incident id, when there is one.</param>
/// <param name="Output">Lines of output (a failed restart's, the matched log lines).</param>
/// <param name="Suppressed">Rules that depend on this one and are down too, not alerted for separately.</param>
/// <param name="Restarts">Remediation attempts made for the rule so far, when it remediates.</param>
public sealed record NotificationItem(
    string Rule, string Kind, string Status, DateTimeOffset Since, string? Description, long? Incident = null,
    IReadOnlyList<string>? Output = null, IReadOnlyList<string>? Suppressed = null, long? Restarts = null);

/// <summary>
/// Thrown by an action to say how it failed. <see cref="Permanent"/> failures (an invalid phone number, a
/// rejected credential) are not retried; the engine hands the message to the fallback channel at once.
/// Any other exception is treated as transient and retried with backoff.
/// </summary>
public sealed class ActionFailedException(string message, bool permanent, Exception? inner = null) : Exception(message, inner)
{
    /// <summary>Retrying cannot help.</summary>
    public bool Permanent { get; } = permanent;
}
