using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Reflection;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Events;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Scheduling;
using Sentinel.Engine.State;

namespace Sentinel.Engine;

// Health and status: what /health, status.json, the API and the page show.
internal sealed partial class SentinelEngine
{
    /// <summary>200-worthy when a configuration is loaded, the scheduler fired within the last few seconds and the state can be written.</summary>
    public (bool Healthy, string Reason) GetHealth()
    {
        var (alive, reason) = SchedulerHealth();
        if (alive && Writes.Problem is { } problem) return (false, $"{problem.Reason} (since {problem.Since.ToUniversalTime():HH:mm:ss} UTC; kept in memory until it can be written)");
        return (alive, reason);
    }

    private (bool Healthy, string Reason) SchedulerHealth()
    {
        if (_started == 0) return (false, "the engine is not started");
        if (_stopping.IsCancellationRequested) return (false, "the engine is stopping");
        var last = Interlocked.Read(ref _lastTick);
        if (last == 0) return (_time.GetUtcNow() - StartedAt < TimeSpan.FromSeconds(5), "the scheduler has not fired yet");
        var silence = _time.GetUtcNow() - new DateTimeOffset(last, TimeSpan.Zero);
        return silence > TimeSpan.FromSeconds(5)
            ? (false, $"the scheduler has not fired for {Duration.Format(silence)}")
            : (true, _configErrors.Count > 0 ? $"running; the last config change was rejected ({_configErrors.Count} errors)" : "running");
    }

    /// <summary>
    /// The engine and every rule; with <paramref name="recent"/> &gt; 0, each rule's last check durations too; without
    /// <paramref name="uptime"/>, no uptime figures (what a metrics scrape needs is the states).
    /// </summary>
    public EngineStatus GetStatus(int recent = 0, bool uptime = true)
    {
        var (healthy, reason) = GetHealth();
        var set = _rules;
        var rules = set.Runtimes.Values.Select(r => View(r.Definition, recent, uptime)).Concat(set.Waiting.Select(w => View(w, uptime)))
            .OrderBy(r => r.Name, StringComparer.Ordinal).ToList();
        return new EngineStatus(Version, StartedAt, _time.GetUtcNow(), _config.Engine.ConfigFile, healthy, reason, HttpAddress,
            new ConfigStatus(_configErrors.Count == 0, _configRejectedAt, _configErrors.Select(e => e.ToString()).ToList()),
            _catalog.Plugins.Select(p => new PluginView(p.Name, p.Version, p.Types.Select(t => $"{t.Kind.ToString().ToLowerInvariant()}:{t.Name}").ToList())).ToList(),
            _catalog.Errors.Select(e => e.ToString()).ToList(),
            rules) { Notifications = _notifications?.GetStatus() };
    }

    private RuleStatusView View(WaitingRule rule, bool uptime)
    {
        var s = _states.Get(rule.Name);
        return new RuleStatusView(rule.Name, rule.Description, RuleStatus.Waiting, _waitingSince.GetValueOrDefault(rule.Name, StartedAt), rule.Schedule,
            string.Join(", ", rule.Missing.Select(m => m.Type)), 0, 0, s?.Checks ?? 0, s?.Failures ?? 0, s?.LastCheck)
        {
            Waiting = rule.Reason,
            Uptime = uptime ? History?.Uptime(rule.Name) : null,
        };
    }

    private RuleStatusView View(RuleDefinition def, int recent, bool uptime = true)
    {
        var s = _states.Get(def.Name) ?? RuleState.New(def.Name, StartedAt);
        var remediation = def.Supervise is null && def.Remediate.Count == 0 ? null : s.Remediation ?? new RemediationState();
        return new RuleStatusView(def.Name, def.Description, s.Status, s.Since, def.Schedule, def.Probe.Name,
            s.ConsecutiveFailures, s.ConsecutiveSuccesses, s.Checks, s.Failures, s.LastCheck, remediation)
        {
            Service = remediation is null ? null : SupervisionView.Of(def, remediation, _remediators.GetValueOrDefault(def.Name)?.RunningProcess, _remediators.GetValueOrDefault(def.Name)?.Restarting == true, _time.GetUtcNow()),
            Uptime = uptime ? History?.Uptime(def.Name) : null,
            Recent = recent > 0 && History is not null ? Sparkline.From(History.Recent(def.Name), recent) : null,
        };
    }

    /// <summary>Acknowledges an open incident (stops its escalations and reminders).</summary>
    public Task<bool> AckAsync(long incident, CancellationToken cancellationToken) => _notifications?.AckAsync(incident, cancellationToken) ?? Task.FromResult(false);

    private void WriteStatus(Stream stream) => JsonSerializer.Serialize(stream, GetStatus(), SentinelJson.Indented);
}
