using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.BuiltIn;
using Sentinel.Engine.Runtime;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>
/// The cluster's members as a node sees them, on a fake clock: who is down (on the database's clock, whatever this
/// node's says), what the node rules report, and the node rules themselves.
/// </summary>
public sealed class ClusterMembershipTests
{
    private static readonly DateTimeOffset Db = new(2026, 12, 2, 8, 0, 0, TimeSpan.Zero);
    private static readonly TimeSpan Checkin = TimeSpan.FromSeconds(2);
    // This node's clock is an hour off the database's: ages must not depend on it.
    private readonly FakeTimeProvider _time = new(Db.AddHours(1));
    private readonly ClusterMembership _membership;

    public ClusterMembershipTests() => _membership = new ClusterMembership(_time);

    private static ClusterMember Member(string node, DateTimeOffset lastSeen, DateTimeOffset? left = null)
        => new(node, "1.0", Db.AddHours(-1), lastSeen, Checkin, left, "digest", []);

    private async Task<ProbeResult> CheckAsync(string node)
        => await new ClusterNodeProbe(new ClusterNodeProbeOptions { Node = node }, _membership, _time)
            .CheckAsync(new ProbeContext { RuleName = "node:" + node, TimeProvider = _time, Logger = NullLogger.Instance }, default);

    [Fact]
    public async Task ANodeIsDown_AfterThreeMissedCheckIns_OnTheDatabasesClock()
    {
        _membership.Update(new ClusterRead(Db, [Member("a", Db), Member("b", Db - TimeSpan.FromSeconds(1))], []));

        _membership.StateOf(_membership.Member("b")!).Should().Be(MemberState.Up);
        (await CheckAsync("b")).Status.Should().Be(ProbeStatus.Healthy);
        _time.Advance(TimeSpan.FromSeconds(4.9)); // b last seen 5.9 s ago: not yet 3 x 2 s
        _membership.StateOf(_membership.Member("b")!).Should().Be(MemberState.Up);
        _membership.Absence("b").Should().BeNull();
        _time.Advance(TimeSpan.FromSeconds(0.2));

        _membership.StateOf(_membership.Member("b")!).Should().Be(MemberState.Down);
        _membership.Absence("b").Should().Be("node b is down");
        var down = await CheckAsync("b");
        down.Status.Should().Be(ProbeStatus.Unhealthy);
        down.Description.Should().Be("node b stopped checking in 6s ago (last at 07:59:59 UTC); its rules are not checked");

        // Its next check-in read back: up again.
        _membership.Update(new ClusterRead(Db.AddSeconds(6), [Member("a", Db.AddSeconds(6)), Member("b", Db.AddSeconds(6))], []));
        (await CheckAsync("b")).Status.Should().Be(ProbeStatus.Healthy);
    }

    [Fact]
    public async Task ANodeStoppedOnPurpose_IsStopped_AndItsNodeRuleIsHealthy()
    {
        _membership.Update(new ClusterRead(Db.AddMinutes(10), [Member("b", Db, left: Db)], []));

        _membership.StateOf(_membership.Member("b")!).Should().Be(MemberState.Stopped);
        _membership.Absence("b").Should().Be("node b is stopped");
        var result = await CheckAsync("b");
        result.Status.Should().Be(ProbeStatus.Healthy);
        result.Description.Should().Contain("is stopped");
    }

    [Fact]
    public async Task ANodeNeverSeen_IsNotYetDown_ThenDownAfterAGrace_AndNothingIsSaidBeforeTheFirstRead()
    {
        (await CheckAsync("b")).Status.Should().Be(ProbeStatus.Degraded, "this node has not read the members yet: it cannot tell");
        _membership.Update(new ClusterRead(Db, [Member("a", Db)], []));

        (await CheckAsync("b")).Status.Should().Be(ProbeStatus.Degraded, "a node named by a rule may still be starting");
        _membership.Absence("b").Should().Be("node b has not checked in");
        _time.Advance(ClusterNodeProbe.FirstCheckInGrace);
        _membership.Update(new ClusterRead(Db + ClusterNodeProbe.FirstCheckInGrace, [Member("a", Db + ClusterNodeProbe.FirstCheckInGrace)], []));

        var never = await CheckAsync("b");
        never.Status.Should().Be(ProbeStatus.Unhealthy);
        never.Description.Should().Contain("has never checked in").And.Contain("engine.cluster.node: b");
    }

