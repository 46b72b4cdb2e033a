using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Remediation;

internal sealed class SupervisedProbeOptions;

/// <summary>The probe of a rule that supervises a service and names no probe of its own: is the service running?</summary>
internal sealed class SupervisedProbe : IProbe
{
    private readonly Func<SupervisedProcess?> _current;
    private readonly TimeProvider _time;

    private SupervisedProbe(Func<SupervisedProcess?> current, TimeProvider time)
    {
        _current = current;
        _time = time;
    }

    public static PluginTypeRegistration Registration { get; } = new("supervised", PluginKind.Probe, typeof(SupervisedProbe), typeof(SupervisedProbeOptions),
        "The supervised service is running (the default probe of a rule with supervise: and no probe:).", "sentinel (built in)", 0);

    internal SupervisedProbe(Supervisor supervisor, TimeProvider time) : this(() => supervisor.Current, time) { }

    /// <summary>For `sentinel check`, outside a running engine: the process the rule's pidfile names.</summary>
    public static IProbe FromPidfile(SuperviseSpec spec, TimeProvider time) => new SupervisedProbe(() =>
    {
        try
        {
            return int.TryParse(File.ReadAllText(spec.Pidfile!).Trim(), out var pid) && NativeProcess.Stat(pid) is { Zombie: false } s
                ? new SupervisedProcess(pid, s.StartTicks, File.GetLastWriteTimeUtc(spec.Pidfile!))
                : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }, time);

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        if (_current() is { } p && NativeProcess.IsAlive(p.Pid, p.StartTicks))
        {
            var up = _time.GetUtcNow() - p.StartedAt;
            return ValueTask.FromResult(ProbeResult.Healthy($"running (pid {p.Pid}, up {Duration.Format(TimeSpan.FromSeconds(Math.Floor(up.TotalSeconds)))})",
                new Dictionary<string, object> { ["pid"] = p.Pid, ["uptime"] = up }));
        }
        return ValueTask.FromResult(ProbeResult.Unhealthy("the service is not running"));
    }
}
