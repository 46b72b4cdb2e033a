using Prometheus;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Metrics;

/// <summary>
/// The engine's Prometheus metrics (prometheus-net, a registry of its own per engine). Counters and the check duration
/// histogram move with each check and event; gauges (rule state, outbox depth, plugin errors) are read from the engine
/// when scraped. Series of removed rules are dropped.
/// </summary>
internal sealed class EngineMetrics
{
    private static readonly double[] DurationBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
    private readonly Histogram _duration;
    private readonly Counter _checks;
    private readonly Counter _failures;
    private readonly Counter _transitions;
    private readonly Counter _remediations;
    private readonly Counter _notifications;
    private readonly Gauge _state;
    private readonly Gauge _up;
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
        _duration = f.CreateHistogram("sentinel_check_duration_seconds", "How long a rule's check took.",
            new HistogramConfiguration { LabelNames = ["rule"], Buckets = DurationBuckets });
        _lateness = f.CreateHistogram("sentinel_check_start_lateness_seconds", "How late scheduled checks started after the time they were due (an overloaded node starts them late).",
            new HistogramConfiguration { Buckets = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10] });
        _checks = f.CreateCounter("sentinel_checks_total", "Checks run, by result (healthy, degraded, unhealthy).", "rule", "result");
        _failures = f.CreateCounter("sentinel_check_failures_total", "Checks that failed (unhealthy, timed out, stuck).", "rule");
        _transitions = f.CreateCounter("sentinel_rule_transitions_total", "Rule state changes, by the state entered.", "rule", "to");
        _remediations = f.CreateCounter("sentinel_remediations_total",
            "Remediation events: remediating (an attempt started), remediated, remediation-failed, gave-up, exited.", "rule", "event");
        _notifications = f.CreateCounter("sentinel_notifications_total",
            "Notification messages by outcome: sent (accepted by the channel), failed (an attempt failed; retried), failed-over, expired.", "channel", "result");
        _state = f.CreateGauge("sentinel_rule_state", "1 for the rule's current state (pending, healthy, failing, down, paused), else 0.", "rule", "state");
        _up = f.CreateGauge("sentinel_rule_up", "1 when the rule is healthy or failing (not yet down), 0 when down, paused or pending.", "rule");
        _outbox = f.CreateGauge("sentinel_outbox_depth", "Notification messages waiting in the outbox.");
        _incidents = f.CreateGauge("sentinel_incidents_open", "Open incidents.");
        _pluginErrors = f.CreateGauge("sentinel_plugin_load_errors", "Plugins that failed to load.");
        _configValid = f.CreateGauge("sentinel_config_valid", "1 when the last configuration change was applied, 0 when it was rejected (the previous one runs).");
        _schedulerAlive = f.CreateGauge("sentinel_scheduler_alive", "1 while the scheduler fires rules.");
        f.CreateGauge("sentinel_build_info", "Sentinel's version.", "version").WithLabels(EngineInfo.Version).Set(1);
        Registry.AddBeforeCollectCallback(() => Refresh(status()));
    }

    public CollectorRegistry Registry { get; } = Prometheus.Metrics.NewCustomRegistry();

    // A rule's per-check series, looked up once per check instead of by labels three times (each a label array, a
    // lower-cased status string and a dictionary lookup). Dropped with the rule's series.
    private sealed record RuleSeries(Histogram.Child Duration, Counter.Child Healthy, Counter.Child Degraded, Counter.Child Unhealthy, Counter.Child Failures);

    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RuleSeries> _series = new(StringComparer.Ordinal);

    public void OnCheck(string rule, CheckRecord check)
    {
        var series = _series.GetOrAdd(rule, static (r, m) => new RuleSeries(m._duration.WithLabels(r),
            m._checks.WithLabels(r, Name(ProbeStatus.Healthy)), m._checks.WithLabels(r, Name(ProbeStatus.Degraded)),
            m._checks.WithLabels(r, Name(ProbeStatus.Unhealthy)), m._failures.WithLabels(r)), this);
        series.Duration.Observe(check.Duration.TotalSeconds);
        (check.Status switch { ProbeStatus.Healthy => series.Healthy, ProbeStatus.Degraded => series.Degraded, _ => series.Unhealthy }).Inc();
        if (!check.IsSuccess) series.Failures.Inc();
    }

    private static string Name(ProbeStatus s) => s switch { ProbeStatus.Healthy => "healthy", ProbeStatus.Degraded => "degraded", _ => "unhealthy" };

    public void OnTransition(string rule, RuleStatus to) => _transitions.WithLabels(rule, Name(to)).Inc();

    public void OnRemediation(string rule, string kind) => _remediations.WithLabels(rule, kind).Inc();

    private readonly Histogram _lateness;

    public void OnStartLateness(TimeSpan late) => _lateness.Observe(Math.Max(0, late.TotalSeconds));

    public void OnNotification(string channel, string result, int messages) => _notifications.WithLabels(channel, result).Inc(messages);

    private void Refresh(EngineStatus status)
    {
        lock (_lock)
        {
            var now = new HashSet<string>(StringComparer.Ordinal);
            foreach (var r in status.Rules)
            {
                now.Add(r.Name);
                foreach (var s in Enum.GetValues<RuleStatus>()) _state.WithLabels(r.Name, Name(s)).Set(r.Status == s ? 1 : 0);
                _up.WithLabels(r.Name).Set(r.Status is RuleStatus.Healthy or RuleStatus.Failing ? 1 : 0);
            }
            foreach (var gone in _known.Where(k => !now.Contains(k)))
            {
                _series.TryRemove(gone, out _);
                foreach (var s in Enum.GetValues<RuleStatus>()) _state.RemoveLabelled(gone, Name(s));
                _up.RemoveLabelled(gone);
                _duration.RemoveLabelled(gone);
                _failures.RemoveLabelled(gone);
                foreach (var labels in _checks.GetAllLabelValues().Where(l => l[0] == gone).ToList()) _checks.RemoveLabelled(labels);
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

    /// <summary>Writes the metrics in Prometheus' text format (version 0.0.4).</summary>
    public Task WriteAsync(Stream stream, CancellationToken cancellationToken) => Registry.CollectAndExportAsTextAsync(stream, cancellationToken);
}
