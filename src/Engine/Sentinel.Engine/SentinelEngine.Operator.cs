using Microsoft.Extensions.Logging;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine;

// What operators ask of a running engine (the API, the CLI through it, the status page).
internal sealed partial class SentinelEngine
{
    /// <summary>A rule in full: its state, its definition (secrets masked), its recent checks.</summary>
    public RuleDetail? GetRule(string rule)
    {
        var set = _rules.Set;
        if (!set.Runtimes.TryGetValue(rule, out var runtime))
            return set.Waiting.FirstOrDefault(w => w.Name == rule) is { } waiting ? new RuleDetail(View(waiting, uptime: true), null)
                // Cluster mode: a rule another node runs, as that node wrote it.
                : Membership is not null && GetStatus(uptime: false).Rules.FirstOrDefault(r => r.Name == rule) is { } remote ? new RuleDetail(remote, null) : null;
        var def = runtime.Definition;
        static ActionView Action(ActionDefinition a) => new(a.Type.Name, Api.Redactor.View(a.Options));
        return new RuleDetail(View(def, History is null ? 0 : Sentinel.Engine.History.HistoryRecorder.RecentSize),
            new RuleDefinitionView(def.Schedule, def.Timeout, def.FailureThreshold, def.SuccessThreshold, new ActionView(def.Probe.Name, Api.Redactor.View(def.ProbeOptions)),
                def.Conditions.Select(c => c.Text).ToList(), def.Remediate.Select(Action).ToList(), def.Run.Select(Action).ToList(),
                def.Supervise is null ? null : Api.Redactor.View(def.Supervise), def.DependsOn, def.Notify.Select(n => n.After > TimeSpan.Zero ? $"{n.Channel} after {Duration.Format(n.After)}" : n.Channel).ToList(),
                $"{Display(def.Location.File)}:{def.Location.Line}"));
    }

    private static string Display(string? file) => file is null ? "" : ConfigLoader.Display(file);

    /// <summary>Open incidents first, then the most recent closed ones; with the messages written about each.</summary>
    public async Task<IReadOnlyList<IncidentDetail>> GetIncidentsAsync(CancellationToken cancellationToken, string? rule = null, int limit = 100)
    {
        if (_store is not INotificationStore s) return [];
        var incidents = (await s.RecentIncidentsAsync(rule is null ? limit : 1000, cancellationToken))
            .Where(i => rule is null || i.Rule == rule).Take(limit)
            .OrderBy(i => i.ClosedAt is null ? 0 : 1).ThenByDescending(i => i.Id).ToList();
        var messages = (await s.MessagesForAsync(incidents.Select(i => i.Id).ToList(), cancellationToken)).ToLookup(m => m.IncidentId);
        return incidents.Select(i => new IncidentDetail(i, messages[i.Id].Select(m => new MessageView(m.Id, m.Channel, m.Item.Kind, m.Status, m.CreatedAt,
            m.SentAt, m.Attempts, m.LastError, m.FailedOverFrom)).ToList())).ToList();
    }

    /// <summary>Loads the configuration file again and applies it, or keeps the running one and records the errors.</summary>
    public Task<ConfigLoadResult> ReloadConfigAsync(CancellationToken cancellationToken = default) => _applier.ReloadAsync(cancellationToken);

    /// <summary>Runs a rule's check now (outside its schedule); null when the rule is unknown, paused, or a check is already running.</summary>
    public Task<CheckRecord?> RunNowAsync(string rule, CancellationToken cancellationToken) => _checks.RunAsync(rule, cancellationToken);

    /// <summary>Runs one check of a rule now, unless one is already running; returns the check, or null if skipped.</summary>
    public Task<CheckRecord?> RunRuleAsync(string rule, CancellationToken cancellationToken = default) => _checks.RunAsync(rule, cancellationToken);

    /// <summary>Observes how late each scheduled check started (for the load harness and, later, metrics).</summary>
    internal Action<string, TimeSpan>? ScheduledStartObserver
    {
        get => _checks.ScheduledStartObserver;
        set => _checks.ScheduledStartObserver = value;
    }

