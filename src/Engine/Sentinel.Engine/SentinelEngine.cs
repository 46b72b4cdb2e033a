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
internal sealed partial class SentinelEngine : IAsyncDisposable, IRemediationHost, INotificationHost, Api.IEngineApi
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
    private readonly Runtime.RuleStates _states;
    private readonly ConcurrentDictionary<string, ILogger> _ruleLoggers = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stopping = new();
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
    private Runtime.ConfigWatcher? _configWatcher;
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
        _states = new Runtime.RuleStates(_time);
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
        Observers = new Runtime.CheckObservers(_logger);
        AddObservers();
    }

    /// <summary>What follows each check and transition (metrics, history, remediation, pings), each isolated from the others.</summary>
    internal Runtime.CheckObservers Observers { get; }

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

    public RuleState? GetState(string rule) => _states.Get(rule);

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) throw new InvalidOperationException("the engine is already started");
        _states.Load(await _store.LoadAsync(cancellationToken));
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
        _states.Persister = _persister;
        if (_store is INotificationStore notificationStore)
        {
            _notifications = new NotificationCenter(notificationStore, this, _probes.CreateAction, _time, _loggerFactory, Writes);
            await _notifications.StartAsync(cancellationToken);
            Events.Subscribe(_notifications.OnEventAsync);
        }
        await _scheduler.StartAsync(RunScheduledAsync, () =>
        {
            if (!_hung) Interlocked.Exchange(ref _lastTick, _time.GetUtcNow().UtcTicks);
        }, cancellationToken);
        await ApplyAsync(_config, cancellationToken);
        var forgotten = _states.Rules.Where(k => !_runtimes.ContainsKey(k) && _rules.Waiting.All(w => w.Name != k)).ToList();
        foreach (var rule in forgotten) _states.Remove(rule);
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

    public async Task<bool> SetPausedAsync(string rule, bool paused, CancellationToken cancellationToken = default)
    {
        if (!_runtimes.TryGetValue(rule, out var runtime)) return false;
        var (next, t) = _states.Update(rule, current => RuleStateMachine.SetPaused(current, paused, _time.GetUtcNow()));
        if (t is not null) Publish(t);
        if (paused) await _scheduler.UnscheduleAsync(rule, cancellationToken);
        else await _scheduler.ScheduleAsync(runtime.Definition with { Paused = false }, cancellationToken);
        // Resumed while its service was held stopped (`sentinel stop`): watching it again means running it again.
        if (!paused && next.Remediation is { Held: true } && _remediators.TryGetValue(rule, out var held) && held.Supervisor is not null)
            _ = Task.Run(() => held.StartByOperatorAsync(restart: false));
        return true;
    }

    /// <summary>Stops firing, cancels running checks, and flushes state.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopping.IsCancellationRequested) return;
        if (_heartbeat is not null) await _heartbeat.DisposeAsync();
        foreach (var p in _rulePings.Values) await p.Sender.DisposeAsync();
        _rulePings.Clear();
        _catalog.Changed -= OnPluginsChanged;
        _configWatcher?.Dispose();
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
