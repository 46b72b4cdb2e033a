using System.Collections.Immutable;
using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Events;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Scheduling;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// A configuration applied in place, or rejected whole: rules whose definition did not change keep their runtime and
/// schedule, changed ones are rebuilt (keeping their state and their probe's durable state), removed ones are
/// forgotten, waiting ones keep their state and incident; remediators, pings and channels follow. One apply at a time.
/// </summary>
internal sealed partial class ConfigApplier(SentinelConfig config, RuleRegistry rules, RuleStates states, CheckPipeline checks, IRuleScheduler scheduler,
    PluginActivator activator, IRemediationHost host, ConfigLoader loader, PluginCatalog catalog, EventBus events, TimeProvider time, ILoggerFactory loggerFactory,
    CancellationToken stopping)
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("Sentinel.Engine");
    private readonly SemaphoreSlim _gate = new(1, 1);
    private volatile SentinelConfig _config = config;
    private volatile IReadOnlyList<ConfigError> _errors = [];
    private DateTimeOffset? _rejectedAt;

    /// <summary>The running configuration (its engine: section is the one Sentinel started with).</summary>
    public SentinelConfig Config => _config;

    /// <summary>Why the last change was rejected (empty once one is applied).</summary>
    public IReadOnlyList<ConfigError> Errors => _errors;

    public DateTimeOffset? RejectedAt => _rejectedAt;

    /// <summary>The notification center, whose channels follow the configuration (set once it is started).</summary>
    public NotificationCenter? Notifications { get; set; }

    /// <summary>What each configuration becomes before it is applied (cluster mode adds its node rules).</summary>
    public Func<SentinelConfig, SentinelConfig>? Prepare { get; set; }

    /// <summary>Makes the running configuration what <see cref="Prepare"/> makes of it, before it is first applied.</summary>
    public void PrepareRunning()
    {
        if (Prepare is { } prepare) _config = prepare(_config);
    }

    /// <summary>Called with each configuration applied, before its new rules are first checked.</summary>
    public Action<SentinelConfig>? Applied { get; set; }

    /// <summary>Loads the configuration file again and applies it, or keeps the running one and records the errors.</summary>
    public async Task<ConfigLoadResult> ReloadAsync(CancellationToken cancellationToken = default)
    {
        var result = loader.Load(_config.Engine.ConfigFile, catalog, allowMissingPlugins: true);
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

    /// <summary>Plugins were added, replaced or removed: the rules are loaded again (a waiting rule may start, a running one wait).</summary>
    public void PluginsChanged(IReadOnlyCollection<string> plugins)
    {
        LogPluginsChanged(_logger, string.Join(", ", plugins));
        states.StatusChanged();
        _ = Task.Run(() => ReloadAsync(stopping));
    }

    private void Reject(IReadOnlyList<ConfigError> errors)
    {
        _errors = errors;
        _rejectedAt = time.GetUtcNow();
        LogConfigRejected(_logger, errors.Count, string.Join(Environment.NewLine, errors));
        events.Publish(new ConfigRejected(time.GetUtcNow(), errors));
        states.StatusChanged();
    }

    /// <summary>Applies <paramref name="next"/> whole, or throws a <see cref="ConfigException"/> and changes nothing.</summary>
    public async Task ApplyAsync(SentinelConfig next, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        var newRemediators = new List<RuleRemediator>();
        try
        {
            next = Prepare?.Invoke(next) ?? next;
            var old = rules.Runtimes;
            var (built, created) = await BuildAsync(next, old, newRemediators);
            foreach (var r in newRemediators)
            {
                // A rule that started or stopped supervising gets a new remediator; the old one's service is stopped.
                if (rules.Remediators.TryGetValue(r.Definition.Name, out var replaced)) await replaced.DisposeAsync(stopService: true);
                rules.Remediators[r.Definition.Name] = r;
            }
            foreach (var runtime in created)
                if (rules.Remediators.TryGetValue(runtime.Definition.Name, out var r) && !newRemediators.Contains(r))
                    await r.UpdateAsync(runtime.Definition, CreateActions(runtime.Definition));
            rules.Set = new RuleSet(built, next.Waiting);
            // Adopt (or start) supervised services before their rules are first checked.
            foreach (var r in rules.Remediators.Values) r.Activate();
            if (!ReferenceEquals(next, _config) && next.Engine != _config.Engine) LogEngineSettingsChanged(_logger);
            _config = next with { Engine = _config.Engine };
            Applied?.Invoke(_config);
            _errors = [];
            _rejectedAt = null;

            var now = time.GetUtcNow();
            foreach (var runtime in created) await ScheduleAsync(runtime.Definition, now, cancellationToken);
            var removed = await RetireGoneAsync(next, old, built, now, cancellationToken);

            var added = created.Where(r => !old.ContainsKey(r.Definition.Name)).Select(r => r.Definition.Name).ToList();
            var changed = created.Where(r => old.ContainsKey(r.Definition.Name)).Select(r => r.Definition.Name).ToList();
            if (old.Count > 0 || added.Count > 0) LogConfigApplied(_logger, added.Count, changed.Count, removed.Count, built.Count - added.Count - changed.Count);
            events.Publish(new ConfigApplied(now, added, changed, removed));
            states.StatusChanged();
            await ApplyRulePingsAsync(next);
        }
        finally { _gate.Release(); }
    }

    // Every rule's runtime: an unchanged one kept, a new or changed one built. Nothing is swapped in yet; an error undoes what was built.
    private async Task<(ImmutableDictionary<string, RuleRuntime> Built, List<RuleRuntime> Created)> BuildAsync(SentinelConfig next,
        ImmutableDictionary<string, RuleRuntime> old, List<RuleRemediator> newRemediators)
    {
        var builder = ImmutableDictionary.CreateBuilder<string, RuleRuntime>(StringComparer.Ordinal);
        var created = new List<RuleRuntime>();
        var errors = new List<ConfigError>();
        // A rule of another node of the cluster is not built here (its service is not started, its probe not made).
        foreach (var rule in next.Rules.Where(r => r.RunsOn(next.Engine.Cluster)))
        {
            if (old.TryGetValue(rule.Name, out var existing) && existing.Definition.Fingerprint == rule.Fingerprint)
            {
                builder[rule.Name] = existing;
                continue;
            }
            try
            {
                // The probe's durable state outlives its instance: a rebuilt rule (new options, new plugin version) keeps it.
                var saved = existing?.State.Snapshot() ?? states.Get(rule.Name)?.ProbeState;
                var remediator = PrepareRemediator(rule, newRemediators);
                IProbe probe = rule.Probe.ImplementationType == typeof(SupervisedProbe)
                    ? new SupervisedProbe(remediator!.Supervisor!, time)
                    : activator.Create(rule);
                var runtime = new RuleRuntime(rule, probe, new MemoryProbeState(saved), rule.Run.Select(a => activator.CreateAction(rule, a)).ToList())
                {
                    Service = rule.Supervise is null ? null : new SupervisedServiceView(() => rules.Remediators.GetValueOrDefault(rule.Name)),
                };
                created.Add(runtime);
                builder[rule.Name] = runtime;
            }
            catch (ConfigException ex) { errors.AddRange(ex.Errors); }
        }
        if (!ReferenceEquals(next, _config))
        {
            try { Notifications?.ApplyChannels(next); }
            catch (ConfigException ex) { errors.AddRange(ex.Errors); }
        }
        if (errors.Count == 0) return (builder.ToImmutable(), created);
        foreach (var r in created) await r.DisposeAsync();
        foreach (var r in newRemediators) await r.DisposeAsync();
        throw new ConfigException(errors);
    }

    private async Task ScheduleAsync(RuleDefinition def, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var known = states.Get(def.Name) is not null;
        var (state, t) = states.Update(def.Name, current =>
        {
            // paused: in the config is applied when it is new or changed; otherwise the stored state (an API
            // pause or resume) stands. A state written before this was kept counts as agreeing with the config.
            RuleTransition? paused = null;
            var configChanged = !known ? def.Paused : (current.ConfigPaused ?? def.Paused) != def.Paused;
            if (configChanged && def.Paused != (current.Status == RuleStatus.Paused)) (current, paused) = RuleStateMachine.SetPaused(current, def.Paused, now);
            return (current with { ConfigPaused = def.Paused }, paused);
        }, since: now);
        if (t is not null) checks.Publish(t);
        await scheduler.ScheduleAsync(def with { Paused = state.Status == RuleStatus.Paused }, cancellationToken);
    }

    // Rules no longer running: a removed one is unscheduled and forgotten; a waiting one is unscheduled but keeps its
    // state, its open incident and its service (if Sentinel runs one, it keeps running unwatched) until its plugin is
    // back. Replaced runtimes are disposed once their check (if any) ends. Returns the removed rules.
    private async Task<List<string>> RetireGoneAsync(SentinelConfig next, ImmutableDictionary<string, RuleRuntime> old,
        ImmutableDictionary<string, RuleRuntime> built, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var waiting = next.Waiting.Select(w => w.Name).ToHashSet(StringComparer.Ordinal);
        var removed = old.Keys.Where(k => !built.ContainsKey(k) && !waiting.Contains(k)).ToList();
        foreach (var name in old.Keys.Where(waiting.Contains)) await scheduler.UnscheduleAsync(name, cancellationToken);
        NoteWaiting(next.Waiting, now);
        foreach (var (name, r) in rules.Remediators)
        {
            if (waiting.Contains(name)) continue;
            if (built.TryGetValue(name, out var kept) && (kept.Definition.Supervise is null) == (r.Supervisor is null) && (kept.Definition.Supervise is not null || kept.Definition.Remediate.Count > 0)) continue;
            // The rule is gone, or stopped or started supervising: its service (if any) is stopped.
            rules.Remediators.TryRemove(name, out _);
            await r.DisposeAsync(stopService: true);
        }
        foreach (var name in removed)
        {
            await scheduler.UnscheduleAsync(name, cancellationToken);
            states.Remove(name);
        }
        foreach (var (name, runtime) in old)
            if (!built.TryGetValue(name, out var kept) || !ReferenceEquals(kept, runtime)) _ = RetireAsync(runtime);
        return removed;
    }

    // A rule that remediates or supervises gets one remediator for its lifetime; a changed definition is handed to it.
    private RuleRemediator? PrepareRemediator(RuleDefinition rule, List<RuleRemediator> created)
    {
        if (rule.Supervise is null && rule.Remediate.Count == 0) return null;
        if (rules.Remediators.TryGetValue(rule.Name, out var existing) && (existing.Supervisor is null) == (rule.Supervise is null)) return existing;
        var remediator = new RuleRemediator(rule, CreateActions(rule), host, loggerFactory, time, stopping);
        created.Add(remediator);
        return remediator;
    }

    private async Task ApplyRulePingsAsync(SentinelConfig next)
    {
        foreach (var rule in next.Rules)
        {
            if (rule.Ping is null) continue;
            if (rules.Pings.TryGetValue(rule.Name, out var existing) && existing.Definition == rule.Ping) continue;
            var sender = new Heartbeat.HeartbeatSender(new HeartbeatDefinition(rule.PingEvery, [rule.Ping]), [activator.CreateAction(rule, rule.Ping)], () => (false, ""), time,
                loggerFactory.CreateLogger("Sentinel.Heartbeat"));
            rules.Pings[rule.Name] = new RulePing(sender, rule.Ping);
            if (existing is not null) await existing.Sender.DisposeAsync();
        }
        foreach (var name in rules.Pings.Keys.Where(n => next.Rules.All(r => r.Name != n || r.Ping is null)).ToList())
            if (rules.Pings.TryRemove(name, out var gone)) await gone.Sender.DisposeAsync();
    }

    private List<IAction> CreateActions(RuleDefinition rule) => rule.Remediate.Select(a => activator.CreateAction(rule, a)).ToList();

    // Since when each rule has been waiting for its plugin; said once when it starts waiting and when it stops.
    private void NoteWaiting(IReadOnlyList<WaitingRule> waiting, DateTimeOffset now)
    {
        foreach (var w in waiting)
            if (rules.WaitingSince.TryAdd(w.Name, now)) LogRuleWaiting(_logger, w.Name, w.Warning.ToString());
        foreach (var name in rules.WaitingSince.Keys.Where(n => waiting.All(w => w.Name != n)).ToList())
        {
            rules.WaitingSince.TryRemove(name, out _);
            if (rules.Runtimes.ContainsKey(name)) LogRuleStopsWaiting(_logger, name);
        }
    }

    // A replaced runtime is disposed once its current run (if any) has finished.
    private static async Task RetireAsync(RuleRuntime runtime)
    {
        await runtime.Gate.CloseAsync(TimeSpan.FromMinutes(1));
        await runtime.DisposeAsync();
    }

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Configuration applied: {Added} added, {Changed} changed, {Removed} removed, {Unchanged} unchanged")]
    private static partial void LogConfigApplied(ILogger logger, int added, int changed, int removed, int unchanged);

    [LoggerMessage(EventId = 21, Level = LogLevel.Error, Message = "Configuration change rejected ({Count} errors); the running configuration stays:\n{Errors}")]
    private static partial void LogConfigRejected(ILogger logger, int count, string errors);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "The engine: section changed; restart Sentinel to apply it (rules were reloaded)")]
    private static partial void LogEngineSettingsChanged(ILogger logger);

    [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "Plugins changed ({Plugins}); reloading the rules that use them")]
    private static partial void LogPluginsChanged(ILogger logger, string plugins);

    [LoggerMessage(EventId = 25, Level = LogLevel.Warning, Message = "Rule {Rule} is not checked: {Warning}")]
    private static partial void LogRuleWaiting(ILogger logger, string rule, string warning);

    [LoggerMessage(EventId = 26, Level = LogLevel.Information, Message = "Rule {Rule} starts: the plugin it was waiting for is loaded")]
    private static partial void LogRuleStopsWaiting(ILogger logger, string rule);
}
