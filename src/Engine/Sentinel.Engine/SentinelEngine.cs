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

/// <summary>
/// Runs a configuration: one scheduled job per rule, each check judged by the rule's thresholds, every
/// transition published on <see cref="Events"/>, state persisted. A new configuration or plugin version is
/// applied in place: rules whose definition did not change keep their schedule, all keep their state.
/// </summary>
public sealed partial class SentinelEngine : IAsyncDisposable, IRemediationHost, INotificationHost, Api.IEngineApi
{
    private readonly PluginCatalog _catalog;
    private readonly IStateStore _store;
    private readonly IRuleScheduler _scheduler;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly ConfigLoader _loader;
    private readonly ProbeFactory _probes;
    private readonly SemaphoreSlim _applyGate = new(1, 1);
    private readonly ConcurrentDictionary<string, RuleState> _states = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ILogger> _ruleLoggers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Lock _stateLock = new();
    private readonly ConcurrentDictionary<string, RuleRemediator> _remediators = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, DateTimeOffset> _waitingSince = new(StringComparer.Ordinal);
    private RuleSet _rules = RuleSet.Empty;
    private ImmutableDictionary<string, RuleRuntime> _runtimes => _rules.Runtimes;
    private SentinelConfig _config;
    private IReadOnlyList<ConfigError> _configErrors = [];
    private DateTimeOffset? _configRejectedAt;
    private StatePersister? _persister;
    private NotificationCenter? _notifications;
    private Heartbeat.HeartbeatSender? _heartbeat;
    private volatile bool _hung;
    private readonly ConcurrentDictionary<string, RulePing> _rulePings = new(StringComparer.Ordinal);

    private sealed class RulePing(Heartbeat.HeartbeatSender sender, ActionDefinition definition)
    {
        public Heartbeat.HeartbeatSender Sender { get; } = sender;
        public ActionDefinition Definition { get; } = definition;
        public long LastSuccessTicks;
    }
    private FileSystemWatcher? _configWatcher;
    private ITimer? _configDebounce;
    private long _lastTick;
    private int _started;
    private int _disposed;
    private string? _httpAddress;

    public SentinelEngine(SentinelConfig config, PluginCatalog catalog, IStateStore store, ILoggerFactory loggerFactory,
        TimeProvider? time = null, IRuleScheduler? scheduler = null, ConfigLoader? loader = null, History.HistoryStore? history = null)
    {
        _config = config;
        _catalog = catalog;
        _store = store;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Sentinel.Engine");
        _time = time ?? TimeProvider.System;
        _scheduler = scheduler ?? new QuartzRuleScheduler(loggerFactory, config.Engine.MaxConcurrency);
        _loader = loader ?? new ConfigLoader();
        Pings = new Heartbeat.PingRegistry(_time);
        Pings.Pinged += OnPinged;
        _probes = new ProbeFactory(loggerFactory, _time, Pings);
        Events = new EventBus(loggerFactory.CreateLogger("Sentinel.Events"));
        StartedAt = _time.GetUtcNow();
        Writes = new StateWriteMonitor(_time, loggerFactory.CreateLogger("Sentinel.State"));
        Writes.Failed += (since, reason) => Events.Publish(new StateWriteFailed(since, reason));
        Writes.Recovered += (since, reason) => Events.Publish(new StateWriteRecovered(_time.GetUtcNow(), since, reason));
        if (history is not null)
            History = new History.HistoryRecorder(history, config.Engine.History, _time, loggerFactory.CreateLogger("Sentinel.History"), Writes);
        Metrics = new Metrics.EngineMetrics(() => GetStatus(uptime: false));
        Activity = new ActivityLog();
        Redactor = Api.Redactor.For(config, null);
    }

    public static string Version => EngineInfo.Version;

    public EventBus Events { get; }

    /// <summary>Whether what Sentinel must keep can be written (a full disk makes it unhealthy and is alerted on).</summary>
    public StateWriteMonitor Writes { get; }

    /// <summary>Every check, kept in the history store (null when history is off).</summary>
    public History.HistoryRecorder? History { get; }

    /// <summary>The Prometheus metrics served at /metrics.</summary>
    public Metrics.EngineMetrics Metrics { get; }

    /// <summary>The last events, and their live stream.</summary>
    public ActivityLog Activity { get; }

