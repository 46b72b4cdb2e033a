using System.Text.Json;
using Sentinel.Abstractions;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine;

// Health and status: what /health, status.json, the API and the page show.
internal sealed partial class SentinelEngine
{
    public string StatusFilePath => Path.Combine(Config.Engine.StateDirectory, "status.json");

    /// <summary>The address the HTTP server listens on, once known.</summary>
    public string? HttpAddress
    {
        get => _httpAddress;
        set
        {
            _httpAddress = value;
            _states.StatusChanged();
        }
    }
    private string? _httpAddress;

    /// <summary>
    /// True while the scheduler fired within the last few seconds (what the systemd watchdog requires). Unlike
    /// <see cref="GetHealth"/> it ignores a state that cannot be written: restarting Sentinel would lose what it keeps
    /// in memory meanwhile, and would not free the disk.
    /// </summary>
    public bool SchedulerAlive => SchedulerHealth().Healthy;

    /// <summary>
    /// Test hook (used by the tests through <c>SENTINEL_TEST_HANG_SCHEDULER_WHEN</c>): the scheduler stops running
    /// rules and ticking, as if it hung, while the process stays up. Heartbeats and watchdog keep-alives must stop.
    /// </summary>
    public void SimulateSchedulerHang() => _checks.Hung = true;

    /// <summary>Sends the heartbeat's fail ping (a fatal error is about to stop Sentinel); waits at most a few seconds.</summary>
    public Task HeartbeatFailAsync(string reason) => _heartbeat?.FailAsync(reason, TimeSpan.FromSeconds(10)) ?? Task.CompletedTask;

    // What the engine's heartbeat says with each ping: alive (healthy), and how many rules are down or waiting.
    private (bool Alive, string Summary) HeartbeatProbe()
    {
        var (healthy, reason) = GetHealth();
        if (!healthy) return (false, reason);
        var set = _rules.Set;
        var states = set.Runtimes.Keys.Select(GetState).ToList();
        var down = states.Where(s => s?.Status == RuleStatus.Down).Select(s => s!.Rule).ToList();
        var waiting = set.Waiting.Select(w => w.Name).ToList();
        return (true, $"Sentinel {Version} on {Environment.MachineName}: {states.Count} rules, {down.Count} down" + (down.Count > 0 ? ": " + string.Join(", ", down.Take(20)) : "")
            + (waiting.Count > 0 ? $"; {waiting.Count} not checked, waiting for a plugin: " + string.Join(", ", waiting.Take(20)) : ""));
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
            : (true, _applier.Errors.Count > 0 ? $"running; the last config change was rejected ({_applier.Errors.Count} errors)" : "running");
    }

    /// <summary>
    /// The engine and every rule; with <paramref name="recent"/> &gt; 0, each rule's last check durations too; without
    /// <paramref name="uptime"/>, no uptime figures (what a metrics scrape needs is the states).
    /// </summary>
    public EngineStatus GetStatus(int recent = 0, bool uptime = true)
    {
        var (healthy, reason) = GetHealth();
        var set = _rules.Set;
        var (rules, cluster) = WithCluster(set.Runtimes.Values.Select(r => View(r.Definition, recent, uptime)).Concat(set.Waiting.Select(w => View(w, uptime)))
            .OrderBy(r => r.Name, StringComparer.Ordinal).ToList(), uptime);
        return new EngineStatus(Version, StartedAt, _time.GetUtcNow(), Config.Engine.ConfigFile, healthy, reason, HttpAddress,
            new ConfigStatus(_applier.Errors.Count == 0, _applier.RejectedAt, _applier.Errors.Select(e => e.ToString()).ToList()),
            _catalog.Plugins.Select(p => new PluginView(p.Name, p.Version, p.Types.Select(t => $"{t.Kind.ToString().ToLowerInvariant()}:{t.Name}").ToList())).ToList(),
            _catalog.Errors.Select(e => e.ToString()).ToList(),
            rules) { Notifications = _notifications?.GetStatus(), Cluster = cluster };
    }

    private RuleStatusView View(WaitingRule rule, bool uptime)
    {
        var s = _states.Get(rule.Name);
        return new RuleStatusView(rule.Name, rule.Description, RuleStatus.Waiting, _rules.WaitingSince.GetValueOrDefault(rule.Name, StartedAt), rule.Schedule,
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
            Service = remediation is null ? null : SupervisionView.Of(def, remediation, _rules.Remediators.GetValueOrDefault(def.Name)?.RunningProcess, _rules.Remediators.GetValueOrDefault(def.Name)?.Restarting == true, _time.GetUtcNow()),
            Uptime = uptime ? History?.Uptime(def.Name) : null,
            Recent = recent > 0 && History is not null ? History.Recent(def.Name, recent) : null,
        };
    }

    /// <summary>Acknowledges an open incident (stops its escalations and reminders).</summary>
    public Task<bool> AckAsync(long incident, CancellationToken cancellationToken) => _notifications?.AckAsync(incident, cancellationToken) ?? Task.FromResult(false);

    /// <summary>Writes status.json's content (what the state flush writes, and the bench measures).</summary>
    internal void WriteStatus(Stream stream) => JsonSerializer.Serialize(stream, GetStatus(), SentinelJson.Indented);
}
