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

// Configuration: a config loaded again and applied in place (rules, remediators, pings), or rejected; watching it and the plugins.
internal sealed partial class SentinelEngine
{
    /// <summary>Loads the configuration file again and applies it, or keeps the running one and records the errors.</summary>
    public async Task<ConfigLoadResult> ReloadConfigAsync(CancellationToken cancellationToken = default)
    {
        var result = _loader.Load(_config.Engine.ConfigFile, _catalog, allowMissingPlugins: true);
        if (!result.IsValid)
        {
            Reject(result.Errors);
            return result;
        }
        try
        {
            await ApplyAsync(result.Config!, cancellationToken);
        }
        catch (ConfigException ex)
        {
            Reject(ex.Errors);
            return new ConfigLoadResult(null, ex.Errors);
        }
        return result;
    }

    private void Reject(IReadOnlyList<ConfigError> errors)
    {
        _configErrors = errors;
        _configRejectedAt = _time.GetUtcNow();
        LogConfigRejected(_logger, errors.Count, string.Join(Environment.NewLine, errors));
        Events.Publish(new ConfigRejected(_time.GetUtcNow(), errors));
        _persister?.MarkStatusChanged();
        _persister?.FlushSoon();
    }

    private async Task ApplyAsync(SentinelConfig config, CancellationToken cancellationToken)
    {
        await _applyGate.WaitAsync(cancellationToken);
        var newRemediators = new List<RuleRemediator>();
        try
        {
            var old = _runtimes;
            var builder = ImmutableDictionary.CreateBuilder<string, RuleRuntime>(StringComparer.Ordinal);
            var created = new List<RuleRuntime>();
            var errors = new List<ConfigError>();
            foreach (var rule in config.Rules)
            {
                if (old.TryGetValue(rule.Name, out var existing) && existing.Definition.Fingerprint == rule.Fingerprint)
                {
                    builder[rule.Name] = existing;
                    continue;
                }
                try
                {
                    // The probe's durable state outlives its instance: a rebuilt rule (new options, new plugin version) keeps it.
                    var saved = existing?.State.Snapshot() ?? _states.Get(rule.Name)?.ProbeState;
                    var remediator = PrepareRemediator(rule, newRemediators);
                    IProbe probe = rule.Probe.ImplementationType == typeof(SupervisedProbe)
                        ? new SupervisedProbe(remediator!.Supervisor!, _time)
                        : _probes.Create(rule);
                    var runtime = new RuleRuntime(rule, probe, new MemoryProbeState(saved), rule.Run.Select(a => _probes.CreateAction(rule, a)).ToList())
                    {
                        Service = rule.Supervise is null ? null : new SupervisedServiceView(() => _remediators.GetValueOrDefault(rule.Name)),
                    };
                    created.Add(runtime);
                    builder[rule.Name] = runtime;
                }
                catch (ConfigException ex) { errors.AddRange(ex.Errors); }
            }
            if (!ReferenceEquals(config, _config))
            {
                try { _notifications?.ApplyChannels(config); }
                catch (ConfigException ex) { errors.AddRange(ex.Errors); }
            }
            if (errors.Count > 0)
            {
                foreach (var r in created) await r.DisposeAsync();
                foreach (var r in newRemediators) await r.DisposeAsync();
                throw new ConfigException(errors);
            }
            var next = builder.ToImmutable();
            foreach (var r in newRemediators)
            {
                // A rule that started or stopped supervising gets a new remediator; the old one's service is stopped.
                if (_remediators.TryGetValue(r.Definition.Name, out var replaced)) await replaced.DisposeAsync(stopService: true);
                _remediators[r.Definition.Name] = r;
            }
            foreach (var runtime in created)
                if (_remediators.TryGetValue(runtime.Definition.Name, out var r) && !newRemediators.Contains(r))
                    await r.UpdateAsync(runtime.Definition, CreateActions(runtime.Definition));
            _rules = new RuleSet(next, config.Waiting);
            // Adopt (or start) supervised services before their rules are first checked.
            foreach (var r in _remediators.Values) r.Activate();
            if (!ReferenceEquals(config, _config) && config.Engine != _config.Engine) LogEngineSettingsChanged(_logger);
            _config = config with { Engine = _config.Engine };
            Redactor = Api.Redactor.For(_config, _apiToken);
            _configErrors = [];
            _configRejectedAt = null;

            var now = _time.GetUtcNow();
            foreach (var runtime in created)
            {
                var def = runtime.Definition;
                var known = _states.Get(def.Name) is not null;
                var (state, t) = _states.Update(def.Name, current =>
                {
                    // paused: in the config is applied when it is new or changed; otherwise the stored state (an API
                    // pause or resume) stands. A state written before this was kept counts as agreeing with the config.
                    RuleTransition? paused = null;
                    var configChanged = !known ? def.Paused : (current.ConfigPaused ?? def.Paused) != def.Paused;
                    if (configChanged && def.Paused != (current.Status == RuleStatus.Paused)) (current, paused) = RuleStateMachine.SetPaused(current, def.Paused, now);
                    return (current with { ConfigPaused = def.Paused }, paused);
                }, since: now);
                if (t is not null) Publish(t);
                await _scheduler.ScheduleAsync(def with { Paused = state.Status == RuleStatus.Paused }, cancellationToken);
            }
            // A rule waiting for its plugin is not removed: it keeps its state and open incident, and its service (if
            // Sentinel runs one) keeps running unwatched, until the plugin is back.
            var waiting = config.Waiting.Select(w => w.Name).ToHashSet(StringComparer.Ordinal);
            var removed = old.Keys.Where(k => !next.ContainsKey(k) && !waiting.Contains(k)).ToList();
            foreach (var name in old.Keys.Where(waiting.Contains)) await _scheduler.UnscheduleAsync(name, cancellationToken);
            NoteWaiting(config.Waiting, now);
            foreach (var (name, r) in _remediators)
            {
                if (waiting.Contains(name)) continue;
                if (next.TryGetValue(name, out var kept) && (kept.Definition.Supervise is null) == (r.Supervisor is null) && (kept.Definition.Supervise is not null || kept.Definition.Remediate.Count > 0)) continue;
                // The rule is gone, or stopped or started supervising: its service (if any) is stopped.
                _remediators.TryRemove(name, out _);
                await r.DisposeAsync(stopService: true);
            }
            foreach (var name in removed)
            {
                await _scheduler.UnscheduleAsync(name, cancellationToken);
                _states.Remove(name);
            }
            foreach (var (name, runtime) in old)
                if (!next.TryGetValue(name, out var kept) || !ReferenceEquals(kept, runtime)) _ = RetireAsync(runtime);

            var added = created.Where(r => !old.ContainsKey(r.Definition.Name)).Select(r => r.Definition.Name).ToList();
            var changed = created.Where(r => old.ContainsKey(r.Definition.Name)).Select(r => r.Definition.Name).ToList();
            if (old.Count > 0 || added.Count > 0) LogConfigApplied(_logger, added.Count, changed.Count, removed.Count, next.Count - added.Count - changed.Count);
            Events.Publish(new ConfigApplied(now, added, changed, removed));
            _persister?.MarkStatusChanged();
            _persister?.FlushSoon();
            await ApplyRulePingsAsync(config);
        }
        finally { _applyGate.Release(); }
    }

