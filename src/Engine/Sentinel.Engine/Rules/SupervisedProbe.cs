using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Rules;

public sealed class SupervisedProbeOptions;

/// <summary>The probe of a rule that supervises a service and names no probe of its own: is the service running?</summary>
internal sealed class SupervisedProbe(Supervisor supervisor, TimeProvider time) : IProbe
{
    public static PluginTypeRegistration Registration { get; } = new("supervised", PluginKind.Probe, typeof(SupervisedProbe), typeof(SupervisedProbeOptions),
        "The supervised service is running (the default probe of a rule with supervise: and no probe:).", "sentinel (built in)", 0);

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (supervisor.Current is { } p && NativeProcess.IsAlive(p.Pid, p.StartTicks))
        {
            var up = time.GetUtcNow() - p.StartedAt;
            return ValueTask.FromResult(ProbeResult.Healthy($"running (pid {p.Pid}, up {Duration.Format(TimeSpan.FromSeconds(Math.Floor(up.TotalSeconds)))})",
                new Dictionary<string, object> { ["pid"] = p.Pid, ["uptime"] = up }));
        }
        return ValueTask.FromResult(ProbeResult.Unhealthy("the service is not running"));
    }
}
