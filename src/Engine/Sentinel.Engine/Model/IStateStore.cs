using Sentinel.Engine.Rules;

namespace Sentinel.Engine.Model;

/// <summary>
/// Durable rule state. The embedded implementation is an SQLite file; a PostgreSQL store implements the same
/// contract for cluster mode.
/// </summary>
internal interface IStateStore : IAsyncDisposable
{
    Task<IReadOnlyDictionary<string, RuleState>> LoadAsync(CancellationToken cancellationToken);

    /// <summary>Writes the given states and deletes the removed rules, atomically.</summary>
    Task SaveAsync(IReadOnlyCollection<RuleState> states, IReadOnlyCollection<string> removed, CancellationToken cancellationToken);
}

/// <summary>
/// Where the engine keeps what must outlive it: rule state, incidents, the outbox and the inbound pings, in one database so that a state
/// change and the messages it causes are written together. The embedded SQLite file, or the PostgreSQL database the
/// nodes of a cluster share; the same test suite runs over both.
/// </summary>
internal interface IEngineStore : IStateStore, INotificationStore, IPingStore;

/// <summary>
/// What the store the nodes of a cluster share adds: each rule's records (state, open incident, pending messages) are
/// owned by one node, the one that runs the rule now; a node takes them over before it first runs the rule, and a
/// write of a node that no longer owns them changes nothing (a node taken for dead that wakes up cannot undo what
/// its successor did). A message is sent by the node that owns it, claimed row by row.
/// </summary>
internal interface IClusterStore
{
    /// <summary>
    /// Makes this node the owner of the rules' records and returns them, as they are now. A rule one of whose
    /// messages a node of <paramref name="live"/> is sending this moment is not taken (<see cref="AdoptedRules.Busy"/>):
    /// that node finishes the send and records it on the incident; sent again from here it would arrive twice, and
    /// the incident would not know it was told. <see cref="TakeOrphansAsync"/> takes a message whose node died.
    /// </summary>
    Task<AdoptedRules> AdoptAsync(IReadOnlyCollection<string> rules, CancellationToken cancellationToken, IReadOnlyCollection<string>? live = null);

    /// <summary>
    /// The pending messages of the rules this node owns that another node still holds, and is not sending (it is not
    /// in <paramref name="live"/>, or its send ended): made this node's and returned.
    /// </summary>
    Task<List<OutboxMessage>> TakeOrphansAsync(IReadOnlyCollection<string> live, CancellationToken cancellationToken);

    /// <summary>
    /// Claims the messages for sending (written with their <see cref="OutboxMessage.SendingSince"/>): those this node
    /// still owns, with their incident. <see cref="ClaimResult.Lost"/> are owned by another node now; the rest are
    /// being written by another node this moment, and are tried again later.
    /// </summary>
    Task<ClaimResult> ClaimAsync(IReadOnlyCollection<OutboxMessage> messages, CancellationToken cancellationToken);

    /// <summary>
    /// The first of <see cref="ClusterIds.IdBlock"/> numbers for incidents and messages no other node is given; also
    /// while the database cannot be reached (an outage is numbered and told then too).
    /// </summary>
    long ReserveIds();

    /// <summary>
    /// Says this node is alive (and what it runs), and reads the cluster: every node, and the rule states written
    /// since <paramref name="statesSince"/> (all, when null) by other nodes. Not held up by this node's writes.
    /// With <paramref name="me"/> null it only reads (a node still starting, not yet running its rules); without
    /// <paramref name="states"/>, only the nodes. The ping records written since <paramref name="pingsSince"/> (all,
    /// when null) are read each time: a ping another node heard is judged here within a check-in.
    /// </summary>
    Task<ClusterRead> CheckInAsync(NodeCheckIn? me, DateTimeOffset? statesSince, CancellationToken cancellationToken, bool states = true,
        DateTimeOffset? pingsSince = null);

    /// <summary>Says this node stopped on purpose: it is shown as stopped, not down, and not alerted on.</summary>
    Task LeaveAsync(CancellationToken cancellationToken);
}

internal static class ClusterIds
{
    /// <summary>How many incident and message numbers a node takes at once.</summary>
    public const int IdBlock = 100;
}

/// <param name="Busy">Rules not taken over: a live node is sending one of their messages (taken at a later try).</param>
internal sealed record AdoptedRules(IReadOnlyDictionary<string, RuleState> States, List<Incident> Open, List<OutboxMessage> Pending)
{
    public IReadOnlySet<string> Busy { get; init; } = new HashSet<string>();

    /// <summary>Rules this node owned already: nothing was taken of them, and what the node holds of them stands.</summary>
    public IReadOnlySet<string> Kept { get; init; } = new HashSet<string>();
}

internal sealed record ClaimResult(IReadOnlySet<long> Claimed, IReadOnlySet<long> Lost);
