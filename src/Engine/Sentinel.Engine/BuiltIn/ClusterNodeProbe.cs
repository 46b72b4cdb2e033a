using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Engine.BuiltIn;

internal sealed class ClusterNodeProbeOptions
{
    [Required, Description("The node of the cluster (its engine.cluster.node) that must keep checking in.")]
    public string? Node { get; set; }
}

/// <summary>
/// A node of the cluster checks in (cluster mode makes one such rule, <c>node:NAME</c>, for every node it knows): down
/// when the node has missed three check-ins; healthy again when it checks in, or when it stopped on purpose (it said
/// so as it stopped). Checked by whichever node is alive, on the database's clock.
/// </summary>
[ClusterWide]
internal sealed class ClusterNodeProbe(ClusterNodeProbeOptions options, ClusterMembership membership, TimeProvider time) : IProbe
{
    public const string Type = "cluster-node";

    /// <summary>How long a node named in the configuration may take to check in for the first time.</summary>
    public static TimeSpan FirstCheckInGrace { get; } = TimeSpan.FromMinutes(1);

    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var node = options.Node!;
        if (membership.ReadAt is not { } readAt)
            return Result(ProbeResult.Degraded($"this node has not read the cluster's members yet"));
        if (membership.Problem is { } problem && time.GetUtcNow() - readAt > TimeSpan.FromSeconds(30))
            return Result(ProbeResult.Degraded($"cannot tell: this node has not reached the cluster's database for {Duration.Format(time.GetUtcNow() - readAt)} ({problem.Reason})"));
        if (membership.Member(node) is not { } member)
            return Result(time.GetUtcNow() - membership.Since < FirstCheckInGrace
                ? ProbeResult.Degraded($"node {node} has not checked in yet")
                : ProbeResult.Unhealthy($"node {node} has never checked in (is Sentinel running there, with engine.cluster.node: {node}?)"));
        var age = membership.Age(member);
        return Result(membership.StateOf(member) switch
        {
            MemberState.Stopped => ProbeResult.Healthy($"node {node} is stopped (it left the cluster at {member.LeftAt!.Value.ToUniversalTime():yyyy-MM-dd HH:mm:ss} UTC)"),
            MemberState.Down => ProbeResult.Unhealthy($"node {node} stopped checking in {Duration.FormatCoarse(age)} ago (last at {member.LastSeen.ToUniversalTime():HH:mm:ss} UTC); its rules are not checked"),
            _ => ProbeResult.Healthy($"node {node} checked in {Duration.Format(TimeSpan.FromMilliseconds(Math.Max(0, Math.Round(age.TotalMilliseconds))))} ago"),
        });
    }

    private static ValueTask<ProbeResult> Result(ProbeResult result) => ValueTask.FromResult(result);
}
