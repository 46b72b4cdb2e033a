using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Notifications;

/// <summary>
/// Incidents and the outbox. A rule going down opens an incident and writes its messages (one per channel; later
/// ones for escalations) to the outbox in the same transaction as the rule's state; a dispatcher sends what is due,
/// groups what opens together, retries with backoff, fails over to a channel's fallback, and marks a message sent
/// only once its channel accepted it. Every channel that was told of an incident is told it is resolved.
/// </summary>
internal sealed partial class NotificationCenter : IAsyncDisposable
{
    private static readonly TimeSpan RetryMax = TimeSpan.FromMinutes(5);
    internal static readonly TimeSpan SendCap = TimeSpan.FromMinutes(2);

    private readonly INotificationStore _store;
    private readonly INotificationHost _host;
    private readonly ProbeFactory _factory;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, Incident> _open = new(StringComparer.Ordinal);
    private readonly List<OutboxMessage> _pending = [];
    private readonly Dictionary<string, (ChannelDefinition Def, string Key, IAction Action)> _channels = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _stop = new();
    private Dictionary<OutboxStatus, long> _counts = [];
    private TaskCompletionSource _signal = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _nextIncident;
    private long _nextMessage;
    private Task? _loop;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, DateTimeOffset> _crashes = new(StringComparer.Ordinal);
    private const string Writer = "outbox";
    private readonly State.StateWriteMonitor? _writes;
    private readonly HashSet<Incident> _unwrittenIncidents = [];
    private readonly HashSet<OutboxMessage> _unwrittenMessages = [];

    public NotificationCenter(INotificationStore store, INotificationHost host, ProbeFactory factory, TimeProvider time, ILoggerFactory loggers,
        State.StateWriteMonitor? writes = null)
    {
        _writes = writes;
        _store = store;
        _host = host;
        _factory = factory;
        _time = time;
        _logger = loggers.CreateLogger("Sentinel.Notifications");
    }

