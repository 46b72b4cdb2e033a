namespace Sentinel.Engine.Model;

// What the engine's parts need of the engine: implemented by SentinelEngine, so they never reference it.

/// <summary>What the the notification center needs of the engine.</summary>
internal interface INotificationHost
{
    SentinelConfig Config { get; }
    RuleState? GetState(string rule);
    /// <summary>Incidents or the outbox changed: status.json should show it.</summary>
    void NotificationsChanged();
    /// <summary>A delivery attempt ended: <paramref name="result"/> is sent, failed (to be retried), failed-over or expired.</summary>
    void Delivered(string channel, string result, int messages, string detail);
}

/// <summary>What a a rule's remediator needs of the engine.</summary>
internal interface IRemediationHost
{
    RuleState? GetState(string rule);
    RemediationState UpdateRemediation(string rule, Func<RemediationState, RemediationState> update);
    void Publish(EngineEvent e);
    /// <summary>The first of <paramref name="rules"/> that is down, if any.</summary>
    string? FirstDown(IReadOnlyList<string> rules);
    void RequestCheck(string rule);
}
