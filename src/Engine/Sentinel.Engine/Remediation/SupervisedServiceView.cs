using Sentinel.Abstractions;

namespace Sentinel.Engine.Remediation;

/// <summary>A supervised rule's service as its probe sees it: whatever remediator owns the rule now, read live.</summary>
internal sealed class SupervisedServiceView(Func<RuleRemediator?> owner) : ISupervisedService
{
    public int? Pid => owner()?.RunningProcess?.Pid;

    public DateTimeOffset? StartedAt => owner()?.RunningProcess?.StartedAt;

    public bool Restarting => owner()?.Restarting == true;
}
