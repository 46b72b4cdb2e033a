using Sentinel.Engine.Model;
using Sentinel.Engine.Runtime;

namespace Sentinel.Engine;

// Cluster mode: every node's status shows the whole cluster. This node's rules as it runs them; a cluster-wide rule
// as the node that checked it last wrote it; another node's rules as that node wrote them, unknown while it is down.
internal sealed partial class SentinelEngine
{
    private (List<RuleStatusView> Rules, ClusterStatusView? Cluster) WithCluster(List<RuleStatusView> local)
    {
        if (Membership is not { } membership || Config.Engine.Cluster is not { } cluster) return (local, null);
        var me = cluster.Node;
        var runtimes = _rules.Set.Runtimes;
        var rules = new List<RuleStatusView>(local.Count);
        foreach (var view in local)
        {
            var shared = runtimes.TryGetValue(view.Name, out var r) && r.Definition is { ClusterWide: true, Node: null };
            if (shared && membership.StateOf(view.Name) is { Node: { } node } other && node != me && other.State.LastCheck?.At > (view.LastCheck?.At ?? DateTimeOffset.MinValue))
                rules.Add(Remote(r!.Definition, other.State, node, membership) with { Uptime = view.Uptime });
            else rules.Add(view with { Node = shared && view.LastCheck is null ? null : me });
        }
        var members = membership.Members;
        foreach (var def in Config.Rules)
        {
            if (!def.RunsOn(cluster)) rules.Add(Remote(def, membership.StateOf(def.Name)?.State, def.Node!, membership));
            else if (def.AllNodesOf is { } all)
                foreach (var m in members.Where(m => m.Node != me))
                    rules.Add(Remote(def with { Name = $"{all}@{m.Node}" }, membership.StateOf($"{all}@{m.Node}")?.State, m.Node, membership));
        }
        rules.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        var digest = ClusterNodeRules.Digest(Config);
        var status = new ClusterStatusView(me,
            members.Select(m => new MemberView(m.Node, membership.StateOf(m), m.Version, m.StartedAt, m.LastSeen, Math.Round(Math.Max(0, membership.Age(m).TotalSeconds), 1),
                rules.Count(x => x.Node == m.Node && x.Status != RuleStatus.Unknown), m.Node == me)).ToList(),
            membership.Problem is { } p ? $"this node cannot reach the cluster's database since {p.Since.ToUniversalTime():HH:mm:ss} UTC: {p.Reason}" : null,
            members.Where(m => m.Node != me && membership.StateOf(m) == MemberState.Up && m.Rules != digest)
                .Select(m => $"node {m.Node} runs other rules than this node (rules {m.Rules}, here {digest}): every node should run the same configuration").ToList());
        return (rules, status);
    }

    // A rule as another node wrote its state (none yet: pending); unknown while that node is down or stopped.
    private RuleStatusView Remote(RuleDefinition def, RuleState? state, string node, ClusterMembership membership)
    {
        var s = state ?? RuleState.New(def.Name, StartedAt);
        var view = new RuleStatusView(def.Name, def.Description, s.Status, s.Since, def.Schedule, def.Probe.Name, s.ConsecutiveFailures, s.ConsecutiveSuccesses,
            s.Checks, s.Failures, s.LastCheck, s.Remediation) { Node = node };
        return def.ClusterWide && def.Node is null ? view : membership.Absence(node) is { } why ? view with { Status = RuleStatus.Unknown, Unknown = why } : view;
    }
}
