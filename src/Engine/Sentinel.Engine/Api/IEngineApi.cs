using Sentinel.Engine.Events;

namespace Sentinel.Engine.Api;

/// <summary>
/// What the status page, the REST API and /metrics ask of the engine: queries and operator commands. The engine
/// implements it; Api/ never references the engine class, so the HTTP surface can move out of the engine's folder.
/// </summary>
internal interface IEngineApi
{
    SentinelConfig Config { get; }
    DateTimeOffset Now { get; }
    string? ApiToken { get; }
    Redactor Redactor { get; }
    ActivityLog Activity { get; }
    History.HistoryRecorder? History { get; }
    Metrics.EngineMetrics Metrics { get; }
    Heartbeat.PingRegistry Pings { get; }

    (bool Healthy, string Reason) GetHealth();
    EngineStatus GetStatus(int recent = 0, bool uptime = true);
    RuleState? GetState(string rule);
    RuleDetail? GetRule(string rule);
    bool HasRule(string rule);
    /// <summary>Cluster mode: the other node that runs the rule now (commands about it go there), or null.</summary>
    string? RunElsewhere(string rule);
    /// <summary>Cluster mode: where this node reaches <paramref name="node"/>'s API, or why it cannot.</summary>
    (Uri? Api, string? Unreachable) ApiOf(string node);
    Task<IReadOnlyList<IncidentDetail>> GetIncidentsAsync(CancellationToken cancellationToken, string? rule = null, int limit = 100);

    Task<bool> SetPausedAsync(string rule, bool paused, CancellationToken cancellationToken = default);
    Task<CheckRecord?> RunNowAsync(string rule, CancellationToken cancellationToken);
    Task<(bool Ran, bool Ok, string Message)> RemediateNowAsync(string rule, string who);
    Task<(int Status, string Message)> ControlServiceAsync(string rule, string verb, CancellationToken cancellationToken);
    Task<bool> AckAsync(long incident, CancellationToken cancellationToken);
}
