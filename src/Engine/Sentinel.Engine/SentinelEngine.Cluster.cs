using Sentinel.Abstractions;
using Sentinel.Engine.Model;
using Sentinel.Engine.Runtime;

namespace Sentinel.Engine;

// Cluster mode: a rule this node starts running (its first check here, or its slot come back from another node) is
// taken over from the shared database first: its state, then its incident and messages. The node checks in with the
// others (ClusterMonitor), watches each of them through a node rule, and shows the whole cluster in its status.
internal sealed partial class SentinelEngine
{
    private ClusterMonitor? _monitor;

    /// <summary>The cluster as this node last read it (null on one box).</summary>
    internal ClusterMembership? Membership { get; }

    // Returns the rules not taken over yet: their node, alive, is sending one of their messages (taken over after, the
    // incident would not know that it was told, and its resolution would not be).
    private async Task<IReadOnlySet<string>> AdoptAsync(IReadOnlyList<string> rules, CancellationToken cancellationToken)
    {
        if (_store is not IClusterStore cluster) return NoRules;
        var adopted = await cluster.AdoptAsync(rules, cancellationToken, LiveOthers());
        _states.Load(adopted.States);
        var taken = rules.Where(r => !adopted.Busy.Contains(r) && !adopted.Kept.Contains(r)).ToList();
        if (_notifications is not null && taken.Count > 0) await _notifications.AdoptAsync(taken, adopted, cancellationToken);
        return adopted.Busy;
    }

    private static readonly IReadOnlySet<string> NoRules = new HashSet<string>();

    // The other nodes that check in now.
    private List<string> LiveOthers() => Membership is { } m
        ? [.. m.Members.Where(x => x.Node != Config.Engine.Cluster!.Node && m.StateOf(x) == MemberState.Up).Select(x => x.Node)]
        : [];

    // Before the notifications start (their open incidents include the node rules'): the cluster read, so the
    // configuration is applied with a node rule for every node known. This node checks in once its rules run.
    private async Task StartClusterAsync(CancellationToken cancellationToken)
    {
        if (_store is not IClusterStore store || Config.Engine.Cluster is not { } cluster || Membership is not { } membership) return;
        _monitor = new ClusterMonitor(store, cluster, membership,
            () => new NodeCheckIn(Version, StartedAt, cluster.CheckinInterval, ClusterNodeRules.Digest(Config), _scheduler.SharedSlots)
            {
                // No address before the API listens (nor without one).
                Api = HttpAddress is { } listening ? ClusterMembership.Advertised(cluster.Advertise, listening, Environment.MachineName) : null,
                Host = Environment.MachineName,
            },
            _time, _loggerFactory.CreateLogger("Sentinel.Cluster")) { Checked = AfterCheckInAsync, Heard = Pings.Merge };
        await _monitor.ReadAsync(cancellationToken);
        if (_catalog.TryGet(PluginKind.Probe, ClusterNodeRules.Probe, out var probe))
        {
            _applier.Prepare = config => ClusterNodeRules.With(config, ClusterNodeRules.Nodes(config, membership), probe);
            _applier.PrepareRunning();
            // A node that joins gets its node rule (every node adds the same one).
            membership.MembersChanged += () => _ = Task.Run(() => ReapplyAsync(_stopping.Token));
        }
    }

    private async Task ReapplyAsync(CancellationToken cancellationToken)
    {
        // Applied only when the node rules change (a node not named by any rule joined, or one left).
        try { if (_applier.Prepare is { } prepare && !ReferenceEquals(prepare(_applier.Config), _applier.Config)) await _applier.ApplyAsync(_applier.Config, cancellationToken); }
        catch (ConfigException ex) { LogNodeRulesFailed(_logger, string.Join("; ", ex.Errors)); }
        catch (OperationCanceledException) { }
    }

    // The live nodes and slots the slots were last spread over (by this node).
    private string? _spreadFor;

    // The slots the other live nodes need stay in the cluster's store; the others go. The first live node (by name)
    // spreads the slots over the live nodes whenever they or the slots change (another node doing it at the same
    // time computes the same pins).
    private async Task AfterCheckInAsync(ClusterRead read, CancellationToken cancellationToken)
    {
        var me = Config.Engine.Cluster!.Node;
        var up = read.Members.Where(m => Membership!.StateOf(m) == MemberState.Up).ToList();
        var needed = up.Where(m => m.Node != me).SelectMany(m => m.Slots).ToHashSet(StringComparer.Ordinal);
        _states.StatusChanged();
        if (_notifications is not null && _store is IClusterStore store)
            await _notifications.TakeOrphansAsync(await store.TakeOrphansAsync(LiveOthers(), cancellationToken), cancellationToken);
        await _scheduler.ReconcileSharedAsync(needed, cancellationToken);
        // A slot goes only to a node whose rules need it (one still starting, or on another configuration, would not run them).
        var mine = _scheduler.SharedSlots;
        var needers = up.SelectMany(m => (m.Node == me ? mine : m.Slots).Select(slot => (slot, m.Node))).GroupBy(x => x.slot, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => (IReadOnlyList<string>)[.. g.Select(x => x.Node).Order(StringComparer.Ordinal)], StringComparer.Ordinal);
        var nodes = up.Select(m => m.Node).Order(StringComparer.Ordinal).ToList();
        var spreadFor = string.Join(';', needers.OrderBy(n => n.Key, StringComparer.Ordinal).Select(n => n.Key + "=" + string.Join(',', n.Value)));
        if (nodes.FirstOrDefault() != me || spreadFor == _spreadFor) return;
        var moved = await _scheduler.SpreadSharedAsync(slot => needers.GetValueOrDefault(slot) ?? [], cancellationToken);
        _spreadFor = spreadFor;
        if (moved > 0) LogSlotsSpread(_logger, moved, nodes.Count);
    }
}
