using Microsoft.Extensions.Logging;
using Sentinel.Abstractions;
using Sentinel.Engine.Remediation;

namespace Sentinel.Engine.Notifications;

// Incidents: the policy's decisions about each event applied, and committed with their messages.
internal sealed partial class NotificationCenter
{
    private IncidentWorld World => new(_host.Config, _host.GetState);

    public async ValueTask OnEventAsync(EngineEvent e, CancellationToken cancellationToken)
    {
        // A configuration that removed rules closes each one's incident in turn (closing one may release another).
        if (e is ConfigApplied { Removed: var removed } applied)
            foreach (var rule in removed) await DecideAsync((book, world) => IncidentPolicy.CloseRemoved(book, world, rule, applied.When), cancellationToken);
        else await DecideAsync((book, world) => IncidentPolicy.On(book, world, e), cancellationToken);
    }

    /// <summary>Acknowledges an open incident: its escalations and reminders stop. False when there is no such open incident.</summary>
    public async Task<bool> AckAsync(long id, CancellationToken ct)
    {
        var decision = await DecideAsync((book, _) => IncidentPolicy.Ack(book, id, _time.GetUtcNow()), ct, wake: false);
        return decision.Commits;
    }

    // The policy decides on what the center holds now, under the gate; the decision is applied and committed before
    // the next one is made.
    private async Task<IncidentDecision> DecideAsync(Func<IncidentBook, IncidentWorld, IncidentDecision> decide, CancellationToken ct, bool wake = true)
    {
        IncidentDecision decision;
        await _gate.WaitAsync(ct);
        try
        {
            decision = decide(_book, World);
            await ApplyAsync(decision, ct);
        }
        finally { _gate.Release(); }
        if (wake && decision.Messages.Count > 0) Wake();
        return decision;
    }

    // Called under the gate: the decision's changes made to the live incidents and outbox, then committed in one transaction.
    private async Task ApplyAsync(IncidentDecision decision, CancellationToken ct)
    {
        if (decision.Opened is { SuppressedBy: { } parent } suppressed) LogSuppressed(_logger, suppressed.Rule, suppressed.Id, parent);
        if (decision.Opened is { MutedBy: { } window } muted) LogMuted(_logger, muted.Rule, muted.Id, window);
        if (_book.Apply(decision) is not var (incidents, messages)) return;
        foreach (var c in decision.Changes)
        {
            if (c.AckedAt is not null) LogAcked(_logger, c.Incident.Rule, c.Incident.Id);
            if (c.ClosedAt is not null) LogResolved(_logger, c.Incident.Rule, c.Incident.Id, decision.Messages.Count(m => m.IncidentId == c.Incident.Id && m.Item.Kind == NotificationKind.Resolved));
        }
        await CommitAsync(decision.StateOf, incidents, messages, ct);
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
            var taken = allIncidents.Count + allMessages.Count > 0 || rule is not null
                ? await _store.CommitAsync(rule is null ? null : _host.GetState(rule), allIncidents, allMessages, ct)
                : null;
            _unwrittenIncidents.Clear();
            _unwrittenMessages.Clear();
            if (taken is { Count: > 0 }) Forget(taken);
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
        _book.Settle(messages);
    }

    // Cluster mode: rules another node took over while this one decided about them. What this node holds of them
    // (incidents, messages) is that node's to tell: dropped here, never sent.
    private void Forget(IReadOnlySet<string> rules)
    {
        foreach (var rule in rules)
        {
            var opened = _open.Remove(rule, out var incident);
            var dropped = _pending.RemoveAll(m => m.Rule == rule);
            LogTakenWhileDeciding(_logger, rule, opened ? incident!.Id : null, dropped);
        }
    }

    [LoggerMessage(EventId = 614, Level = LogLevel.Warning, Message = "Rule {Rule} was taken over by another node as this one decided about it: incident #{Incident} and {Messages} messages are that node's to tell, not sent from here")]
    private static partial void LogTakenWhileDeciding(ILogger logger, string rule, long? incident, int messages);
}
