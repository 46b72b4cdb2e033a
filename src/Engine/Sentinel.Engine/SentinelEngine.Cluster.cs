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

    private async Task AdoptAsync(IReadOnlyList<string> rules, CancellationToken cancellationToken)
    {
        if (_store is not IClusterStore cluster) return;
        var adopted = await cluster.AdoptAsync(rules, cancellationToken);
        _states.Load(adopted.States);
        if (_notifications is not null) await _notifications.AdoptAsync(rules, adopted, cancellationToken);
    }

    // Before the notifications start (their open incidents include the node rules'): the first check-in, so the
    // configuration is applied with a node rule for every node known.
    private async Task StartClusterAsync(CancellationToken cancellationToken)
    {
        if (_store is not IClusterStore store || Config.Engine.Cluster is not { } cluster || Membership is not { } membership) return;
        _monitor = new ClusterMonitor(store, cluster, membership,
            () => new NodeCheckIn(Version, StartedAt, cluster.CheckinInterval, ClusterNodeRules.Digest(Config), _scheduler.SharedSlots),
            _time, _loggerFactory.CreateLogger("Sentinel.Cluster")) { Checked = AfterCheckInAsync };
        await _monitor.StartAsync(cancellationToken);
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
        await _scheduler.ReconcileSharedAsync(needed, cancellationToken);
        var nodes = up.Select(m => m.Node).Order(StringComparer.Ordinal).ToList();
        var spreadFor = string.Join(',', nodes) + "|" + string.Join(',', needed.Concat(_scheduler.SharedSlots).Distinct().Order(StringComparer.Ordinal));
        if (nodes.FirstOrDefault() != me || spreadFor == _spreadFor) return;
        var moved = await _scheduler.SpreadSharedAsync(nodes, cancellationToken);
        _spreadFor = spreadFor;
        if (moved > 0) LogSlotsSpread(_logger, moved, nodes.Count);
    }
}