    /// <summary>Pauses or resumes a rule (the API's pause and resume); false when there is no such rule.</summary>
    public async Task<bool> SetPausedAsync(string rule, bool paused, CancellationToken cancellationToken = default)
    {
        if (!_rules.TryGetRuntime(rule, out var runtime)) return false;
        var (next, t) = _states.Update(rule, current => RuleStateMachine.SetPaused(current, paused, _time.GetUtcNow()));
        if (t is not null) _checks.Publish(t);
        if (paused) await _scheduler.UnscheduleAsync(rule, cancellationToken);
        else await _scheduler.ScheduleAsync(runtime.Definition with { Paused = false }, cancellationToken);
        // Resumed while its service was held stopped (`sentinel stop`): watching it again means running it again.
        if (!paused && next.Remediation is { Held: true } && _rules.Remediators.TryGetValue(rule, out var held) && held.Supervisor is not null)
            _ = Task.Run(() => held.StartByOperatorAsync(restart: false));
        return true;
    }

    /// <summary>
    /// Starts a remediation attempt of the rule now, whatever its backoff and budget say. Returns what became of it,
    /// or an explanation when none could run.
    /// </summary>
    public async Task<(bool Ran, bool Ok, string Message)> RemediateNowAsync(string rule, string who)
    {
        if (!_rules.Runtimes.ContainsKey(rule)) return (false, false, $"there is no rule '{rule}'");
        if (!_rules.Remediators.TryGetValue(rule, out var remediator))
            return (false, false, $"rule '{rule}' has nothing to remediate with: give it remediate: actions or supervise:");
        var result = await remediator.RemediateNowAsync($"requested by {who}");
        return result is { } r ? (true, r.Ok, r.Message) : (false, false, "a remediation attempt of this rule is already running");
    }

    /// <summary>
    /// `sentinel stop|start|restart RULE`: a supervised service stopped and held so (its rule paused: no checks, no
    /// alerts, no restarts, kept across restarts of Sentinel), started again (and its rule resumed), or restarted now.
    /// The answer: an HTTP status (200, 404 no rule, 409 no service, 502 the start failed) and what happened.
    /// </summary>
    public async Task<(int Status, string Message)> ControlServiceAsync(string rule, string verb, CancellationToken cancellationToken)
    {
        if (!_rules.Runtimes.TryGetValue(rule, out var runtime)) return (404, $"there is no rule '{rule}'");
        if (!_rules.Remediators.TryGetValue(rule, out var remediator) || remediator.Supervisor is null)
            return (409, $"rule '{rule}' supervises no service (only a rule with supervise: has one to {verb})");
        switch (verb)
        {
            case "stop":
                await SetPausedAsync(rule, true, cancellationToken);
                var stopped = await remediator.StopByOperatorAsync();
                LogServiceControl(_logger, rule, "stopped by the operator", stopped);
                return (200, $"{stopped}; held stopped (not restarted, not alerted for, also after a restart of Sentinel) until `sentinel start {rule}`");
            case "start" or "restart":
                var (ok, message) = await remediator.StartByOperatorAsync(restart: verb == "restart");
                if (GetState(rule) is { Status: RuleStatus.Paused } && !runtime.Definition.Paused) await SetPausedAsync(rule, false, cancellationToken);
                LogServiceControl(_logger, rule, verb == "start" ? "started by the operator" : "restarted by the operator", message);
                return ok ? (200, message) : (502, $"the service did not start: {message} (Sentinel retries under its restart policy)");
            default:
                return (400, $"'{verb}' is not stop, start or restart");
        }
    }

    [LoggerMessage(EventId = 30, Level = LogLevel.Information, Message = "Rule {Rule}: service {What}: {Outcome}")]
    private static partial void LogServiceControl(ILogger logger, string rule, string what, string outcome);

    public bool HasRule(string rule) => _rules.Runtimes.ContainsKey(rule);

    /// <summary>The engine's clock.</summary>
    public DateTimeOffset Now => _time.GetUtcNow();
}
