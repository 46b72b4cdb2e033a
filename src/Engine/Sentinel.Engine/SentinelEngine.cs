using Microsoft.Extensions.Logging;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Events;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Runtime;
using Sentinel.Engine.Scheduling;
using Sentinel.Engine.State;

namespace Sentinel.Engine;

/// <summary>
/// Runs a configuration: the composition of the engine's parts and their start and stop order. A check takes one path
/// (<see cref="CheckPipeline"/>: probe, judge, state, observers), a configuration is applied in place
/// (<see cref="ConfigApplier"/>), rule states have one writer (<see cref="RuleStates"/>); what the parts ask of the
/// engine and what operators ask of it are in the partial files (Hosts, Status, Operator).
/// </summary>
internal sealed partial class SentinelEngine : IAsyncDisposable, IRemediationHost, INotificationHost, Api.IEngineApi
{
    private readonly PluginCatalog _catalog;
    private readonly IStateStore _store;
    private readonly IRuleScheduler _scheduler;
    private readonly ILoggerFactory _loggerFactory;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly PluginActivator _activator;
    private readonly RuleStates _states;
    private readonly RuleRegistry _rules = new();
    private readonly CheckPipeline _checks;
    private readonly ConfigApplier _applier;
    private readonly CancellationTokenSource _stopping = new();
    private StatePersister? _persister;
    private NotificationCenter? _notifications;
    private Heartbeat.HeartbeatSender? _heartbeat;
    private ConfigWatcher? _configWatcher;
    private long _lastTick;
    private int _started, _disposed;

    public SentinelEngine(SentinelConfig config, PluginCatalog catalog, IStateStore store, ILoggerFactory loggerFactory,
        TimeProvider? time = null, IRuleScheduler? scheduler = null, ConfigLoader? loader = null, History.IHistoryStore? history = null)
    {
        _catalog = catalog;
        _store = store;
        _loggerFactory = loggerFactory;
        _logger = loggerFactory.CreateLogger("Sentinel.Engine");
        _time = time ?? TimeProvider.System;
        _states = new RuleStates(_time);
        _scheduler = scheduler ?? new QuartzRuleScheduler(loggerFactory, config.Engine.MaxConcurrency, config.Engine.Cluster, AdoptAsync);
        Pings = new Heartbeat.PingRegistry(_time);
        Pings.Pinged += OnPinged;
        Membership = config.Engine.Cluster is null ? null : new ClusterMembership(_time);
        _activator = new PluginActivator(loggerFactory, _time, Pings, Membership);
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
        Observers = new CheckObservers(_logger);
        EngineObservers.AddTo(Observers, Metrics, History, _rules);
        _checks = new CheckPipeline(_rules, _states, Observers, Events, _time, loggerFactory, () => Redactor, _stopping.Token) { Lateness = Metrics.OnStartLateness };
        _applier = new ConfigApplier(config, _rules, _states, _checks, _scheduler, _activator, this, loader ?? new ConfigLoader(), catalog, Events, _time,
            loggerFactory, _stopping.Token) { Applied = applied => Redactor = Api.Redactor.For(applied, _apiToken) };
    }

    /// <summary>What follows each check and transition (metrics, history, remediation, pings), each isolated from the others.</summary>
    internal CheckObservers Observers { get; }

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

    /// <summary>The checks of `heartbeat` rules and what their pings said (served at /ping/...).</summary>
    public Heartbeat.PingRegistry Pings { get; }
    public DateTimeOffset StartedAt { get; }
    public SentinelConfig Config => _applier.Config;
    public PluginCatalog Catalog => _catalog;
    public IReadOnlyList<ConfigError> ConfigErrors => _applier.Errors;

