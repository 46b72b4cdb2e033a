using Sentinel.Abstractions;

namespace Sentinel.Engine.Model;

// What the engine shows of itself: status.json, the API, the status page and the CLI read these.

internal sealed record EngineStatus(string Version, DateTimeOffset StartedAt, DateTimeOffset Now, string ConfigFile, bool Healthy, string Health,
    string? Http, ConfigStatus Config, IReadOnlyList<PluginView> Plugins, IReadOnlyList<string> PluginErrors, IReadOnlyList<RuleStatusView> Rules)
{
    public NotificationStatus? Notifications { get; init; }
    /// <summary>Cluster mode: this node and the others (null on one box).</summary>
    public ClusterStatusView? Cluster { get; init; }
}

/// <summary>The cluster as this node sees it: its members, whether this node reaches the database, what looks wrong.</summary>
internal sealed record ClusterStatusView(string Node, IReadOnlyList<MemberView> Members, string? Problem, IReadOnlyList<string> Warnings);

/// <summary>A node of the cluster: its last check-in (age on the database's clock) and how many rules it runs now.</summary>
internal sealed record MemberView(string Node, MemberState State, string Version, DateTimeOffset StartedAt, DateTimeOffset LastSeen, double AgeSeconds, int Rules, bool This);

internal sealed record ConfigStatus(bool Valid, DateTimeOffset? RejectedAt, IReadOnlyList<string> Errors);

internal sealed record PluginView(string Name, string Version, IReadOnlyList<string> Types);

internal sealed record RuleStatusView(string Name, string? Description, RuleStatus Status, DateTimeOffset Since, string Schedule, string Probe,
    int ConsecutiveFailures, int ConsecutiveSuccesses, long Checks, long Failures, CheckRecord? LastCheck, RemediationState? Remediation = null)
{
    /// <summary>The service it supervises (or its remediation), summed up for people: PID, uptime, restarts, gave-up.</summary>
    public SupervisionView? Service { get; init; }
    /// <summary>Why the rule is not checked, when it waits for a plugin that provides its probe or action type.</summary>
    public string? Waiting { get; init; }
    /// <summary>Cluster mode: the node that runs it (a cluster-wide rule: the node that checked it last).</summary>
    public string? Node { get; init; }
    /// <summary>Cluster mode: why its state is unknown (its node is down or stopped).</summary>
    public string? Unknown { get; init; }
    public UptimeView? Uptime { get; init; }
    /// <summary>The last checks' durations (for a sparkline), when asked for.</summary>
    public Sparkline? Recent { get; init; }
}

/// <summary>The last checks of a rule, oldest first: durations in milliseconds, and which of them failed (indexes).</summary>
internal sealed record Sparkline(IReadOnlyList<double> Ms, IReadOnlyList<int> Failed)
{
    public static readonly Sparkline Empty = new([], []);
}

/// <summary>A rule's state and definition; a rule waiting for its plugin has no definition yet (see <see cref="RuleStatusView.Waiting"/>).</summary>
internal sealed record RuleDetail(RuleStatusView State, RuleDefinitionView? Definition);

internal sealed record RuleDefinitionView(string Schedule, TimeSpan Timeout, int FailureThreshold, int SuccessThreshold, ActionView Probe,
    IReadOnlyList<string> Conditions, IReadOnlyList<ActionView> Remediate, IReadOnlyList<ActionView> Run, System.Text.Json.Nodes.JsonObject? Supervise,
    IReadOnlyList<string> DependsOn, IReadOnlyList<string> Notify, string DefinedAt);

internal sealed record ActionView(string Type, System.Text.Json.Nodes.JsonObject Options);

internal sealed record IncidentDetail(Incident Incident, IReadOnlyList<MessageView> Messages);

internal sealed record MessageView(long Id, string Channel, string Kind, OutboxStatus Status, DateTimeOffset CreatedAt, DateTimeOffset? SentAt, int Attempts,
    string? LastError, string? FailedOverFrom);