    /// <summary>Keeps the running configuration's secrets out of what the API sends.</summary>
    public Api.Redactor Redactor { get; private set; }

    /// <summary>The bearer token the API's changing calls require (set by the host before start).</summary>
    public string? ApiToken
    {
        get => _apiToken;
        set
        {
            _apiToken = value;
            Redactor = Api.Redactor.For(_config, value);
        }
    }
    private string? _apiToken;

    /// <summary>The checks of `heartbeat` rules and what their pings said (served at /ping/...).</summary>
    public Heartbeat.PingRegistry Pings { get; }
    public DateTimeOffset StartedAt { get; }
    public SentinelConfig Config => _config;
    public PluginCatalog Catalog => _catalog;
    public IReadOnlyList<ConfigError> ConfigErrors => _configErrors;
    public string StatusFilePath => Path.Combine(_config.Engine.StateDirectory, "status.json");

    /// <summary>The address the HTTP server listens on, once known.</summary>
    public string? HttpAddress
    {
        get => _httpAddress;
        set
        {
            _httpAddress = value;
            _persister?.MarkStatusChanged();
            _persister?.FlushSoon();
        }
    }

    /// <summary>Config reload debounce; changes are applied after this long without further edits.</summary>
    public TimeSpan ReloadDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    public RuleState? GetState(string rule) => _states.TryGetValue(rule, out var s) ? s : null;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) throw new InvalidOperationException("the engine is already started");
        foreach (var (rule, state) in await _store.LoadAsync(cancellationToken)) _states[rule] = state;
        Events.Subscribe(Activity.OnEventAsync);
        if (History is not null)
        {
            // History only informs (uptime, sparklines): a history file that cannot be read must not stop the checks.
            try { await History.LoadAsync(cancellationToken); }
            catch (Exception ex) when (ex is Microsoft.Data.Sqlite.SqliteException or IOException or InvalidDataException) { LogHistoryUnreadable(_logger, ex.Message); }
            History.Start();
        }
        _persister = new StatePersister(_store, StatusFilePath, WriteStatus, _config.Engine.StateFlushInterval,
            _loggerFactory.CreateLogger("Sentinel.State"), Writes);
        if (_store is INotificationStore notificationStore)
        {
            _notifications = new NotificationCenter(notificationStore, this, _probes, _time, _loggerFactory, Writes);
            await _notifications.StartAsync(cancellationToken);
            Events.Subscribe(_notifications.OnEventAsync);
        }
        await _scheduler.StartAsync(RunScheduledAsync, () =>
        {
            if (!_hung) Interlocked.Exchange(ref _lastTick, _time.GetUtcNow().UtcTicks);
        }, cancellationToken);
        await ApplyAsync(_config, cancellationToken);
        var forgotten = _states.Keys.Where(k => !_runtimes.ContainsKey(k) && _rules.Waiting.All(w => w.Name != k)).ToList();
        foreach (var rule in forgotten)
        {
            _states.TryRemove(rule, out _);
            _persister.MarkRemoved(rule);
        }
        _persister.Start();
        if (_config.Engine.WatchConfig) WatchConfig();
        if (_config.Engine.WatchPlugins) _catalog.StartWatching();
        _catalog.Changed += OnPluginsChanged;
        if (_config.Heartbeat is { To.Count: > 0 } heartbeat)
        {
            _heartbeat = new Heartbeat.HeartbeatSender(heartbeat, heartbeat.To.Select(a => _probes.CreateAction("engine.heartbeat", a)).ToList(), HeartbeatProbe, _time,
                _loggerFactory.CreateLogger("Sentinel.Heartbeat"));
            _heartbeat.Start();
        }
        LogStarted(_logger, Version, _runtimes.Count, _config.Engine.ConfigFile);
    }

    private (bool Alive, string Summary) HeartbeatProbe()
    {
        var (healthy, reason) = GetHealth();
        if (!healthy) return (false, reason);
        var states = _runtimes.Keys.Select(GetState).ToList();
        var down = states.Where(s => s?.Status == RuleStatus.Down).Select(s => s!.Rule).ToList();
        var waiting = _rules.Waiting.Select(w => w.Name).ToList();
        return (true, $"Sentinel {Version} on {Environment.MachineName}: {states.Count} rules, {down.Count} down" + (down.Count > 0 ? ": " + string.Join(", ", down.Take(20)) : "")
            + (waiting.Count > 0 ? $"; {waiting.Count} not checked, waiting for a plugin: " + string.Join(", ", waiting.Take(20)) : ""));
    }

    /// <summary>Sends the heartbeat's fail ping (a fatal error is about to stop Sentinel); waits at most a few seconds.</summary>
    public Task HeartbeatFailAsync(string reason) => _heartbeat?.FailAsync(reason, TimeSpan.FromSeconds(10)) ?? Task.CompletedTask;

    /// <summary>
    /// Test hook (used by the tests through <c>SENTINEL_TEST_HANG_SCHEDULER_AFTER</c>): the scheduler stops running
    /// rules and ticking, as if it hung, while the process stays up. Heartbeats and watchdog keep-alives must stop.
    /// </summary>
    public void SimulateSchedulerHang() => _hung = true;

    /// <summary>
    /// True while the scheduler fired within the last few seconds (what the systemd watchdog requires). Unlike
    /// <see cref="GetHealth"/> it ignores a state that cannot be written: restarting Sentinel would lose what it keeps
    /// in memory meanwhile, and would not free the disk.
    /// </summary>
    public bool SchedulerAlive => SchedulerHealth().Healthy;

    /// <summary>Observes how late each scheduled check started (for the load harness and, later, metrics).</summary>
    internal Action<string, TimeSpan>? ScheduledStartObserver { get; set; }

    private async Task RunScheduledAsync(string rule, DateTimeOffset scheduledAt, CancellationToken cancellationToken)
    {
        if (_hung) return;
        try
        {
            // The scheduler fires triggers due together in one batch, some a few milliseconds early. Where that is
            // more than 0.5% of the rule's period (sub-second rules), wait for the exact time.
            var early = scheduledAt - _time.GetUtcNow();
            if (early > TimeSpan.Zero && early <= QuartzRuleScheduler.FireAheadWindow
                && _runtimes.TryGetValue(rule, out var runtime) && runtime.Definition.Every is { } every && early * 200 > every)
                await Task.Delay(early, _time, cancellationToken);
            ScheduledStartObserver?.Invoke(rule, _time.GetUtcNow() - scheduledAt);
            await RunRuleAsync(rule, cancellationToken);
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested || cancellationToken.IsCancellationRequested) { }
        catch (Exception ex) { LogRunFailed(_logger, rule, ex); }
    }

    /// <summary>Runs one check of a rule now, unless one is already running; returns the check, or null if skipped.</summary>
    public async Task<CheckRecord?> RunRuleAsync(string rule, CancellationToken cancellationToken = default)
    {
        if (!_runtimes.TryGetValue(rule, out var runtime)) return null;
        if (!await runtime.Gate.WaitAsync(0, CancellationToken.None)) return null;
        try
        {
            if (GetState(rule) is { Status: RuleStatus.Paused }) return null;
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, cancellationToken);
            var logger = _ruleLoggers.GetOrAdd(rule, r => _loggerFactory.CreateLogger("Sentinel.Rule." + r));
            var stateVersion = runtime.State.Version;
            var check = Redacted(await ProbeRunner.RunAsync(runtime, _time, logger, linked.Token));
            Record(runtime.Definition, check, runtime.State.Version != stateVersion ? runtime.State.Snapshot() : null);
            await RunAfterCheckAsync(runtime, check, logger, linked.Token);
            return check;
        }
        finally { runtime.Gate.Release(); }
    }

    // A rule's `run:` actions, after each check, in order, isolated: a failure is logged and the rule goes on.
    private async Task RunAfterCheckAsync(RuleRuntime runtime, CheckRecord check, ILogger logger, CancellationToken cancellationToken)
    {
        foreach (var (action, def) in runtime.Run.Zip(runtime.Definition.Run))
        {
            var context = new ActionContext
            {
                RuleName = runtime.Definition.Name, Event = "run", Message = check.Description ?? "", TimeProvider = _time, Logger = logger,
                LastResult = new ProbeResult(check.Status, check.Description, null, check.Data),
            };
            try
            {
                using var cap = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                cap.CancelAfter(TimeSpan.FromMinutes(10));
                await action.ExecuteAsync(context, cap.Token);
                if (context.Output.Lines.Count > 0) LogRunAction(logger, runtime.Definition.Name, def.Type.Name, string.Join("; ", context.Output.Lines));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested) { throw; }
            catch (Exception ex) { LogRunActionFailed(logger, runtime.Definition.Name, def.Type.Name, ex.Message); }
        }
    }

    [LoggerMessage(EventId = 13, Level = LogLevel.Information, Message = "Rule {Rule}: {Action}: {Output}")]
    private static partial void LogRunAction(ILogger logger, string rule, string action, string output);

    [LoggerMessage(EventId = 14, Level = LogLevel.Warning, Message = "Rule {Rule}: {Action} failed: {Error}")]
    private static partial void LogRunActionFailed(ILogger logger, string rule, string action, string error);

    private void Record(RuleDefinition def, CheckRecord check, IReadOnlyDictionary<string, string>? probeState)
    {
        RuleTransition? transition;
        RuleState next;
        lock (_stateLock)
        {
            var current = _states.GetValueOrDefault(def.Name) ?? RuleState.New(def.Name, check.At);
            (next, transition) = RuleStateMachine.Apply(current, check, def.FailureThreshold, def.SuccessThreshold);
            if (probeState is not null) next = next with { ProbeState = probeState };
            _states[def.Name] = next;
        }
        _persister?.MarkDirty(next);
        Metrics.OnCheck(def.Name, check);
        History?.Record(def.Name, check, next.Status);
        if (transition is not null) Publish(transition);
        if (_remediators.TryGetValue(def.Name, out var remediator)) remediator.OnCheck(next, check);
        if (_rulePings.TryGetValue(def.Name, out var ping) && next.Status == RuleStatus.Healthy
            && (transition is not null || check.At.UtcTicks - Interlocked.Read(ref ping.LastSuccessTicks) >= def.PingEvery.Ticks))
        {
            Interlocked.Exchange(ref ping.LastSuccessTicks, check.At.UtcTicks);
            ping.Sender.Send("success", check.Description ?? "ok");
        }
    }

    // A supervised service's exit is a failed check of its rule, whether or not the restart wins the race with the
    // check the exit asks for: in the history (and so on the page), the failure counters and the metrics. It does not
    // move the rule's thresholds: a crash healed at once stays silent unless alert-on: [exited] asks to be told.
    private void RecordExit(RemediationEvent exit)
    {
        var check = new CheckRecord(ProbeStatus.Unhealthy, "exited: " + exit.Message, exit.When, TimeSpan.Zero);
        RuleState next;
        lock (_stateLock)
        {
            if (!_states.TryGetValue(exit.Rule, out var current)) return;
            next = current with { Checks = current.Checks + 1, Failures = current.Failures + 1 };
            _states[exit.Rule] = next;
        }
        _persister?.MarkDirty(next);
        Metrics.OnCheck(exit.Rule, check);
        History?.Record(exit.Rule, check, next.Status);
    }

    private void Publish(RuleTransition t)
    {
        Metrics.OnTransition(t.Rule, t.To);
        if (t.To == RuleStatus.Down && _rulePings.TryGetValue(t.Rule, out var ping)) ping.Sender.Send("fail", t.Check?.Description ?? "down");
        if (t.To == RuleStatus.Healthy)
            foreach (var r in _remediators.Values)
                if (r.Definition.DependsOn.Contains(t.Rule)) r.OnDependencyRecovered();
        var description = t.Check?.Description ?? "";
        if (t.To is RuleStatus.Down or RuleStatus.Failing) LogTransitionBad(_logger, t.Rule, t.From, t.To, description);
        else LogTransition(_logger, t.Rule, t.From, t.To, description);
        Events.Publish(t);
        _persister?.FlushSoon();
    }

    public async Task<bool> SetPausedAsync(string rule, bool paused, CancellationToken cancellationToken = default)
    {
        if (!_runtimes.TryGetValue(rule, out var runtime)) return false;
        RuleTransition? t;
        RuleState next;
        lock (_stateLock)
        {
            (next, t) = RuleStateMachine.SetPaused(_states.GetValueOrDefault(rule) ?? RuleState.New(rule, _time.GetUtcNow()), paused, _time.GetUtcNow());
            _states[rule] = next;
        }
        _persister?.MarkDirty(next);
        if (t is not null) Publish(t);
        if (paused) await _scheduler.UnscheduleAsync(rule, cancellationToken);
        else await _scheduler.ScheduleAsync(runtime.Definition with { Paused = false }, cancellationToken);
        // Resumed while its service was held stopped (`sentinel stop`): watching it again means running it again.
        if (!paused && next.Remediation is { Held: true } && _remediators.TryGetValue(rule, out var held) && held.Supervisor is not null)
            _ = Task.Run(() => held.StartByOperatorAsync(restart: false));
        return true;
    }

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
                    var saved = existing?.State.Snapshot() ?? _states.GetValueOrDefault(rule.Name)?.ProbeState;
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
                RuleTransition? t = null;
                RuleState state;
                lock (_stateLock)
                {
                    var known = _states.GetValueOrDefault(def.Name);
                    state = known ?? RuleState.New(def.Name, now);
                    // paused: in the config is applied when it is new or changed; otherwise the stored state (an API
                    // pause or resume) stands. A state written before this was kept counts as agreeing with the config.
                    var configChanged = known is null ? def.Paused : (known.ConfigPaused ?? def.Paused) != def.Paused;
                    if (configChanged && def.Paused != (state.Status == RuleStatus.Paused)) (state, t) = RuleStateMachine.SetPaused(state, def.Paused, now);
                    state = state with { ConfigPaused = def.Paused };
                    _states[def.Name] = state;
                }
                _persister?.MarkDirty(state);
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
                _states.TryRemove(name, out _);
                _persister?.MarkRemoved(name);
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

    RuleState? IRemediationHost.GetState(string rule) => GetState(rule);

    RemediationState IRemediationHost.UpdateRemediation(string rule, Func<RemediationState, RemediationState> update)
    {
        RuleState next;
        RemediationState result;
        lock (_stateLock)
        {
            var current = _states.GetValueOrDefault(rule) ?? RuleState.New(rule, _time.GetUtcNow());
            result = update(current.Remediation ?? new RemediationState());
            // Healthy checks of a healthy rule change nothing: no write, no flush.
            if (Equals(result, current.Remediation)) return result;
            next = current with { Remediation = result };
            _states[rule] = next;
        }
        _persister?.MarkDirty(next);
        _persister?.FlushSoon();
        return result;
    }

    // The one choke point for what plugins say: a probe's description and data, an action's message and output are
    // cleared of every configured secret before anything keeps or shows them (state, history, status.json, the API,
    // logs, alerts), so a probe that echoes an Authorization header or a token leaks it nowhere.
    private CheckRecord Redacted(CheckRecord check)
    {
        var r = Redactor;
        if (r.IsEmpty) return check;
        var description = check.Description is { } d ? r.Apply(d) : null;
        var data = r.Apply(check.Data);
        // A check that mentions no secret (nearly all) is kept as it is: no copy on the hot path.
        return ReferenceEquals(description, check.Description) && ReferenceEquals(data, check.Data) ? check : check with { Description = description, Data = data };
    }

    private EngineEvent Redacted(EngineEvent e) => e is RemediationEvent x && !Redactor.IsEmpty
        ? x with { Message = Redactor.Apply(x.Message), Output = x.Output.Select(Redactor.Apply).ToList() }
        : e;

    void IRemediationHost.Publish(EngineEvent e)
    {
        e = Redacted(e);
        if (e is RemediationEvent { Kind: RemediationEventKind.Exited } exit) RecordExit(exit);
        if (e is RemediationEvent re) Metrics.OnRemediation(re.Rule, re.Name);
        if (e is RemediationEvent r && _rulePings.TryGetValue(r.Rule, out var ping))
            ping.Sender.Send("log", $"{r.Name} (attempt {r.Attempt}): {r.Message}" + (r.Output.Count > 0 ? "\n" + string.Join("\n", r.Output) : ""));
        Events.Publish(e);
    }

    void INotificationHost.Delivered(string channel, string result, int messages, string detail)
    {
        Metrics.OnNotification(channel, result, messages);
        Activity.Add(_time.GetUtcNow(), "notification-" + result, null, $"{channel}: {detail}");
    }

    void INotificationHost.NotificationsChanged()
    {
        _persister?.MarkStatusChanged();
        _persister?.FlushSoon();
    }

    string? IRemediationHost.FirstDown(IReadOnlyList<string> rules) => rules.FirstOrDefault(r => GetState(r) is { Status: RuleStatus.Down });

    void IRemediationHost.RequestCheck(string rule) => _ = Task.Run(async () =>
    {
        try { await RunRuleAsync(rule, _stopping.Token); }
        catch (OperationCanceledException) { }
        catch (Exception ex) { LogRunFailed(_logger, rule, ex); }
    });

    // A ping that changes a heartbeat rule's judgement (a /fail, an exit status, a success after one) is checked when
    // it arrives, so "the job failed" is told now, not up to a period later.
    private void OnPinged(string key)
    {
        if (_stopping.IsCancellationRequested) return;
        foreach (var runtime in _runtimes.Values)
            if (runtime.Definition.ProbeOptions is BuiltIn.HeartbeatProbeOptions { Key: var k } && k == key)
                ((IRemediationHost)this).RequestCheck(runtime.Definition.Name);
    }

    // A replaced runtime is disposed once its current run (if any) has finished.
    private static async Task RetireAsync(RuleRuntime runtime)
    {
        await runtime.Gate.WaitAsync(TimeSpan.FromMinutes(1));
        await runtime.DisposeAsync();
    }

    private void OnPluginsChanged(IReadOnlyCollection<string> plugins)
    {
        LogPluginsChanged(_logger, string.Join(", ", plugins));
        _persister?.MarkStatusChanged();
        _ = Task.Run(() => ReloadConfigAsync(_stopping.Token));
    }

    private void WatchConfig()
    {
        var files = _config.Files;
        var dir = Path.GetDirectoryName(_config.Engine.ConfigFile)!;
        _configWatcher = new FileSystemWatcher(dir)
        {
            IncludeSubdirectories = true,
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.DirectoryName,
        };
        FileSystemEventHandler onChange = (_, e) =>
        {
            if (!e.FullPath.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) && !e.FullPath.EndsWith(".yml", StringComparison.OrdinalIgnoreCase)) return;
            ScheduleConfigReload();
        };
        _configWatcher.Changed += onChange;
        _configWatcher.Created += onChange;
        _configWatcher.Deleted += onChange;
        _configWatcher.Renamed += (s, e) => onChange(s, e);
        _configWatcher.EnableRaisingEvents = true;
    }

    private void ScheduleConfigReload()
    {
        lock (_stateLock)
        {
            if (_configDebounce is null)
                _configDebounce = _time.CreateTimer(_ => _ = Task.Run(async () =>
                {
                    try { await ReloadConfigAsync(_stopping.Token); }
                    catch (Exception ex) when (ex is not OperationCanceledException) { LogRunFailed(_logger, "(config reload)", ex); }
                }), null, ReloadDelay, Timeout.InfiniteTimeSpan);
            else _configDebounce.Change(ReloadDelay, Timeout.InfiniteTimeSpan);
        }
    }

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
        var s = _states.GetValueOrDefault(rule.Name);
        return new RuleStatusView(rule.Name, rule.Description, RuleStatus.Waiting, _waitingSince.GetValueOrDefault(rule.Name, StartedAt), rule.Schedule,
            string.Join(", ", rule.Missing.Select(m => m.Type)), 0, 0, s?.Checks ?? 0, s?.Failures ?? 0, s?.LastCheck)
        {
            Waiting = rule.Reason,
            Uptime = uptime ? History?.Uptime(rule.Name) : null,
        };
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

    private RuleStatusView View(RuleDefinition def, int recent, bool uptime = true)
    {
        var s = _states.GetValueOrDefault(def.Name) ?? RuleState.New(def.Name, StartedAt);
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

    /// <summary>Stops firing, cancels running checks, and flushes state.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopping.IsCancellationRequested) return;
        if (_heartbeat is not null) await _heartbeat.DisposeAsync();
        foreach (var p in _rulePings.Values) await p.Sender.DisposeAsync();
        _rulePings.Clear();
        _catalog.Changed -= OnPluginsChanged;
        _configWatcher?.Dispose();
        _configDebounce?.Dispose();
        await _stopping.CancelAsync();
        await _scheduler.StopAsync(cancellationToken);
        // Supervised services keep running (adopted at the next start) unless their rule says stop-on-exit.
        foreach (var r in _remediators.Values)
        {
            try { await r.DisposeAsync(stopService: r.Definition.Supervise?.StopOnExit == true); }
            catch (Exception ex) { LogRunFailed(_logger, r.Definition.Name + " (stopping)", ex); }
        }
        _remediators.Clear();
        // What happened up to now (a transition, a crash, a restart) reaches the outbox before it closes: a message
        // decided in the last moments is written, and sent by the next Sentinel if not by this one.
        try { await Events.DrainAsync().WaitAsync(TimeSpan.FromSeconds(10), CancellationToken.None); }
        catch (TimeoutException) { LogDrainTimedOut(_logger); }
        if (_notifications is not null) await _notifications.DisposeAsync();
        if (_persister is not null) await _persister.DisposeAsync();
        if (History is not null) await History.DisposeAsync();
        LogStopped(_logger);
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await StopAsync();
        await _scheduler.DisposeAsync();
        await Events.DisposeAsync();
        foreach (var r in _runtimes.Values) await r.DisposeAsync();
        _stopping.Dispose();
    }

    [LoggerMessage(EventId = 17, Level = LogLevel.Warning, Message = "Stopping: events were still being handled after 10s; the rest are not written")]
    private static partial void LogDrainTimedOut(ILogger logger);

    [LoggerMessage(EventId = 1, Level = LogLevel.Information, Message = "Sentinel {Version} started: {Rules} rules from {ConfigFile}")]
    private static partial void LogStarted(ILogger logger, string version, int rules, string configFile);

    [LoggerMessage(EventId = 2, Level = LogLevel.Information, Message = "Sentinel stopped; state flushed")]
    private static partial void LogStopped(ILogger logger);

    [LoggerMessage(EventId = 10, Level = LogLevel.Information, Message = "Rule {Rule}: {From} -> {To}: {Description}")]
    private static partial void LogTransition(ILogger logger, string rule, RuleStatus from, RuleStatus to, string description);

    [LoggerMessage(EventId = 11, Level = LogLevel.Warning, Message = "Rule {Rule}: {From} -> {To}: {Description}")]
    private static partial void LogTransitionBad(ILogger logger, string rule, RuleStatus from, RuleStatus to, string description);

    [LoggerMessage(EventId = 12, Level = LogLevel.Error, Message = "Running rule {Rule} failed")]
    private static partial void LogRunFailed(ILogger logger, string rule, Exception ex);

    [LoggerMessage(EventId = 20, Level = LogLevel.Information, Message = "Configuration applied: {Added} added, {Changed} changed, {Removed} removed, {Unchanged} unchanged")]
    private static partial void LogConfigApplied(ILogger logger, int added, int changed, int removed, int unchanged);

    [LoggerMessage(EventId = 21, Level = LogLevel.Error, Message = "Configuration change rejected ({Count} errors); the running configuration stays:\n{Errors}")]
    private static partial void LogConfigRejected(ILogger logger, int count, string errors);

    [LoggerMessage(EventId = 22, Level = LogLevel.Warning, Message = "The engine: section changed; restart Sentinel to apply it (rules were reloaded)")]
    private static partial void LogEngineSettingsChanged(ILogger logger);

    [LoggerMessage(EventId = 24, Level = LogLevel.Warning, Message = "The check history could not be read ({Reason}); uptime starts from now")]
    private static partial void LogHistoryUnreadable(ILogger logger, string reason);

    [LoggerMessage(EventId = 25, Level = LogLevel.Warning, Message = "Rule {Rule} is not checked: {Warning}")]
    private static partial void LogRuleWaiting(ILogger logger, string rule, string warning);

    [LoggerMessage(EventId = 26, Level = LogLevel.Information, Message = "Rule {Rule} starts: the plugin it was waiting for is loaded")]
    private static partial void LogRuleStopsWaiting(ILogger logger, string rule);

    [LoggerMessage(EventId = 23, Level = LogLevel.Information, Message = "Plugins changed ({Plugins}); reloading the rules that use them")]
    private static partial void LogPluginsChanged(ILogger logger, string plugins);
}