    [Fact]
    public async Task WhileThisNodeCannotReachTheDatabase_ItDoesNotCallTheOthersDown()
    {
        _membership.Update(new ClusterRead(Db, [Member("a", Db), Member("b", Db)], []));
        _time.Advance(TimeSpan.FromSeconds(31));
        _membership.Failed("connection refused");

        var result = await CheckAsync("b");
        result.Status.Should().Be(ProbeStatus.Degraded);
        result.Description.Should().StartWith("cannot tell: this node has not reached the cluster's database for 31s");
    }

    [Fact]
    public void MembersChanged_IsRaisedWhenTheSetOfNodesChanges_Only_AndTheNewestStateOfARuleWins()
    {
        var raised = 0;
        _membership.MembersChanged += () => raised++;
        var older = new OwnedState(new RuleState("api", RuleStatus.Down, Db, 1, 0, 1, 1), "b", Db);
        var newer = new OwnedState(new RuleState("api", RuleStatus.Healthy, Db, 0, 1, 2, 1), "c", Db.AddSeconds(1));

        _membership.Update(new ClusterRead(Db, [Member("a", Db)], [newer]));
        _membership.Update(new ClusterRead(Db.AddSeconds(2), [Member("a", Db.AddSeconds(2))], [older]));
        _membership.Update(new ClusterRead(Db.AddSeconds(4), [Member("a", Db.AddSeconds(4)), Member("b", Db.AddSeconds(4))], []));

        raised.Should().Be(2, "the first read, and b joining; a check-in of the same nodes changes nothing");
        _membership.StateOf("api")!.Node.Should().Be("c", "a state read again later, but written earlier, does not replace a newer one");
        _membership.StateOf("api")!.State.Status.Should().Be(RuleStatus.Healthy);
    }

    [Fact]
    public void ACommandGoesToANodesAdvertisedApi_ALoopbackOneOnlyFromItsOwnHost_AndNeverToANodeThatIsNotUp()
    {
        _membership.Update(new ClusterRead(Db, [
            Member("a", Db) with { Api = "http://db1:5100", Host = "db1" },
            Member("b", Db) with { Api = "http://127.0.0.1:5101", Host = "db2" },
            Member("c", Db) with { Api = null, Host = "db3" },
            Member("d", Db - TimeSpan.FromMinutes(1)) with { Api = "http://db4:5100", Host = "db4" },
        ], []));

        _membership.ApiOf("a", "db2").Should().Be((new Uri("http://db1:5100"), (string?)null));
        _membership.ApiOf("b", "DB2").Should().Be((new Uri("http://127.0.0.1:5101"), (string?)null), "a node on the same host reaches its loopback");
        _membership.ApiOf("b", "db1").Unreachable.Should().Be(
            "node b listens on its loopback only (http://127.0.0.1:5101, on host db2): set engine.cluster.advertise there to an address this host reaches (docs/cluster.md)");
        _membership.ApiOf("c", "db1").Unreachable.Should().StartWith("node c gave no address for its API");
        _membership.ApiOf("d", "db1").Should().Be(((Uri?)null, "node d is down"));
        _membership.ApiOf("e", "db1").Should().Be(((Uri?)null, "node e has not checked in"));
    }

    [Theory]
    [InlineData(null, "http://127.0.0.1:5100", "http://127.0.0.1:5100")]
    [InlineData(null, "http://0.0.0.0:5100", "http://db2:5100")]
    [InlineData(null, "http://[::]:5100", "http://db2:5100")]
    [InlineData(null, "http://10.0.0.7:5100", "http://10.0.0.7:5100")]
    [InlineData("https://sentinel-db2.example:8443/", "http://0.0.0.0:5100", "https://sentinel-db2.example:8443")]
    [InlineData(null, null, null)]
    public void ANodeAdvertises_ItsSetAddress_ElseTheOneItListensOn_WithItsHostNameForAWildcard(string? advertise, string? listening, string? expected)
        => ClusterMembership.Advertised(advertise is null ? null : new Uri(advertise), listening, "db2").Should().Be(expected);
}
