using System.Text.Json;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.Retry;
using Sentinel.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Notifications;

// Incidents: opened, escalated, amended and closed from the engine's events, and committed with their messages.
internal sealed partial class NotificationCenter
{
    public async ValueTask OnEventAsync(EngineEvent e, CancellationToken cancellationToken)
    {
        switch (e)
        {
            case RuleTransition { To: RuleStatus.Down } t:
                if (Rule(t.Rule) is { } def && def.AlertOn.Contains(AlertOn.Down)) await OpenAsync(def, NotificationKind.Down, t.Check?.Description, t.When, cancellationToken, SeenLines(t.Check));
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
                if (Rule(g.Rule) is { } gaveUp && gaveUp.AlertOn.Contains(AlertOn.GaveUp)) await OpenAsync(gaveUp, NotificationKind.GaveUp, g.Message, g.When, cancellationToken, g.Output);
                break;
            case RemediationEvent { Kind: RemediationEventKind.Remediating, RateExceeded: { } count } r:
                if (Rule(r.Rule) is { } restarted && restarted.AlertOn.Contains(AlertOn.RestartRate))
                    await EventAsync(restarted, NotificationKind.RestartRate, $"remediated {count} times within {Duration.Format(restarted.RestartRate.Within)} (limit {restarted.RestartRate.Max}): {r.Message}", r.When, [], cancellationToken);
                break;
            case RemediationEvent { Kind: RemediationEventKind.RemediationFailed } f when Rule(f.Rule) is { } failed:
                if (failed.AlertOn.Contains(AlertOn.Exited)) await AmendCrashAsync(failed, f, cancellationToken);
                if (failed.AlertOn.Contains(AlertOn.RemediationFailed)) await EventAsync(failed, NotificationKind.RemediationFailed, f.Message, f.When, f.Output, cancellationToken);
                break;
            case RemediationEvent { Kind: RemediationEventKind.Exited } x:
                if (Rule(x.Rule) is { } crashed && crashed.AlertOn.Contains(AlertOn.Exited))
                {
                    _crashes[x.Rule] = x.When;
                    await EventAsync(crashed, NotificationKind.Exited, x.Message.Replace("the service ", crashed.Name + " ", StringComparison.Ordinal), x.When, x.Output, cancellationToken);
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
            var waiting = _pending.Where(m => m.Rule == def.Name && m.Status == OutboxStatus.Pending && m.Item.Kind == NotificationKind.Exited && m.CreatedAt == crashedAt).ToList();
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
                if (cause == NotificationKind.GaveUp && existing.SuppressedBy is null && existing.MutedBy is null)
                {
                    var extra = Immediate(def).Select(c => NewMessage(existing, def.Name, c, NotificationKind.GaveUp, description, at, output)).ToList();
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
            var m = NewMessage(incident, def.Name, n.Channel, n.After > TimeSpan.Zero ? NotificationKind.Escalation : kind, description, at, output);
            if (n.After > TimeSpan.Zero) { m.DueAt = incident.OpenedAt + n.After; m.Groupable = false; }
            else if (incident.OpenedAt + def.MinDown > m.DueAt) m.DueAt = incident.OpenedAt + def.MinDown; // flap damping: told only if still down then
            return m;
        }).ToList();

    private static IEnumerable<string> Immediate(RuleDefinition def) => def.Notify.Where(n => n.After == TimeSpan.Zero).Select(n => n.Channel).Distinct();

    private OutboxMessage NewMessage(Incident? incident, string rule, string channel, string kind, string? description, DateTimeOffset at, IReadOnlyList<string>? output = null)
    {
        var status = rule == EngineRule ? (kind == NotificationKind.Resolved ? "healthy" : "down") : _host.GetState(rule)?.Status.ToString().ToLowerInvariant() ?? "unknown";
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
                foreach (var untold in changed.Where(m => m.Item.Kind is NotificationKind.Down or NotificationKind.GaveUp && !incident.Notified.Contains(m.Channel)).GroupBy(m => m.Channel))
                {
                    var m = NewMessage(incident, rule, untold.Key, NotificationKind.BrieflyDown, $"down for {Duration.Format(lasted)}, resolved: {incident.Description}", at,
                        untold.Select(d => d.Item.Output).FirstOrDefault(o => o is { Count: > 0 }));
                    m.DueAt = untold.Min(d => d.DueAt); // when the down message would have gone: its group-wait already ran
                    messages.Add(m);
                }
            if (def?.SendResolved ?? true)
                foreach (var channel in incident.Notified.Distinct())
                {
                    var m = NewMessage(incident, rule, channel, NotificationKind.Resolved, description, at);
                    messages.Add(m);
                }
            var incidents = new List<Incident> { incident };
            ReleaseChildren(rule, at, incidents, messages);
            LogResolved(_logger, rule, incident.Id, messages.Count(m => m.Item.Kind == NotificationKind.Resolved));
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
                Item = new NotificationItem(rule, NotificationKind.Resolved, "removed", incident.OpenedAt, "the rule was removed from the configuration", incident.Id),
            }).ToList();
            var incidents = new List<Incident> { incident };
            ReleaseChildren(rule, at, incidents, messages);
            LogResolved(_logger, rule, incident.Id, messages.Count(m => m.Item.Kind == NotificationKind.Resolved));
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
            var cancelled = CancelPending(m => m.IncidentId == id && m.Item.Kind is NotificationKind.Escalation or NotificationKind.Reminder);
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
}
