using Prometheus;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Metrics;

/// <summary>
/// The engine's Prometheus metrics (prometheus-net, a registry of its own per engine). Counters and the check duration
/// histogram move with each check and event; gauges (rule state, outbox depth, plugin errors) are read from the engine
/// when scraped. The series every rule has (its state, its checks) are <see cref="RuleSeries"/>, not the registry's, for
/// their memory. Series of removed rules are dropped.
/// </summary>
internal sealed class EngineMetrics
{
    private readonly RuleSeries _checks = new();
    private readonly Counter _transitions;
    private readonly Counter _remediations;
    private readonly Counter _notifications;
    private readonly Gauge _outbox;
    private readonly Gauge _incidents;
    private readonly Gauge _pluginErrors;
    private readonly Gauge _configValid;
    private readonly Gauge _schedulerAlive;
    private readonly Lock _lock = new();
    private HashSet<string> _known = new(StringComparer.Ordinal);

    public EngineMetrics(Func<EngineStatus> status)
    {
        var f = Prometheus.Metrics.WithCustomRegistry(Registry);
        _lateness = f.CreateHistogram("sentinel_check_start_lateness_seconds", "How late scheduled checks started after the time they were due (an overloaded node starts them late).",
            new HistogramConfiguration { Buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _transitions = f.CreateCounter("sentinel_rule_transitions_total", "Rule state changes, by the state entered.", "rule", "to");
        _remediations = f.CreateCounter("sentinel_remediations_total",
            "Remediation events: remediating (an attempt started), remediated, remediation-failed, gave-up, exited.", "rule", "event");
        _notifications = f.CreateCounter("sentinel_notifications_total",
            "Notification messages by outcome: sent (accepted by the channel), failed (an attempt failed; retried), failed-over, expired.", "channel", "result");
        _outbox = f.CreateGauge("sentinel_outbox_depth", "Notification messages waiting in the outbox.");
        _incidents = f.CreateGauge("sentinel_incidents_open", "Open incidents.");
        _pluginErrors = f.CreateGauge("sentinel_plugin_load_errors", "Plugins that failed to load.");
        _configValid = f.CreateGauge("sentinel_config_valid", "1 when the last configuration change was applied, 0 when it was rejected (the previous one runs).");
        _schedulerAlive = f.CreateGauge("sentinel_scheduler_alive", "1 while the scheduler fires rules.");
        f.CreateGauge("sentinel_build_info", "Sentinel's version.", "version").WithLabels(EngineInfo.Version).Set(1);
        _status = status;
    }

    private readonly Func<EngineStatus> _status;

    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    public void OnCheck(string rule, CheckRecord check) => _checks.OnCheck(rule, check.Status, check.IsSuccess, check.Duration);

    public void OnTransition(string rule, RuleStatus to) => _transitions.WithLabels(rule, Name(to)).Inc();

    public void OnRemediation(string rule, string kind) => _remediations.WithLabels(rule, kind).Inc();

    private readonly Histogram _lateness;

    public void OnStartLateness(TimeSpan late) => _lateness.Observe(Math.Max(0, late.TotalSeconds));

    public void OnNotification(string channel, string result, int messages) => _notifications.WithLabels(channel, result).Inc(messages);

    private void Refresh(EngineStatus status)
    {
        lock (_lock)
        {
            var now = new HashSet<string>(status.Rules.Select(r => r.Name), StringComparer.Ordinal);
            foreach (var gone in _known.Where(k => !now.Contains(k)))
            {
                _checks.Remove(gone);
                foreach (var labels in _transitions.GetAllLabelValues().Where(l => l[0] == gone).ToList()) _transitions.RemoveLabelled(labels);
                foreach (var labels in _remediations.GetAllLabelValues().Where(l => l[0] == gone).ToList()) _remediations.RemoveLabelled(labels);
            }
            _known = now;
            _outbox.Set(status.Notifications?.Pending ?? 0);
            _incidents.Set(status.Notifications?.OpenIncidents.Count ?? 0);
            _pluginErrors.Set(status.PluginErrors.Count);
            _configValid.Set(status.Config.Valid ? 1 : 0);
            _schedulerAlive.Set(status.Healthy ? 1 : 0);
        }
    }

    private static string Name(RuleStatus s) => s.ToString().ToLowerInvariant();

    /// <summary>
    /// Writes the metrics in Prometheus' text format (version 0.0.4): the registry's, then the rules' series (their states
    /// as the engine has them now, and their checks).
    /// </summary>
    public async Task WriteAsync(Stream stream, CancellationToken cancellationToken)
    {
        var status = _status();
        Refresh(status);
        await Registry.CollectAndExportAsTextAsync(stream, cancellationToken);
        await _checks.WriteAsync(stream, status.Rules.Select(r => (r.Name, r.Status)), cancellationToken);
    }
}
