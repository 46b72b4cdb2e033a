namespace Sentinel.Engine.Model;

/// <summary>What a node says of itself at each check-in (in <c>sentinel_nodes</c>).</summary>
/// <param name="Rules">A digest of the rules it runs (names and fingerprints): nodes that differ run different configurations.</param>
/// <param name="Slots">The cluster slots its rules need: a slot no live node needs is removed.</param>
internal sealed record NodeCheckIn(string Version, DateTimeOffset StartedAt, TimeSpan CheckinInterval, string Rules, IReadOnlyList<string> Slots)
{
    /// <summary>Where the other nodes reach its API (null: it serves none).</summary>
    public string? Api { get; init; }

    /// <summary>The host it runs on (a loopback <see cref="Api"/> serves only nodes on the same host).</summary>
    public string? Host { get; init; }
}

/// <summary>A node of the cluster as its last check-in left it; times are the database's.</summary>
internal sealed record ClusterMember(string Node, string Version, DateTimeOffset StartedAt, DateTimeOffset LastSeen, TimeSpan CheckinInterval,
    DateTimeOffset? LeftAt, string Rules, IReadOnlyList<string> Slots)
{
    /// <summary>A node that has not checked in for this long is down (three check-ins missed).</summary>
    public TimeSpan DownAfter => CheckinInterval * 3;

    /// <inheritdoc cref="NodeCheckIn.Api"/>
    public string? Api { get; init; }

    /// <inheritdoc cref="NodeCheckIn.Host"/>
    public string? Host { get; init; }
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

    /// <summary>
    /// Where this node (on <paramref name="host"/>) reaches <paramref name="node"/>'s API to send it a command, or why
    /// it cannot: the node is not up, serves no API, or listens on the loopback of another host.
    /// </summary>
    public (Uri? Api, string? Unreachable) ApiOf(string node, string host)
    {
        if (Member(node) is not { } m) return (null, $"node {node} has not checked in");
        if (StateOf(m) is not MemberState.Up and var state) return (null, $"node {node} is {(state == MemberState.Down ? "down" : "stopped")}");
        if (m.Api is null || !Uri.TryCreate(m.Api, UriKind.Absolute, out var api))
            return (null, $"node {node} gave no address for its API (engine.http.enabled: false there, or a Sentinel older than this one)");
        if (api.IsLoopback && !string.Equals(m.Host, host, StringComparison.OrdinalIgnoreCase))
            return (null, $"node {node} listens on its loopback only ({m.Api}, on host {m.Host}): set engine.cluster.advertise there to an address this host reaches (docs/cluster.md)");
        return (api, null);
    }

    /// <summary>
    /// The API address a node checks in with: engine.cluster.advertise, else the one it listens on, with the host
    /// name for a wildcard (0.0.0.0, ::); null without an API.
    /// </summary>
    public static string? Advertised(Uri? advertise, string? listening, string host)
    {
        if (advertise is not null) return advertise.GetLeftPart(UriPartial.Authority);
        if (listening is null || !Uri.TryCreate(listening, UriKind.Absolute, out var url)) return null;
        var wildcard = url.Host is "0.0.0.0" or "[::]" or "::" or "*" or "+";
        return wildcard ? new UriBuilder(url) { Host = host }.Uri.GetLeftPart(UriPartial.Authority) : url.GetLeftPart(UriPartial.Authority);
    }

    /// <summary>The state another node last wrote of a rule (null: none known).</summary>
    public OwnedState? StateOf(string rule) => _current?.States.GetValueOrDefault(rule);
}
