using Sentinel.Abstractions;

namespace Sentinel.Engine.BuiltIn;

/// <summary>The probes built into the engine (they need its ping endpoint).</summary>
internal sealed class EngineProbesPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar)
    {
        registrar.AddProbe<HeartbeatProbe, HeartbeatProbeOptions>("heartbeat",
            "Expects healthchecks.io-style pings on Sentinel's /ping endpoint (period or cron, grace, start without finish, /fail).");
        registrar.AddProbe<TimerProbe, TimerProbeOptions>("timer", "Always healthy: a rule that only runs its `run:` actions on its schedule (a backup every hour).");
        registrar.AddProbe<ClusterNodeProbe, ClusterNodeProbeOptions>(ClusterNodeProbe.Type,
            "A node of the cluster keeps checking in (cluster mode makes one rule of it, node:NAME, for every node it knows).");
        registrar.AddAction<RestartAction, RestartActionOptions>("restart", "Stops and starts the rule's supervised service (a remediation step, e.g. after restore).");
    }
}

internal sealed class RestartActionOptions;

/// <summary>Carried out by the rule's remediator, which owns the supervised service; reaching this means the rule supervises nothing.</summary>
internal sealed class RestartAction : IAction
{
    public ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
        => throw new ActionFailedException($"rule '{context.RuleName}' has no supervise: block: 'restart' restarts a supervised service (use exec or signal otherwise)", permanent: true);
}

internal sealed class TimerProbeOptions;

[ClusterWide]
internal sealed class TimerProbe : IProbe
{
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken) => ValueTask.FromResult(ProbeResult.Healthy("tick"));
}
