using Sentinel.Engine.Model;
using Sentinel.Engine.Runtime;

namespace Sentinel.Engine;

// Cluster mode: every node's status shows the whole cluster. This node's rules as it runs them; a cluster-wide rule
// as the node that checked it last wrote it; another node's rules as that node wrote them, unknown while it is down.
internal sealed partial class SentinelEngine
{
    private (List<RuleStatusView> Rules, ClusterStatusView? Cluster) WithCluster(List<RuleStatusView> local, bool uptime)
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
            // Their uptime counts the checks their node wrote to the shared history.
            if (!def.RunsOn(cluster)) rules.Add(Remote(def, membership.StateOf(def.Name)?.State, def.Node!, membership) with { Uptime = uptime ? History?.Uptime(def.Name) : null });
            else if (def.AllNodesOf is { } all)
                foreach (var m in members.Where(m => m.Node != me))
                    rules.Add(Remote(def with { Name = $"{all}@{m.Node}" }, membership.StateOf($"{all}@{m.Node}")?.State, m.Node, membership)
                        with { Uptime = uptime ? History?.Uptime($"{all}@{m.Node}") : null });
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

    /// <summary>
    /// Cluster mode: the other node that runs <paramref name="rule"/> now (a rule it is pinned to, its instance of a
    /// node: all rule, or a cluster-wide rule it checked last and is up), or null when this node does (or on one box).
    /// An operator's command (run, pause, restart...) must go there: acted on here too, the rule would be acted on twice.
    /// </summary>
    public (Uri? Api, string? Unreachable) ApiOf(string node) => Membership?.ApiOf(node, Environment.MachineName) ?? (null, "this Sentinel is not in a cluster");

    public string? RunElsewhere(string rule)
    {
        if (Membership is not { } membership || Config.Engine.Cluster is not { } cluster) return null;
        if (Config.Rules.FirstOrDefault(r => r.Name == rule) is not { } def)
            return rule.IndexOf('@') is > 0 and var at && Config.Rules.Any(r => r.AllNodesOf == rule[..at]) && rule[(at + 1)..] is var node && node != cluster.Node ? node : null;
        if (!def.RunsOn(cluster)) return def.Node;
        return def is { ClusterWide: true, Node: null } && membership.StateOf(rule) is { Node: { } owner } other && owner != cluster.Node
            && membership.Member(owner) is { } m && membership.StateOf(m) == MemberState.Up
            && other.State.LastCheck?.At > (_states.Get(rule)?.LastCheck?.At ?? DateTimeOffset.MinValue)
            ? owner : null;
    }
}