    // A rule that remediates or supervises gets one remediator for its lifetime; a changed definition is handed to it.
    private RuleRemediator? PrepareRemediator(RuleDefinition rule, List<RuleRemediator> created)
    {
        if (rule.Supervise is null && rule.Remediate.Count == 0) return null;
        if (_remediators.TryGetValue(rule.Name, out var existing) && (existing.Supervisor is null) == (rule.Supervise is null)) return existing;
        var remediator = new RuleRemediator(rule, CreateActions(rule), this, _loggerFactory, _time, _stopping.Token);
        created.Add(remediator);
        return remediator;
    }

    private async Task ApplyRulePingsAsync(SentinelConfig config)
    {
        foreach (var rule in config.Rules)
        {
            if (rule.Ping is null) continue;
            if (_rulePings.TryGetValue(rule.Name, out var existing) && existing.Definition == rule.Ping) continue;
            var sender = new Heartbeat.HeartbeatSender(new HeartbeatDefinition(rule.PingEvery, [rule.Ping]), [_probes.CreateAction(rule, rule.Ping)], () => (false, ""), _time,
                _loggerFactory.CreateLogger("Sentinel.Heartbeat"));
            _rulePings[rule.Name] = new RulePing(sender, rule.Ping);
            if (existing is not null) await existing.Sender.DisposeAsync();
        }
        foreach (var name in _rulePings.Keys.Where(n => config.Rules.All(r => r.Name != n || r.Ping is null)).ToList())
            if (_rulePings.TryRemove(name, out var gone)) await gone.Sender.DisposeAsync();
    }

    private List<IAction> CreateActions(RuleDefinition rule) => rule.Remediate.Select(a => _probes.CreateAction(rule, a)).ToList();

    private void OnPluginsChanged(IReadOnlyCollection<string> plugins)
    {
        LogPluginsChanged(_logger, string.Join(", ", plugins));
        _persister?.MarkStatusChanged();
        _ = Task.Run(() => ReloadConfigAsync(_stopping.Token));
    }

    private void WatchConfig()
    {
        _configWatcher = new Runtime.ConfigWatcher(_config.Engine.ConfigFile, ReloadDelay, _time, () => ReloadConfigAsync(_stopping.Token), _logger);
        _configWatcher.Start();
    }

    // Since when each rule has been waiting for its plugin; said once when it starts waiting and when it stops.
    private void NoteWaiting(IReadOnlyList<WaitingRule> waiting, DateTimeOffset now)
    {
        foreach (var w in waiting)
            if (_waitingSince.TryAdd(w.Name, now)) LogRuleWaiting(_logger, w.Name, w.Warning.ToString());
        foreach (var name in _waitingSince.Keys.Where(n => waiting.All(w => w.Name != n)).ToList())
        {
            _waitingSince.TryRemove(name, out _);
            if (_runtimes.ContainsKey(name)) LogRuleStopsWaiting(_logger, name);
        }
    }
}
