using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.Notifications;

// In a cluster: rules taken over from another node, and messages claimed before each send.
internal sealed partial class NotificationCenter
{
    /// <summary>
    /// This node runs <paramref name="rules"/> now (it took them over, or first runs them): what the database holds of
    /// their incidents and pending messages replaces what this node held, a message the previous owner was sending when
    /// it died is sent again (at most it arrives twice), and each rule's state and incident are put together. The rules'
    /// states are already loaded (the engine does it first).
    /// </summary>
    public async Task AdoptAsync(IReadOnlyCollection<string> rules, Model.AdoptedRules adopted, CancellationToken ct)
    {
        var names = rules.ToHashSet(StringComparer.Ordinal);
        await _gate.WaitAsync(ct);
        try
        {
            // What this node holds and has not written yet, or is sending now, stays (it is this node's newest).
            var openIds = adopted.Open.Select(i => i.Id).ToHashSet();
            foreach (var i in _open.Values.Where(i => names.Contains(i.Rule) && !openIds.Contains(i.Id) && !_unwrittenIncidents.Contains(i)).ToList())
                _open.Remove(i.Rule);
            var pendingIds = adopted.Pending.Select(m => m.Id).ToHashSet();
            _pending.RemoveAll(m => names.Contains(m.Rule) && !pendingIds.Contains(m.Id) && m.SendingSince is null && !_unwrittenMessages.Contains(m));
            foreach (var i in adopted.Open.Where(i => !_open.Values.Any(o => o.Id == i.Id))) _open[i.Rule] = i;
            var taken = adopted.Pending.Where(m => !_pending.Any(p => p.Id == m.Id)).ToList();
            _pending.AddRange(taken);
            if (taken.Count + adopted.Open.Count > 0) LogAdopted(_logger, rules.Count, adopted.Open.Count, taken.Count);
            await RecoverInFlightAsync(taken, ct);
        }
        finally { _gate.Release(); }
        await ReconcileAsync(_host.Config.Rules.Where(r => names.Contains(r.Name)), ct);
        Wake();
    }

    /// <summary>
    /// Messages of rules this node runs that another node held (it died, or its send ended after this node took the
    /// rule over): this node's to send now; one its dead node was sending is sent again (it may arrive twice).
    /// </summary>
    public async Task TakeOrphansAsync(IReadOnlyCollection<OutboxMessage> orphans, CancellationToken ct)
    {
        if (orphans.Count == 0) return;
        await _gate.WaitAsync(ct);
        try
        {
            var taken = orphans.Where(m => !_pending.Any(p => p.Id == m.Id)).ToList();
            _pending.AddRange(taken);
            LogOrphans(_logger, taken.Count);
            await RecoverInFlightAsync(taken, ct);
        }
        finally { _gate.Release(); }
        Wake();
    }

    // Called under the gate with the batch marked as being sent: the messages this node still owns are claimed (and
    // written so); one another node has taken over leaves this node's outbox, with its incident; one being written by
    // another node this moment waits for the next round. When the database cannot be reached, the batch is sent as
    // on one box (it is this node's own, and no other node can take it over without the database): a message sent
    // twice is better than an outage told by no one.
    private async Task ClaimAsync(List<OutboxMessage> batch, CancellationToken ct)
    {
        Model.ClaimResult claim;
        try { claim = await _cluster!.ClaimAsync(batch, ct); }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            await CommitAsync(null, [], batch, ct);
            return;
        }
        foreach (var m in batch.Where(m => !claim.Claimed.Contains(m.Id)).ToList())
        {
            batch.Remove(m);
            m.SendingSince = null;
            if (!claim.Lost.Contains(m.Id)) continue;
            _pending.Remove(m);
            if (m.IncidentId is { } id && _open.TryGetValue(m.Rule, out var incident) && incident.Id == id) _open.Remove(m.Rule);
            LogLost(_logger, m.Id, m.Rule);
        }
        _writes?.Success(Writer);
        _host.NotificationsChanged();
    }

    [LoggerMessage(EventId = 612, Level = LogLevel.Information, Message = "Took over {Rules} rules from the cluster: {Incidents} open incidents, {Messages} messages to send")]
    private static partial void LogAdopted(ILogger logger, int rules, int incidents, int messages);

    [LoggerMessage(EventId = 615, Level = LogLevel.Information, Message = "Took over {Messages} messages another node held of rules this node runs")]
    private static partial void LogOrphans(ILogger logger, int messages);

    [LoggerMessage(EventId = 613, Level = LogLevel.Warning, Message = "Message #{Id} of rule {Rule} is another node's now (it took the rule over): not sent from here")]
    private static partial void LogLost(ILogger logger, long id, string rule);
}
