namespace Sentinel.Engine.Notifications;

/// <summary>
/// What the notification center holds: the open incidents, the outbox messages not yet done with, the crashes waiting
/// for their restart, and the numbers given so far. <see cref="IncidentPolicy"/> reads it and decides; only
/// <see cref="Apply"/> (and the dispatcher, for what a channel did) changes it.
/// </summary>
internal sealed class IncidentBook
{
    public Dictionary<string, Incident> Open { get; } = new(StringComparer.Ordinal);
    public List<OutboxMessage> Pending { get; } = [];
    /// <summary>When each rule's service last crashed, while its restart is awaited (to be told in the crash's message).</summary>
    public Dictionary<string, DateTimeOffset> Crashes { get; } = new(StringComparer.Ordinal);
    /// <summary>How many messages ended each way (sent, expired, failed over, cancelled), as status shows.</summary>
    public Dictionary<OutboxStatus, long> Counts { get; set; } = [];
    public long LastIncident { get; set; }
    public long LastMessage { get; set; }

    /// <summary>
    /// In a cluster: the first of a block of <see cref="Model.ClusterIds.IdBlock"/> numbers no other node is given
    /// (taken when the last block is used up). Null: one engine numbers from the highest number written.
    /// </summary>
    public Func<long>? ReserveIds { get; set; }
    private long _blockNext, _blockEnd;

    public long NextMessageId()
    {
        var id = Peek(LastMessage);
        Take(id);
        return LastMessage = id;
    }

    /// <summary>The number the next incident opened gets (taken when the decision that opens it is applied: deciding changes nothing).</summary>
    public long PeekIncidentId() => Peek(LastIncident);

    private long Peek(long last)
    {
        if (ReserveIds is not { } reserve) return last + 1;
        if (_blockNext >= _blockEnd)
        {
            _blockNext = reserve();
            _blockEnd = _blockNext + Model.ClusterIds.IdBlock;
        }
        return _blockNext;
    }

    private void Take(long id)
    {
        if (ReserveIds is not null && id == _blockNext) _blockNext++;
    }

    /// <summary>
    /// Makes the decision's changes to the incidents and the outbox; returns what is to be committed with the state of
    /// <see cref="IncidentDecision.StateOf"/>, or null when nothing is to be written.
    /// </summary>
    public (List<Incident> Incidents, List<OutboxMessage> Messages)? Apply(IncidentDecision decision)
    {
        if (decision.Crash is var (rule, at))
        {
            if (at is { } when) Crashes[rule] = when;
            else Crashes.Remove(rule);
        }
        if (!decision.Commits) return null;
        var incidents = new List<Incident>();
        if (decision.Opened is { } opened)
        {
            Take(opened.Id);
            LastIncident = Math.Max(LastIncident, opened.Id);
            Open[opened.Rule] = opened;
            incidents.Add(opened);
        }
        foreach (var change in decision.Changes)
        {
            var i = change.Incident;
            if (change.AckedAt is { } acked) i.AckedAt = acked;
            if (change.Unsuppressed) i.SuppressedBy = null;
            if (change.Unmuted) i.MutedBy = null;
            if (change.NotifiedAt is { } notified) i.LastNotifiedAt = notified;
            if (change.ClosedAt is { } closed)
            {
                i.ClosedAt = closed;
                Open.Remove(i.Rule);
            }
            if (!incidents.Contains(i)) incidents.Add(i);
        }
        foreach (var m in decision.Cancelled) m.Status = OutboxStatus.Cancelled;
        foreach (var (m, item) in decision.Amended) m.Item = item;
        Number(decision.Messages);
        return (incidents, [.. decision.Cancelled, .. decision.Amended.Select(a => a.Message), .. decision.Messages]);
    }

    /// <summary>New messages get their numbers in the order they were written.</summary>
    public void Number(IEnumerable<OutboxMessage> messages)
    {
        foreach (var m in messages)
            if (m.Id == 0) m.Id = NextMessageId();
    }

    /// <summary>Committed messages: a pending one is (still) in the outbox; one that is done with leaves it, and is counted.</summary>
    public void Settle(IEnumerable<OutboxMessage> messages)
    {
        foreach (var m in messages)
        {
            if (m.Status == OutboxStatus.Pending) { if (!Pending.Contains(m)) Pending.Add(m); }
            else
            {
                Pending.Remove(m);
                Counts[m.Status] = Counts.GetValueOrDefault(m.Status) + 1;
            }
        }
    }
}
