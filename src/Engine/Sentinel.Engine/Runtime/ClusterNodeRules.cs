using System.Security.Cryptography;
using System.Text;
using Sentinel.Engine.BuiltIn;

namespace Sentinel.Engine.Runtime;

/// <summary>
/// In cluster mode every node the cluster knows is a rule of its own, <c>node:NAME</c> (probe <c>cluster-node</c>):
/// down when the node stops checking in, told on the channels of Sentinel's own trouble (notifications.engine). The
/// nodes are those the rules name (node: NAME), those that check in (until they stop on purpose) and this one; every
/// node makes the same rules, so they are cluster-wide rules like any other, checked once by whichever node is alive.
/// </summary>
internal static class ClusterNodeRules
{
    public const string Prefix = "node:";

    /// <summary>The probe type of the node rules.</summary>
    public const string Probe = ClusterNodeProbe.Type;

    public static bool IsNodeRule(string rule) => rule.StartsWith(Prefix, StringComparison.Ordinal);

    /// <summary>The nodes to watch: named by a rule, checking in (not stopped on purpose), and this one.</summary>
    public static IReadOnlyList<string> Nodes(SentinelConfig config, ClusterMembership membership)
        => config.Rules.Where(r => r.AllNodesOf is null && r.Node is not null).Select(r => r.Node!)
            .Concat(membership.Members.Where(m => m.LeftAt is null).Select(m => m.Node))
            .Append(config.Engine.Cluster!.Node)
            .Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary><paramref name="config"/> with one node rule for each of <paramref name="nodes"/> (and no other); itself when it has them already.</summary>
    public static SentinelConfig With(SentinelConfig config, IReadOnlyList<string> nodes, PluginTypeRegistration probe)
    {
        var cluster = config.Engine.Cluster!;
        var made = nodes.Select(node => new RuleDefinition
        {
            Name = Prefix + node,
            Description = $"Sentinel node {node} checks in with the cluster",
            Every = cluster.CheckinInterval,
            Timeout = TimeSpan.FromSeconds(5),
            Probe = probe,
            ProbeOptions = new ClusterNodeProbeOptions { Node = node },
            FailureThreshold = 1,
            SuccessThreshold = 1,
            Notify = config.EngineChannels.Select(c => new NotifyTarget(c, TimeSpan.Zero)).ToList(),
            ClusterWide = true,
            Location = new SourceLocation(config.Engine.ConfigFile, 0, 0),
            Fingerprint = $"{Probe}@{probe.Generation}|{node}|{cluster.CheckinInterval.Ticks}|{string.Join(',', config.EngineChannels)}",
        }).ToList();
        var current = config.Rules.Where(r => IsNodeRule(r.Name)).ToList();
        if (current.Select(r => r.Fingerprint).SequenceEqual(made.Select(r => r.Fingerprint))) return config;
        return config with { Rules = [.. config.Rules.Where(r => !IsNodeRule(r.Name)), .. made] };
    }

    /// <summary>
    /// A digest of the rules a node runs, the same on nodes that run the same configuration (the node rules, which
    /// follow the members, and the node a <c>node: all</c> rule runs on are left out).
    /// </summary>
    public static string Digest(SentinelConfig config)
    {
        var text = string.Join('\n', config.Rules.Where(r => !IsNodeRule(r.Name))
            .Select(r => (r.AllNodesOf ?? r.Name) + "=" + r.Fingerprint).Order(StringComparer.Ordinal));
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..12].ToLowerInvariant();
    }
}
