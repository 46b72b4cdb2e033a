using System.Text.Json.Serialization;
using Sentinel.Abstractions;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Model;

/// <summary>A rule's outage, from down (or gave-up) to healthy again; what was sent about it is tracked for the resolved message.</summary>
internal sealed class Incident
{
    public long Id { get; set; }
    public string Rule { get; set; } = "";
    /// <summary><c>down</c> or <c>gave-up</c>.</summary>
    public string Cause { get; set; } = "down";
    public DateTimeOffset OpenedAt { get; set; }
    public DateTimeOffset? ClosedAt { get; set; }
    public DateTimeOffset? AckedAt { get; set; }
    /// <summary>Not alerted for: a rule it depends on is down.</summary>
    public string? SuppressedBy { get; set; }
    /// <summary>Opened during this maintenance window: alerted for when it ends, if still down.</summary>
    public string? MutedBy { get; set; }
    public string? Description { get; set; }
    /// <summary>Channels that accepted a message about it: each gets the resolved message.</summary>
    public List<string> Notified { get; set; } = [];
    public DateTimeOffset? LastNotifiedAt { get; set; }
}

[JsonConverter(typeof(JsonStringEnumConverter<OutboxStatus>))]
internal enum OutboxStatus { Pending, Sent, Cancelled, FailedOver, Expired }

/// <summary>One message for one channel, durable until the channel accepted it (or it expired, or went to the fallback).</summary>
internal sealed class OutboxMessage
{
    public long Id { get; set; }
    public long? IncidentId { get; set; }
    public string Rule { get; set; } = "";
    public string Channel { get; set; } = "";
    public required NotificationItem Item { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset DueAt { get; set; }
    /// <summary>May go out with others for the same channel before it is due (group-wait); escalations wait for their time.</summary>
    public bool Groupable { get; set; } = true;
    public int Attempts { get; set; }
    public DateTimeOffset? FirstAttemptAt { get; set; }
    public OutboxStatus Status { get; set; } = OutboxStatus.Pending;
    public string? LastError { get; set; }
    public DateTimeOffset? SentAt { get; set; }
    /// <summary>
    /// Handed to its channel at this time and not yet answered. Such a message is never cancelled (it may already
    /// have arrived); found so after a restart (killed mid-send), it is sent again and counts as told.
    /// </summary>
    public DateTimeOffset? SendingSince { get; set; }
    public string? FailedOverFrom { get; set; }
}

internal interface INotificationStore
{
    /// <summary>
    /// Writes a rule's state with the incidents and messages it causes, in one transaction. Returns the rules another
    /// node of a cluster runs now (it took them over): what was given of them is not written (always none on one box).
    /// </summary>
    Task<IReadOnlySet<string>> CommitAsync(RuleState? state, IReadOnlyCollection<Incident> incidents, IReadOnlyCollection<OutboxMessage> messages, CancellationToken cancellationToken);
    Task<NotificationSnapshot> LoadNotificationsAsync(CancellationToken cancellationToken);
    Task<List<Incident>> RecentIncidentsAsync(int limit, CancellationToken cancellationToken);
    /// <summary>The messages written about the given incidents, oldest first.</summary>
    Task<List<OutboxMessage>> MessagesForAsync(IReadOnlyCollection<long> incidents, CancellationToken cancellationToken);
}

internal sealed record NotificationSnapshot(List<Incident> Open, List<OutboxMessage> Pending, Dictionary<OutboxStatus, long> Counts, long MaxIncidentId, long MaxMessageId);

/// <summary>What status shows of notifications.</summary>
internal sealed record NotificationStatus(long Pending, long Sent, long FailedOver, long Expired, IReadOnlyList<IncidentView> OpenIncidents);

internal sealed record IncidentView(long Id, string Rule, string Cause, DateTimeOffset OpenedAt, DateTimeOffset? AckedAt, string? SuppressedBy,
    IReadOnlyList<string> Notified, string? Description, string? MutedBy = null);
