namespace Sentinel.Engine.Model;

/// <summary>What a node says of itself at each check-in (in <c>sentinel_nodes</c>).</summary>
/// <param name="Rules">A digest of the rules it runs (names and fingerprints): nodes that differ run different configurations.</param>
/// <param name="Slots">The cluster slots its rules need: a slot no live node needs is removed.</param>
internal sealed record NodeCheckIn(string Version, DateTimeOffset StartedAt, TimeSpan CheckinInterval, string Rules, IReadOnlyList<string> Slots);

/// <summary>A node of the cluster as its last check-in left it; times are the database's.</summary>
internal sealed record ClusterMember(string Node, string Version, DateTimeOffset StartedAt, DateTimeOffset LastSeen, TimeSpan CheckinInterval,
    DateTimeOffset? LeftAt, string Rules, IReadOnlyList<string> Slots)
{
    /// <summary>A node that has not checked in for this long is down (three check-ins missed).</summary>
    public TimeSpan DownAfter => CheckinInterval * 3;
}

/// <summary>A rule's state as the node that runs it last wrote it.</summary>
internal sealed record OwnedState(RuleState State, string? Node, DateTimeOffset UpdatedAt);

/// <summary>One check-in's answer: the database's time, every node, and the rule states written since the last one.</summary>
internal sealed record ClusterRead(DateTimeOffset Now, IReadOnlyList<ClusterMember> Members, IReadOnlyList<OwnedState> States)
{
    /// <summary>The inbound ping records written since the time asked (by any node).</summary>
    public IReadOnlyDictionary<string, PingRecord> Pings { get; init; } = new Dictionary<string, PingRecord>();
}

/// <summary>How a node stands, as this node sees it.</summary>
internal enum MemberState { Up, Down, Stopped }

/// <summary>
/// The cluster as this node last read it (every check-in): its members and the states of the rules other nodes run.
/// Ages are on the database's clock (the time it answered, plus the time passed here since), so nodes whose clocks
/// differ agree on who is down.
/// </summary>
internal sealed class ClusterMembership(TimeProvider time)
{
    private readonly object _lock = new();
    private Dictionary<string, OwnedState> _states = new(StringComparer.Ordinal);
    private volatile Snapshot? _current;

    private sealed record Snapshot(ClusterRead Read, DateTimeOffset ReadAt, IReadOnlyDictionary<string, OwnedState> States);

    /// <summary>When this node began watching the cluster (a node never seen since is down after a grace).</summary>
    public DateTimeOffset Since { get; } = time.GetUtcNow();

    /// <summary>Why the last check-in failed, and since when it has been failing (null: it worked).</summary>
    public (string Reason, DateTimeOffset Since)? Problem { get; private set; }

    /// <summary>Raised when a node joins or leaves the set of nodes this one knows.</summary>
    public event Action? MembersChanged;

    public IReadOnlyList<ClusterMember> Members => _current?.Read.Members ?? [];

    /// <summary>When the view was last read (null: never).</summary>
    public DateTimeOffset? ReadAt => _current?.ReadAt;

    public void Update(ClusterRead read)
    {
        bool changed;
        lock (_lock)
        {
            var states = new Dictionary<string, OwnedState>(_states, StringComparer.Ordinal);
            foreach (var s in read.States)
                if (!states.TryGetValue(s.State.Rule, out var known) || known.UpdatedAt <= s.UpdatedAt) states[s.State.Rule] = s;
            _states = states;
            var before = _current?.Read.Members.Select(m => m.Node).ToHashSet(StringComparer.Ordinal);
            changed = before is null || !before.SetEquals(read.Members.Select(m => m.Node));
            _current = new Snapshot(read, time.GetUtcNow(), states);
            Problem = null;
        }
        if (changed) MembersChanged?.Invoke();
    }

    public void Failed(string reason)
    {
        lock (_lock) Problem = (reason, Problem?.Since ?? time.GetUtcNow());
    }

    /// <summary>The database's time now, as far as this node can tell.</summary>
    public DateTimeOffset? DatabaseNow => _current is { } c ? c.Read.Now + (time.GetUtcNow() - c.ReadAt) : null;

    public ClusterMember? Member(string node) => Members.FirstOrDefault(m => m.Node == node);

    /// <summary>How long since <paramref name="member"/> last checked in.</summary>
    public TimeSpan Age(ClusterMember member) => DatabaseNow is { } now ? now - member.LastSeen : TimeSpan.Zero;

    public MemberState StateOf(ClusterMember member)
        => member.LeftAt is not null ? MemberState.Stopped : Age(member) > member.DownAfter ? MemberState.Down : MemberState.Up;

    /// <summary>Why <paramref name="node"/>'s rules are not being checked (down, left, never seen), or null while it checks in.</summary>
    public string? Absence(string node) => Member(node) is not { } m
        ? _current is null ? null : $"node {node} has not checked in"
        : StateOf(m) switch
        {
            MemberState.Down => $"node {node} is down",
            MemberState.Stopped => $"node {node} is stopped",
            _ => null,
        };

    /// <summary>The state another node last wrote of a rule (null: none known).</summary>
    public OwnedState? StateOf(string rule) => _current?.States.GetValueOrDefault(rule);
}