    /// <summary>Config reload debounce; changes are applied after this long without further edits.</summary>
    public TimeSpan ReloadDelay { get; init; } = TimeSpan.FromMilliseconds(500);

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        if (Interlocked.Exchange(ref _started, 1) == 1) throw new InvalidOperationException("the engine is already started");
        _states.Load(await _store.LoadAsync(cancellationToken));
        if (_store is IPingStore pings)
            await Pings.UseStoreAsync(pings, Membership is not null, ex => { if (ex is null) Writes.Success("pings"); else Writes.Failure("pings", ex); }, cancellationToken);
        Events.Subscribe(Activity.OnEventAsync);
        if (History is not null)
        {
            // History only informs (uptime, sparklines): a history file that cannot be read must not stop the checks.
            try { await History.LoadAsync(cancellationToken); }
            catch (Exception ex) when (ex is System.Data.Common.DbException or IOException or InvalidDataException) { LogHistoryUnreadable(_logger, ex.Message); }
            History.Start();
        }
        _persister = new StatePersister(_store, StatusFilePath, WriteStatus, Config.Engine.StateFlushInterval, _loggerFactory.CreateLogger("Sentinel.State"), Writes)
        {
            RuleCount = () => _rules.Set.Runtimes.Count,
        };
        _states.Persister = _persister;
        await StartClusterAsync(cancellationToken);
        if (_store is INotificationStore notificationStore)
        {
            _notifications = new NotificationCenter(notificationStore, this, _activator.CreateAction, _time, _loggerFactory, Writes);
            await _notifications.StartAsync(cancellationToken);
            Events.Subscribe(_notifications.OnEventAsync);
            _applier.Notifications = _notifications;
        }
        await _scheduler.StartAsync(_checks.RunScheduledAsync, () =>
        {
            if (!_checks.Hung) Interlocked.Exchange(ref _lastTick, _time.GetUtcNow().UtcTicks);
        }, cancellationToken);
        await _applier.ApplyAsync(Config, cancellationToken);
        await _scheduler.FireSharedAsync(cancellationToken);
        if (_monitor is not null) await _monitor.StartAsync(cancellationToken); // alive, to the others, from now on
        var set = _rules.Set;
        var configured = Config.Rules.Select(r => r.Name).ToHashSet(StringComparer.Ordinal); // with the rules of other nodes
        foreach (var rule in _states.Rules.Where(k => !configured.Contains(k) && !set.Runtimes.ContainsKey(k) && set.Waiting.All(w => w.Name != k)).ToList()) _states.Remove(rule);
        _persister.Start();
        if (Config.Engine.WatchConfig)
        {
            _configWatcher = new ConfigWatcher(Config.Engine.ConfigFile, ReloadDelay, _time, () => ReloadConfigAsync(_stopping.Token), _logger,
                [Config.Engine.StateDirectory, Config.Engine.LogDirectory]);
            _configWatcher.Start();
        }
        if (Config.Engine.WatchPlugins) _catalog.StartWatching();
        _catalog.Changed += _applier.PluginsChanged;
        if (Config.Heartbeat is { To.Count: > 0 } heartbeat)
        {
            _heartbeat = new Heartbeat.HeartbeatSender(heartbeat, heartbeat.To.Select(a => _activator.CreateAction("engine.heartbeat", a)).ToList(), HeartbeatProbe, _time,
                _loggerFactory.CreateLogger("Sentinel.Heartbeat"));
            _heartbeat.Start();
        }
        LogStarted(_logger, Version, _rules.Runtimes.Count, Config.Engine.ConfigFile);
    }

    /// <summary>Stops firing, cancels running checks, and flushes state.</summary>
    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopping.IsCancellationRequested) return;
        if (_heartbeat is not null) await _heartbeat.DisposeAsync();
        foreach (var p in _rules.Pings.Values) await p.Sender.DisposeAsync();
        _rules.Pings.Clear();
        _catalog.Changed -= _applier.PluginsChanged;
        _configWatcher?.Dispose();
        await _stopping.CancelAsync();
        await _scheduler.StopAsync(cancellationToken);
        if (_monitor is not null) await _monitor.DisposeAsync(); // after its slots: this node stopped on purpose
        // Supervised services keep running (adopted at the next start) unless their rule says stop-on-exit.
        foreach (var r in _rules.Remediators.Values)
        {
            try { await r.DisposeAsync(stopService: r.Definition.Supervise?.StopOnExit == true); }
            catch (Exception ex) { CheckPipeline.LogRunFailed(_logger, r.Definition.Name + " (stopping)", ex); }
        }
        _rules.Remediators.Clear();
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
        foreach (var r in _rules.Runtimes.Values) await r.DisposeAsync();
        _stopping.Dispose();
    }
}