    private TimeSpan GroupWait => _host.Config.GroupWait;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var snapshot = await _store.LoadNotificationsAsync(cancellationToken);
        foreach (var i in snapshot.Open) _open[i.Rule] = i;
        _pending.AddRange(snapshot.Pending);
        _counts = snapshot.Counts;
        _nextIncident = snapshot.MaxIncidentId;
        _nextMessage = snapshot.MaxMessageId;
        ApplyChannels(_host.Config);
        await RecoverInFlightAsync(cancellationToken);
        foreach (var gone in _open.Keys.Where(r => r != EngineRule && _host.Config.Rules.All(d => d.Name != r) && _host.Config.Waiting.All(w => w.Name != r)).ToList())
            await CloseRemovedAsync(gone, _time.GetUtcNow(), cancellationToken);
        await ReconcileAsync(cancellationToken);
        // Stopped while its state could not be written; started, it could read it, and writes it again now.
        if (_open.ContainsKey(EngineRule))
            await CloseAsync(EngineRule, null, _time.GetUtcNow(), "Sentinel restarted and writes its state again", cancellationToken);
        _loop = Task.Run(LoopAsync);
    }

    /// <summary>The incident of Sentinel itself (its state cannot be written): not a rule name (those start with a letter or digit).</summary>
    internal const string EngineRule = "(sentinel)";

    // Sentinel's own trouble goes to the engine channels (notifications.engine), kept in memory if the outbox cannot
    // be written (the trouble may be that disk), and resolved when it is over.
    private async Task OpenEngineAsync(string reason, DateTimeOffset at, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            if (_open.ContainsKey(EngineRule)) return;
            var incident = new Incident { Id = ++_nextIncident, Rule = EngineRule, OpenedAt = at, Description = reason };
            _open[EngineRule] = incident;
            await CommitAsync(null, [incident], _host.Config.EngineChannels.Select(c => NewMessage(incident, EngineRule, c, "down", reason, at)).ToList(), ct);
        }
        finally { _gate.Release(); }
        Wake();
    }

    // A rule's state and its incident have different writers: the state persister writes a transition at once, the
    // incident is written when the transition's event is handled. A kill between the two leaves a rule down with no
    // incident (its outage would never be told) or healthy with one open (its resolved message would never go). Each
    // start puts them together again.
    private async Task ReconcileAsync(CancellationToken ct)
    {
        foreach (var def in _host.Config.Rules)
        {
            var state = _host.GetState(def.Name);
            if (state is { Status: RuleStatus.Down } && def.AlertOn.Contains(AlertOn.Down) && !_open.ContainsKey(def.Name))
            {
                LogReconciled(_logger, def.Name, "down with no incident: opening one");
                await OpenAsync(def, "down", state.LastCheck?.Description, state.Since, ct, SeenLines(state.LastCheck));
            }
            else if (state is { Status: RuleStatus.Healthy or RuleStatus.Paused } && _open.ContainsKey(def.Name))
            {
                LogReconciled(_logger, def.Name, $"{state.Status.ToString().ToLowerInvariant()} with an open incident: resolving it");
                await CloseAsync(def.Name, def, state.Since, state.Status == RuleStatus.Paused ? "paused" : state.LastCheck?.Description, ct);
            }
        }
    }

    // What does not say "resolved" tells the channel of its incident (down, gave-up, escalation, reminder, exited...).
    private static bool TellsOutage(OutboxMessage m) => m.Item.Kind is not ("resolved" or "briefly-down");

    // Messages that were being sent when Sentinel was killed: they may have arrived, or not. One about an open incident
    // is sent again (at most that one message arrives twice); its channel counts as told once it is delivered, and if
    // the incident closes first, gets a BRIEFLY DOWN (right whether or not the first copy arrived). One about an
    // incident that closed meanwhile is not repeated (a DOWN for an outage that is over): it counts as delivered, and
    // its channel gets the message that closes it now (BRIEFLY DOWN, or RESOLVED if it had been told before).
    // Anything else (a resolved message) is sent again.
    private async Task RecoverInFlightAsync(CancellationToken ct)
    {
        var unconfirmed = _pending.Where(m => m.SendingSince is not null).ToList();
        if (unconfirmed.Count == 0) return;
        var now = _time.GetUtcNow();
        var closing = new List<OutboxMessage>();
        var closedIds = unconfirmed.Where(m => TellsOutage(m) && m.IncidentId is { } id && _open.Values.All(i => i.Id != id)).Select(m => m.IncidentId!.Value).ToHashSet();
        var written = await _store.MessagesForAsync(closedIds, ct);
        var closed = closedIds.Count == 0 ? [] : (await _store.RecentIncidentsAsync(1000, ct)).Where(i => closedIds.Contains(i.Id)).ToDictionary(i => i.Id);
        foreach (var m in unconfirmed)
        {
            m.SendingSince = null;
            m.DueAt = now;
            if (!TellsOutage(m) || m.IncidentId is not { } id || !closedIds.Contains(id))
            {
                LogUnconfirmed(_logger, m.Id, m.Channel, m.Item.Kind, m.Rule, "it is sent again (it may arrive twice)");
                continue;
            }
            LogUnconfirmed(_logger, m.Id, m.Channel, m.Item.Kind, m.Rule, "its incident is over: it counts as delivered, and the message that closes it follows");
            m.Status = OutboxStatus.Sent;
            m.LastError = "handed to the channel when Sentinel stopped; not confirmed";
            if (written.Concat(closing).Any(w => w.IncidentId == id && w.Channel == m.Channel && w.Item.Kind is "resolved" or "briefly-down")) continue;
            if (closed.GetValueOrDefault(id) is { ClosedAt: { } end } incident && !incident.Notified.Contains(m.Channel))
            {
                var lasted = end - incident.OpenedAt;
                var briefly = NewMessage(incident, m.Rule, m.Channel, "briefly-down", $"down for {Duration.Format(lasted)}, resolved: {incident.Description}", end, m.Item.Output);
                briefly.DueAt = now;
                closing.Add(briefly);
            }
            else closing.AddRange(ResolvedAfterTheFact(m));
        }
        await CommitAsync(null, [], [.. unconfirmed, .. closing], ct);
    }

    /// <summary>Creates the channels of a (new) configuration; unchanged channels keep their instance.</summary>
    public void ApplyChannels(SentinelConfig config)
    {
        lock (_channels)
        {
            var keep = new HashSet<string>(StringComparer.Ordinal);
            foreach (var def in config.Channels)
            {
                var key = def.Type.Name + "@" + def.Type.Generation + JsonSerializer.Serialize(def.Options, def.Options.GetType(), SentinelJson.Options);
                keep.Add(def.Name);
                if (_channels.TryGetValue(def.Name, out var existing) && existing.Key == key) { _channels[def.Name] = (def, key, existing.Action); continue; }
                var action = _factory.CreateAction("channel " + def.Name, new ActionDefinition(def.Type, def.Options, def.Location));
                if (existing.Action is IDisposable d) d.Dispose();
                _channels[def.Name] = (def, key, action);
            }
            foreach (var name in _channels.Keys.Where(k => !keep.Contains(k)).ToList())
            {
                if (_channels[name].Action is IDisposable d) d.Dispose();
                _channels.Remove(name);
            }
        }
    }

    public async ValueTask OnEventAsync(EngineEvent e, CancellationToken cancellationToken)
    {
        switch (e)
        {
            case RuleTransition { To: RuleStatus.Down } t:
                if (Rule(t.Rule) is { } def && def.AlertOn.Contains(AlertOn.Down)) await OpenAsync(def, "down", t.Check?.Description, t.When, cancellationToken, SeenLines(t.Check));
                break;
            case RuleTransition { To: RuleStatus.Healthy or RuleStatus.Paused } t:
                if (Rule(t.Rule) is { } healthy) await CloseAsync(healthy.Name, healthy, t.When, t.To == RuleStatus.Paused ? "paused" : t.Check?.Description, cancellationToken);
                break;
            case StateWriteFailed f:
                await OpenEngineAsync(f.Reason, f.When, cancellationToken);
                break;
            case StateWriteRecovered r:
                await CloseAsync(EngineRule, null, r.When, $"written again after {Duration.Format(r.When - r.Since)} ({r.Reason}); nothing was lost", cancellationToken);
                break;
            case ConfigApplied { Removed.Count: > 0 } applied:
                foreach (var removed in applied.Removed) await CloseRemovedAsync(removed, applied.When, cancellationToken);
                break;
            case RemediationEvent { Kind: RemediationEventKind.GaveUp } g:
                if (Rule(g.Rule) is { } gaveUp && gaveUp.AlertOn.Contains(AlertOn.GaveUp)) await OpenAsync(gaveUp, "gave-up", g.Message, g.When, cancellationToken, g.Output);
                break;
            case RemediationEvent { Kind: RemediationEventKind.Remediating, RateExceeded: { } count } r:
                if (Rule(r.Rule) is { } restarted && restarted.AlertOn.Contains(AlertOn.RestartRate))
                    await EventAsync(restarted, "restart-rate", $"remediated {count} times within {Duration.Format(restarted.RestartRate.Within)} (limit {restarted.RestartRate.Max}): {r.Message}", r.When, [], cancellationToken);
                break;
            case RemediationEvent { Kind: RemediationEventKind.RemediationFailed } f when Rule(f.Rule) is { } failed:
                if (failed.AlertOn.Contains(AlertOn.Exited)) await AmendCrashAsync(failed, f, cancellationToken);
                if (failed.AlertOn.Contains(AlertOn.RemediationFailed)) await EventAsync(failed, "remediation-failed", f.Message, f.When, f.Output, cancellationToken);
                break;
            case RemediationEvent { Kind: RemediationEventKind.Exited } x:
                if (Rule(x.Rule) is { } crashed && crashed.AlertOn.Contains(AlertOn.Exited))
                {
                    _crashes[x.Rule] = x.When;
                    await EventAsync(crashed, "exited", x.Message.Replace("the service ", crashed.Name + " ", StringComparison.Ordinal), x.When, x.Output, cancellationToken);
                }
                break;
            case RemediationEvent { Kind: RemediationEventKind.Remediated } done:
                if (Rule(done.Rule) is { } remediated && remediated.AlertOn.Contains(AlertOn.Exited)) await AmendCrashAsync(remediated, done, cancellationToken);
                break;
        }
    }

    // The restart that followed a crash: added to the crash's message while it still waits (group-wait), so one
    // message says both ("bot (pid 41) was killed by signal 9; restarted in 120ms: started pid 4242").
    private async Task AmendCrashAsync(RuleDefinition def, RemediationEvent after, CancellationToken ct)
    {
        if (!_crashes.TryRemove(def.Name, out var crashedAt)) return;
        await _gate.WaitAsync(ct);
        try
        {
            var waiting = _pending.Where(m => m.Rule == def.Name && m.Status == OutboxStatus.Pending && m.Item.Kind == "exited" && m.CreatedAt == crashedAt).ToList();
            if (waiting.Count == 0) return;
            var took = Duration.Format(after.When - crashedAt);
            var outcome = after.Kind == RemediationEventKind.Remediated ? $"restarted in {took}: {after.Message}" : $"the restart failed after {took}: {after.Message}";
            foreach (var m in waiting) m.Item = m.Item with { Description = $"{m.Item.Description}; {outcome}" };
            await CommitAsync(def.Name, [], waiting, ct);
        }
        finally { _gate.Release(); }
    }

    // What the probe saw line by line (data "lines": log-regex's matched lines and their context), shown in the alert.
    private static IReadOnlyList<string>? SeenLines(CheckRecord? check)
        => check?.Data?.TryGetValue("lines", out var value) == true && value is IEnumerable<string> lines ? lines.ToList() : null;

    private RuleDefinition? Rule(string name) => _host.Config.Rules.FirstOrDefault(r => r.Name == name);

    private async Task OpenAsync(RuleDefinition def, string cause, string? description, DateTimeOffset at, CancellationToken ct, IReadOnlyList<string>? output = null)
    {
        await _gate.WaitAsync(ct);
        try
        {
            if (_open.TryGetValue(def.Name, out var existing))
            {
                // Already open (down, then the restart budget ran out): tell the channels already told, once.
                if (cause == "gave-up" && existing.SuppressedBy is null && existing.MutedBy is null)
                {
                    var extra = Immediate(def).Select(c => NewMessage(existing, def.Name, c, "gave-up", description, at, output)).ToList();
                    await CommitAsync(def.Name, [], extra, ct);
                    Wake();
                }
                return;
            }
            var incident = new Incident { Id = ++_nextIncident, Rule = def.Name, Cause = cause, OpenedAt = at, Description = description };
            incident.SuppressedBy = def.DependsOn.FirstOrDefault(p => _host.GetState(p)?.Status == RuleStatus.Down || _open.ContainsKey(p));
            if (incident.SuppressedBy is null) incident.MutedBy = Muting(def.Name, at)?.Name;
            var messages = incident.SuppressedBy is null && incident.MutedBy is null ? Messages(def, incident, cause, description, at, output) : [];
            if (incident.SuppressedBy is not null) LogSuppressed(_logger, def.Name, incident.Id, incident.SuppressedBy);
            if (incident.MutedBy is not null) LogMuted(_logger, def.Name, incident.Id, incident.MutedBy);
            _open[def.Name] = incident;
            await CommitAsync(def.Name, [incident], messages, ct);
        }
        finally { _gate.Release(); }
        Wake();
    }

    private List<OutboxMessage> Messages(RuleDefinition def, Incident incident, string kind, string? description, DateTimeOffset at, IReadOnlyList<string>? output = null)
        => def.Notify.Select(n =>
        {
            var m = NewMessage(incident, def.Name, n.Channel, n.After > TimeSpan.Zero ? "escalation" : kind, description, at, output);
            if (n.After > TimeSpan.Zero) { m.DueAt = incident.OpenedAt + n.After; m.Groupable = false; }
            else if (incident.OpenedAt + def.MinDown > m.DueAt) m.DueAt = incident.OpenedAt + def.MinDown; // flap damping: told only if still down then
            return m;
        }).ToList();

    private static IEnumerable<string> Immediate(RuleDefinition def) => def.Notify.Where(n => n.After == TimeSpan.Zero).Select(n => n.Channel).Distinct();

    private OutboxMessage NewMessage(Incident? incident, string rule, string channel, string kind, string? description, DateTimeOffset at, IReadOnlyList<string>? output = null)
    {
        var status = rule == EngineRule ? (kind == "resolved" ? "healthy" : "down") : _host.GetState(rule)?.Status.ToString().ToLowerInvariant() ?? "unknown";
        return new OutboxMessage
        {
            Id = ++_nextMessage, IncidentId = incident?.Id, Rule = rule, Channel = channel, CreatedAt = at, DueAt = at + GroupWait,
            Item = new NotificationItem(rule, kind, status, incident?.OpenedAt ?? at, description, incident?.Id, output,
                Restarts: _host.GetState(rule)?.Remediation?.Total is > 0 and var r ? r : null),
        };
    }

    private async Task EventAsync(RuleDefinition def, string kind, string description, DateTimeOffset at, IReadOnlyList<string> output, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            _open.TryGetValue(def.Name, out var incident);
            if (incident?.SuppressedBy is not null || incident?.MutedBy is not null || Muting(def.Name, at) is not null) return;
            await CommitAsync(def.Name, [], Immediate(def).Select(c => NewMessage(incident, def.Name, c, kind, description, at, output)).ToList(), ct);
        }
        finally { _gate.Release(); }
        Wake();
    }

    private async Task CloseAsync(string rule, RuleDefinition? def, DateTimeOffset at, string? description, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            if (!_open.Remove(rule, out var incident)) return;
            incident.ClosedAt = at;
            var changed = CancelPending(m => m.IncidentId == incident.Id);
            var messages = new List<OutboxMessage>();
            // A down message being sent now is not cancelled (it may have arrived): when its channel accepts it, it
            // gets the resolved message (ResolvedAfterTheFact); if Sentinel is killed first, the next one closes it
            // (RecoverInFlightAsync). Neither told twice nor left with a DOWN.
            // Nothing that went down goes untold: a channel whose down message was still waiting (group-wait, or a
            // failing channel's retries) gets one message saying it was down and is resolved, unless the outage was
            // shorter than the rule's min-down (flap damping, asked for explicitly).
            var lasted = at - incident.OpenedAt;
            if (lasted >= (def?.MinDown ?? TimeSpan.Zero) && incident.SuppressedBy is null && incident.MutedBy is null)
                foreach (var untold in changed.Where(m => m.Item.Kind is "down" or "gave-up" && !incident.Notified.Contains(m.Channel)).GroupBy(m => m.Channel))
                {
                    var m = NewMessage(incident, rule, untold.Key, "briefly-down", $"down for {Duration.Format(lasted)}, resolved: {incident.Description}", at,
                        untold.Select(d => d.Item.Output).FirstOrDefault(o => o is { Count: > 0 }));
                    m.DueAt = untold.Min(d => d.DueAt); // when the down message would have gone: its group-wait already ran
                    messages.Add(m);
                }
            if (def?.SendResolved ?? true)
                foreach (var channel in incident.Notified.Distinct())
                {
                    var m = NewMessage(incident, rule, channel, "resolved", description, at);
                    messages.Add(m);
                }
            var incidents = new List<Incident> { incident };
            ReleaseChildren(rule, at, incidents, messages);
            LogResolved(_logger, rule, incident.Id, messages.Count(m => m.Item.Kind == "resolved"));
            await CommitAsync(def?.Name, incidents, [.. changed, .. messages], ct);
        }
        finally { _gate.Release(); }
        Wake();
    }

    // Children held back while this rule was down: those still down are alerted for now.
    private void ReleaseChildren(string parent, DateTimeOffset at, List<Incident> incidents, List<OutboxMessage> messages)
    {
        foreach (var child in _open.Values.Where(i => i.SuppressedBy == parent).ToList())
        {
            child.SuppressedBy = null;
            incidents.Add(child);
            if (Rule(child.Rule) is { } childDef && _host.GetState(child.Rule)?.Status == RuleStatus.Down)
                messages.AddRange(Messages(childDef, child, child.Cause, child.Description, at));
        }
    }

    // A rule removed from the configuration (edited out, or while Sentinel was stopped) cannot recover: its open
    // incident is closed, and every channel that was told gets a resolved message saying why, instead of an incident
    // left open for ever.
    private async Task CloseRemovedAsync(string rule, DateTimeOffset at, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            if (!_open.Remove(rule, out var incident)) return;
            incident.ClosedAt = at;
            var changed = CancelPending(m => m.IncidentId == incident.Id);
            var messages = incident.Notified.Distinct().Select(channel => new OutboxMessage
            {
                Id = ++_nextMessage, IncidentId = incident.Id, Rule = rule, Channel = channel, CreatedAt = at, DueAt = at + GroupWait,
                Item = new NotificationItem(rule, "resolved", "removed", incident.OpenedAt, "the rule was removed from the configuration", incident.Id),
            }).ToList();
            var incidents = new List<Incident> { incident };
            ReleaseChildren(rule, at, incidents, messages);
            LogResolved(_logger, rule, incident.Id, messages.Count(m => m.Item.Kind == "resolved"));
            await CommitAsync(null, incidents, [.. changed, .. messages], ct);
        }
        finally { _gate.Release(); }
        Wake();
    }

    /// <summary>Acknowledges an open incident: its escalations and reminders stop. False when there is no such open incident.</summary>
    public async Task<bool> AckAsync(long id, CancellationToken ct)
    {
        await _gate.WaitAsync(ct);
        try
        {
            var incident = _open.Values.FirstOrDefault(i => i.Id == id);
            if (incident is null) return false;
            incident.AckedAt ??= _time.GetUtcNow();
            var cancelled = CancelPending(m => m.IncidentId == id && m.Item.Kind is "escalation" or "reminder");
            await CommitAsync(incident.Rule, [incident], cancelled, ct);
            LogAcked(_logger, incident.Rule, id);
            return true;
        }
        finally { _gate.Release(); }
    }

    private List<OutboxMessage> CancelPending(Func<OutboxMessage, bool> which)
    {
        // A message handed to its channel is never cancelled: it may already have arrived.
        var cancelled = _pending.Where(m => m.Status == OutboxStatus.Pending && m.SendingSince is null && which(m)).ToList();
        foreach (var m in cancelled) m.Status = OutboxStatus.Cancelled;
        return cancelled;
    }

    // Written with the rule's state in one transaction. A write that fails (a full disk) does not stop anything: the
    // incidents and messages live on in memory (they are sent from there), are kept here, and are written with the
    // next commit that works (the dispatcher tries every few seconds). The rule's state is kept by the StatePersister.
    private async Task CommitAsync(string? rule, IReadOnlyCollection<Incident> incidents, IReadOnlyCollection<OutboxMessage> messages, CancellationToken ct)
    {
        var allIncidents = _unwrittenIncidents.Count == 0 ? incidents : [.. _unwrittenIncidents.Union(incidents)];
        var allMessages = _unwrittenMessages.Count == 0 ? messages : [.. _unwrittenMessages.Union(messages)];
        try
        {
            if (allIncidents.Count + allMessages.Count > 0 || rule is not null)
                await _store.CommitAsync(rule is null ? null : _host.GetState(rule), allIncidents, allMessages, ct);
            _unwrittenIncidents.Clear();
            _unwrittenMessages.Clear();
            _writes?.Success(Writer);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _unwrittenIncidents.UnionWith(incidents);
            _unwrittenMessages.UnionWith(messages);
            if (_writes is null) throw;
            _writes.Failure(Writer, ex);
        }
        _host.NotificationsChanged();
        foreach (var m in messages)
        {
            if (m.Status == OutboxStatus.Pending) { if (!_pending.Contains(m)) _pending.Add(m); }
            else
            {
                _pending.Remove(m);
                _counts[m.Status] = _counts.GetValueOrDefault(m.Status) + 1;
            }
        }
    }

    private void Wake() => _signal.TrySetResult();

    private async Task LoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            var signal = _signal;
            TimeSpan wait;
            try { wait = await DispatchDueAsync(_stop.Token); }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { break; }
            catch (Exception ex)
            {
                LogDispatchFailed(_logger, ex);
                wait = TimeSpan.FromSeconds(5);
            }
            if (signal.Task.IsCompleted) { _signal = new(TaskCreationOptions.RunContinuationsAsynchronously); continue; }
            using var delay = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            await Task.WhenAny(signal.Task, Task.Delay(wait, _time, delay.Token));
            delay.Cancel();
            if (signal.Task.IsCompleted) Interlocked.CompareExchange(ref _signal, new(TaskCreationOptions.RunContinuationsAsynchronously), signal);
        }
    }

    /// <summary>Sends what is due; returns how long until something else is due.</summary>
    private async Task<TimeSpan> DispatchDueAsync(CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        List<(string Channel, List<OutboxMessage> Batch)> batches;
        await _gate.WaitAsync(ct);
        try
        {
            if (_unwrittenIncidents.Count + _unwrittenMessages.Count > 0) await CommitAsync(null, [], [], ct);
            await ReleaseMutedAsync(now, ct);
            await QueueRemindersAsync(now, ct);
            // During a rule's maintenance window only resolved messages go out; the rest wait for its end. A resolved
            // message never overtakes what it resolves (a down being retried, or sent again after a restart).
            bool Sendable(OutboxMessage m) => m.Status == OutboxStatus.Pending && m.SendingSince is null
                && (m.Item.Kind == "resolved" ? !_pending.Any(e => e.Id < m.Id && e.IncidentId == m.IncidentId && e.Channel == m.Channel && e.Status == OutboxStatus.Pending && TellsOutage(e))
                    : Muting(m.Rule, now) is null);
            batches = _pending.Where(m => Sendable(m) && m.DueAt <= now).Select(m => m.Channel).Distinct()
                .Select(c => (c, _pending.Where(m => m.Channel == c && Sendable(m) && (m.DueAt <= now || m.Groupable)).OrderBy(m => m.Id).ToList()))
                .ToList();
        }
        finally { _gate.Release(); }

        foreach (var (channel, batch) in batches) await SendAsync(channel, batch, ct);

        await _gate.WaitAsync(ct);
        try
        {
            var muted = _pending.Where(m => m.Status == OutboxStatus.Pending && m.Item.Kind != "resolved")
                .Select(m => _host.Config.Maintenance.Where(w => w.Covers(m.Rule)).Select(w => w.OpenUntil(now)).OfType<DateTimeOffset>().DefaultIfEmpty(m.DueAt).Max());
            var next = _pending.Where(m => m.Status == OutboxStatus.Pending).Select(m => m.DueAt)
                .Concat(muted)
                .Concat(_open.Values.Select(NextReminder).OfType<DateTimeOffset>())
                .Concat(_open.Values.Select(MutedUntil).OfType<DateTimeOffset>())
                .Concat(_unwrittenIncidents.Count + _unwrittenMessages.Count > 0 ? [now + TimeSpan.FromSeconds(5)] : [])
                .DefaultIfEmpty(now + TimeSpan.FromMinutes(1)).Min();
            var wait = next - _time.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait > TimeSpan.FromMinutes(1) ? TimeSpan.FromMinutes(1) : wait;
        }
        finally { _gate.Release(); }
    }

    // Sentinel's own trouble is not any rule's maintenance.
    private MaintenanceWindow? Muting(string rule, DateTimeOffset at)
        => rule == EngineRule ? null : _host.Config.Maintenance.FirstOrDefault(w => w.Covers(rule) && w.OpenUntil(at) is not null);

    // Incidents opened during a maintenance window that has ended: alerted for now if their rule is still down.
    private async Task ReleaseMutedAsync(DateTimeOffset now, CancellationToken ct)
    {
        foreach (var incident in _open.Values.Where(i => i.MutedBy is not null).ToList())
        {
            if (Muting(incident.Rule, now) is not null) continue;
            incident.MutedBy = null;
            var messages = Rule(incident.Rule) is { } def && _host.GetState(incident.Rule)?.Status == RuleStatus.Down
                ? Messages(def, incident, incident.Cause, _host.GetState(incident.Rule)?.LastCheck?.Description ?? incident.Description, now)
                : [];
            foreach (var m in messages.Where(m => m.Groupable)) m.DueAt = now;
            await CommitAsync(null, [incident], messages, ct);
        }
    }

    private DateTimeOffset? MutedUntil(Incident i)
        => i.MutedBy is null ? null : _host.Config.Maintenance.Where(w => w.Covers(i.Rule)).Select(w => w.OpenUntil(_time.GetUtcNow())).OfType<DateTimeOffset>().DefaultIfEmpty(_time.GetUtcNow()).Max();

    private DateTimeOffset? NextReminder(Incident i)
        => i.AckedAt is null && i.SuppressedBy is null && i.MutedBy is null && i.LastNotifiedAt is { } last && Rule(i.Rule)?.ReminderInterval is { } every ? last + every : null;

    private async Task QueueRemindersAsync(DateTimeOffset now, CancellationToken ct)
    {
        foreach (var incident in _open.Values.ToList())
        {
            if (NextReminder(incident) is not { } due || due > now || Rule(incident.Rule) is not { } def) continue;
            incident.LastNotifiedAt = now;
            var messages = incident.Notified.Distinct().Select(c => NewMessage(incident, def.Name, c, "reminder", _host.GetState(def.Name)?.LastCheck?.Description ?? incident.Description, now)).ToList();
            foreach (var m in messages) m.DueAt = now;
            await CommitAsync(null, [incident], messages, ct);
        }
    }

    private async Task SendAsync(string channel, List<OutboxMessage> batch, CancellationToken ct)
    {
        (ChannelDefinition Def, string Key, IAction Action) target;
        bool found;
        lock (_channels) found = _channels.TryGetValue(channel, out target);
        var now = _time.GetUtcNow();
        if (!found)
        {
            await FinishAsync(batch, m => { m.Status = OutboxStatus.Expired; m.LastError = $"channel '{channel}' is no longer configured"; }, ct);
            LogExpired(_logger, batch.Count, channel, "the channel is no longer configured");
            _host.Delivered(channel, "expired", batch.Count, "the channel is no longer configured");
            return;
        }
        List<NotificationItem> items;
        await _gate.WaitAsync(ct);
        try
        {
            // Closed meanwhile (a resolved rule cancels what has not gone yet); what is left is marked as being
            // sent before it is handed over, so a kill during the send is known after the restart.
            batch.RemoveAll(m => m.Status != OutboxStatus.Pending);
            if (batch.Count == 0) return;
            foreach (var m in batch) m.SendingSince = now;
            await CommitAsync(null, [], batch, ct);
            items = batch.Select(m => m.Item.Kind is "down" or "reminder" or "escalation" or "gave-up"
                ? m.Item with { Suppressed = _open.Values.Where(i => i.SuppressedBy == m.Rule).Select(i => i.Rule).ToList() is { Count: > 0 } s ? s : null }
                : m.Item).ToList();
        }
        finally { _gate.Release(); }
        var notification = MessageComposer.Compose(items, target.Def.Template, now);
        var output = new ActionOutput(20);
        var context = new ActionContext
        {
            RuleName = batch.Count == 1 ? batch[0].Rule : $"{batch.Count} rules", Event = "notify", Message = notification.Text, Notification = notification,
            TimeProvider = _time, Logger = _logger, Output = output,
        };
        Exception? error = null;
        try
        {
            var pipeline = new ResiliencePipelineBuilder { TimeProvider = _time }
                .AddRetry(new RetryStrategyOptions
                {
                    MaxRetryAttempts = 2, Delay = TimeSpan.FromSeconds(1), BackoffType = DelayBackoffType.Exponential,
                    ShouldHandle = new PredicateBuilder().Handle<Exception>(e => e is not ActionFailedException { Permanent: true } && e is not OperationCanceledException),
                })
                .AddTimeout(SendCap)
                .Build();
            await pipeline.ExecuteAsync(async token => await target.Action.ExecuteAsync(context, token), ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested) { throw; }
        catch (Exception ex) { error = ex; }

        now = _time.GetUtcNow();
        if (error is null)
        {
            await FinishAsync(batch, m => { m.Status = OutboxStatus.Sent; m.SentAt = now; m.Attempts++; }, ct, incident =>
            {
                if (!incident.Notified.Contains(channel)) incident.Notified.Add(channel);
                incident.LastNotifiedAt = now;
            });
            LogSent(_logger, batch.Count, channel, notification.Subject);
            _host.Delivered(channel, "sent", batch.Count, notification.Subject);
            return;
        }
        var permanent = error is ActionFailedException { Permanent: true };
        var message = error is Polly.Timeout.TimeoutRejectedException ? $"no answer within {Duration.Format(SendCap)}" : error.Message;
        LogSendFailed(_logger, channel, permanent ? "permanent" : "will retry", message);
        var fallback = target.Def.Fallback;
        var moved = new List<OutboxMessage>();
        await FinishAsync(batch, m =>
        {
            m.Attempts++;
            m.FirstAttemptAt ??= now;
            m.LastError = message;
            if (now - m.CreatedAt >= target.Def.GiveUpAfter) { m.Status = OutboxStatus.Expired; return; }
            if (fallback is not null && (permanent || now - m.FirstAttemptAt >= target.Def.FailoverAfter))
            {
                m.Status = OutboxStatus.FailedOver;
                moved.Add(new OutboxMessage
                {
                    Id = ++_nextMessage, IncidentId = m.IncidentId, Rule = m.Rule, Channel = fallback, Item = m.Item, CreatedAt = now, DueAt = now,
                    FailedOverFrom = channel,
                });
                return;
            }
            if (permanent) { m.Status = OutboxStatus.Expired; return; }
            var backoff = TimeSpan.FromSeconds(Math.Min(RetryMax.TotalSeconds, 5 * Math.Pow(2, Math.Min(m.Attempts - 1, 10))));
            m.DueAt = now + backoff;
        }, ct, extra: moved);
        var expired = batch.Count(m => m.Status == OutboxStatus.Expired);
        var retried = batch.Count(m => m.Status == OutboxStatus.Pending);
        if (retried > 0) _host.Delivered(channel, "failed", retried, $"{message} (will retry)");
        if (moved.Count > 0) _host.Delivered(channel, "failed-over", moved.Count, $"{message} (sent to {fallback} instead)");
        if (expired > 0) _host.Delivered(channel, "expired", expired, message);
        if (expired > 0) LogExpired(_logger, expired, channel, message);
        if (moved.Count > 0) LogFailedOver(_logger, moved.Count, channel, fallback!);
    }

    private async Task FinishAsync(List<OutboxMessage> batch, Action<OutboxMessage> update, CancellationToken ct, Action<Incident>? onIncident = null, List<OutboxMessage>? extra = null)
    {
        // What a channel did is recorded even while Sentinel stops: a delivered message must not be sent again.
        ct = CancellationToken.None;
        await _gate.WaitAsync(ct);
        try
        {
            var incidents = new List<Incident>();
            foreach (var m in batch)
            {
                m.SendingSince = null;
                update(m);
                if (onIncident is not null && m.IncidentId is { } id && TellsOutage(m))
                {
                    var incident = _open.Values.FirstOrDefault(i => i.Id == id);
                    if (incident is not null) { onIncident(incident); if (!incidents.Contains(incident)) incidents.Add(incident); }
                    else if (m.Status == OutboxStatus.Sent) (extra ??= []).AddRange(ResolvedAfterTheFact(m));
                }
            }
            await CommitAsync(null, incidents, [.. batch, .. extra ?? []], ct);
        }
        finally { _gate.Release(); }
        if (extra is { Count: > 0 }) Wake();
    }

    // A "down" delivered after its incident closed (the send was in flight, or is sent again after a kill): the channel
    // was told, so it gets the resolved message too. Its rule may have been removed meanwhile: it is told why it ended.
    private IEnumerable<OutboxMessage> ResolvedAfterTheFact(OutboxMessage sent)
    {
        var def = Rule(sent.Rule);
        if (def is { SendResolved: false }) yield break;
        // Told before (a reminder was in flight): the resolved message written at the close is waiting for this one.
        if (_pending.Any(p => p.Status == OutboxStatus.Pending && p.IncidentId == sent.IncidentId && p.Channel == sent.Channel && p.Item.Kind == "resolved")) yield break;
        var now = _time.GetUtcNow();
        yield return new OutboxMessage
        {
            Id = ++_nextMessage, IncidentId = sent.IncidentId, Rule = sent.Rule, Channel = sent.Channel, CreatedAt = now, DueAt = now + GroupWait,
            Item = def is null
                ? new NotificationItem(sent.Rule, "resolved", "removed", sent.Item.Since, "the rule was removed from the configuration", sent.IncidentId)
                : new NotificationItem(def.Name, "resolved", _host.GetState(def.Name)?.Status.ToString().ToLowerInvariant() ?? "healthy", sent.Item.Since, null, sent.IncidentId),
        };
    }

    public NotificationStatus GetStatus()
    {
        _gate.Wait();
        try
        {
            return new NotificationStatus(_pending.Count(m => m.Status == OutboxStatus.Pending), _counts.GetValueOrDefault(OutboxStatus.Sent),
                _counts.GetValueOrDefault(OutboxStatus.FailedOver), _counts.GetValueOrDefault(OutboxStatus.Expired),
                _open.Values.OrderBy(i => i.Id).Select(i => new IncidentView(i.Id, i.Rule, i.Cause, i.OpenedAt, i.AckedAt, i.SuppressedBy, [.. i.Notified], i.Description, i.MutedBy)).ToList());
        }
        finally { _gate.Release(); }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_loop is not null) { try { await _loop; } catch (OperationCanceledException) { } }
        // The last chance to write what a failing disk kept in memory; what still cannot be written is named.
        if (_unwrittenIncidents.Count + _unwrittenMessages.Count > 0)
        {
            await _gate.WaitAsync();
            try
            {
                await CommitAsync(null, [], [], CancellationToken.None);
                if (_unwrittenIncidents.Count + _unwrittenMessages.Count > 0) LogUnwrittenLost(_logger, _unwrittenMessages.Count, _unwrittenIncidents.Count);
            }
            finally { _gate.Release(); }
        }
        lock (_channels)
            foreach (var c in _channels.Values) (c.Action as IDisposable)?.Dispose();
        _stop.Dispose();
    }

    [LoggerMessage(EventId = 600, Level = LogLevel.Information, Message = "Notified {Channel} ({Count} messages): {Subject}")]
    private static partial void LogSent(ILogger logger, int count, string channel, string subject);

    [LoggerMessage(EventId = 601, Level = LogLevel.Warning, Message = "Channel {Channel} failed ({How}): {Error}")]
    private static partial void LogSendFailed(ILogger logger, string channel, string how, string error);

    [LoggerMessage(EventId = 602, Level = LogLevel.Warning, Message = "{Count} messages for {Channel} go to its fallback {Fallback}")]
    private static partial void LogFailedOver(ILogger logger, int count, string channel, string fallback);

    [LoggerMessage(EventId = 603, Level = LogLevel.Error, Message = "{Count} messages for {Channel} could not be delivered and were dropped: {Reason}")]
    private static partial void LogExpired(ILogger logger, int count, string channel, string reason);

    [LoggerMessage(EventId = 604, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} not alerted for: '{Parent}', which it depends on, is down")]
    private static partial void LogSuppressed(ILogger logger, string rule, long incident, string parent);

    [LoggerMessage(EventId = 608, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} not alerted for during maintenance window '{Window}'")]
    private static partial void LogMuted(ILogger logger, string rule, long incident, string window);

    [LoggerMessage(EventId = 605, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} resolved ({Messages} resolved messages)")]
    private static partial void LogResolved(ILogger logger, string rule, long incident, int messages);

    [LoggerMessage(EventId = 606, Level = LogLevel.Information, Message = "Rule {Rule}: incident #{Incident} acknowledged: escalations and reminders stop")]
    private static partial void LogAcked(ILogger logger, string rule, long incident);

    [LoggerMessage(EventId = 609, Level = LogLevel.Warning, Message = "Message #{Id} ({Kind} of rule {Rule}) was being sent on {Channel} when Sentinel stopped, and may have arrived: {What}")]
    private static partial void LogUnconfirmed(ILogger logger, long id, string channel, string kind, string rule, string what);

    [LoggerMessage(EventId = 610, Level = LogLevel.Error, Message = "Stopping with {Messages} messages and {Incidents} incidents that could not be written (the state cannot be written): the next Sentinel will not know of them")]
    private static partial void LogUnwrittenLost(ILogger logger, int messages, int incidents);

    [LoggerMessage(EventId = 611, Level = LogLevel.Warning, Message = "Rule {Rule}: stopped between writing its state and its incident ({What})")]
    private static partial void LogReconciled(ILogger logger, string rule, string what);

    [LoggerMessage(EventId = 607, Level = LogLevel.Error, Message = "The notification dispatcher failed; it retries in 5s")]
    private static partial void LogDispatchFailed(ILogger logger, Exception ex);
}
