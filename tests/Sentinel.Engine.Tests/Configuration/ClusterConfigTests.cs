using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Configuration;

/// <summary>engine.cluster and node: as the loader reads and checks them.</summary>
public sealed class ClusterConfigTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly PluginCatalog _catalog;

    public ClusterConfigTests()
    {
        // scripted: a test probe without [ClusterWide] (a node probe); timer: a built-in one with it.
        _catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new TestProbesPlugin(), new Sentinel.Engine.BuiltIn.EngineProbesPlugin()]);
        _catalog.LoadAll();
    }

    public void Dispose()
    {
        _catalog.Dispose();
        _dir.Dispose();
    }

    private ConfigLoadResult Load(string yaml)
        => new ConfigLoader(n => n == "PG_PASSWORD" ? "hunter2-secret" : null).Load(_dir.File("sentinel.yaml", yaml), _catalog);

    private const string Cluster = """
        engine:
          cluster:
            postgres: "Host=db1;Database=sentinel;Username=sentinel;Password=${PG_PASSWORD}"
            node: db1
            checkin-interval: 3s

        """;

    [Fact]
    public void AClusterConfig_IsResolved_AndEachRuleKnowsWhereItRuns()
    {
        var result = Load(Cluster + """
            rules:
              - { name: backup, every: 1h, probe: { type: timer } }
              - { name: local, node: db2, probe: { type: scripted, with: { key: k } } }
              - { name: pinned, node: db1, probe: { type: timer } }
            """);

        result.Errors.Should().BeEmpty();
        var cluster = result.Config!.Engine.Cluster!;
        (cluster.Node, cluster.CheckinInterval, cluster.Advertise).Should().Be(("db1", TimeSpan.FromSeconds(3), (Uri?)null));
        cluster.ConnectionString.Should().Contain("Password=hunter2-secret");
        cluster.ToString().Should().NotContain("hunter2", "a log line or a dump of the settings must not show the password");
        var rules = result.Config.Rules.ToDictionary(r => r.Name);
        rules["backup"].ClusterWide.Should().BeTrue();
        rules["backup"].RunsOn(cluster).Should().BeTrue();
        rules["local"].ClusterWide.Should().BeFalse();
        rules["local"].RunsOn(cluster).Should().BeFalse("it names another node");
        rules["pinned"].RunsOn(cluster).Should().BeTrue();
        Sentinel.Engine.Api.Redactor.For(result.Config, null).Apply("connect failed: password hunter2-secret").Should().NotContain("hunter2-secret");
    }

    [Fact]
    public void WithoutCluster_NothingChanges_AndNodeIsIgnored()
    {
        var result = Load("""
            rules:
              - { name: local, probe: { type: scripted, with: { key: k } } }
              - { name: there, node: db2, probe: { type: scripted, with: { key: k } } }
            """);

        result.Errors.Should().BeEmpty();
        result.Config!.Engine.Cluster.Should().BeNull();
        result.Config.Rules.Should().OnlyContain(r => r.RunsOn(null), "on one box every rule runs");
    }

    [Fact]
    public void ARuleOfTheBox_WithoutNode_IsAnErrorInClusterMode_ThatSaysWhatToWrite()
    {
        var result = Load(Cluster + """
            rules:
              - { name: local, probe: { type: scripted, with: { key: k } } }
            """);

        var error = result.Errors.Should().ContainSingle().Subject;
        error.Location.Line.Should().Be(7);
        error.Message.Should().Contain("probe 'scripted' is of the box it runs on").And.Contain("node: db1");
    }

    [Fact]
    public void ANodeAllRule_IsThisNodesInstance_NamedByTheNode_AndWhatNamesItMeansThatInstance()
    {
        var result = Load(Cluster + """
            rules:
              - { name: disk, every: 10s, node: all, probe: { type: scripted, with: { key: k } } }
              - { name: app, every: 10s, node: all, depends-on: [disk], probe: { type: scripted, with: { key: k } } }
            maintenance:
              - { name: patching, rules: [disk], start: "2026-12-01T00:00:00Z", end: "2026-12-01T01:00:00Z" }
            """);

        result.Errors.Should().BeEmpty();
        var rules = result.Config!.Rules.ToDictionary(r => r.Name);
        rules.Keys.Should().BeEquivalentTo(["disk@db1", "app@db1"]);
        rules["disk@db1"].Node.Should().Be("db1");
        rules["disk@db1"].AllNodesOf.Should().Be("disk");
        rules["disk@db1"].RunsOn(result.Config.Engine.Cluster).Should().BeTrue();
        rules["app@db1"].DependsOn.Should().Equal(["disk@db1"], "a dependency on a node: all rule is on its instance on the same node");
        var window = result.Config.Maintenance.Should().ContainSingle().Subject;
        window.Covers("disk@db2").Should().BeTrue("a window naming a node: all rule covers it on every node");
        window.Covers("app@db1").Should().BeFalse();
    }

    [Fact]
    public void ANodeAllRule_OnOneBox_IsTheRuleAsWritten()
    {
        var result = Load("""
            rules:
              - { name: disk, every: 10s, node: all, probe: { type: scripted, with: { key: k } } }
            """);

        result.Errors.Should().BeEmpty();
        var rule = result.Config!.Rules.Should().ContainSingle().Subject;
        (rule.Name, rule.Node, rule.AllNodesOf).Should().Be(("disk", (string?)null, (string?)null));
    }

    [Fact]
    public void EveryNodeKnown_IsANodeRule_AlertedOnTheEngineChannels_AndMadeOnce()
    {
        var config = Load(Cluster + """
            channels:
              - { name: ops, type: test-channel, with: { key: k } }
            rules:
              - { name: local, node: db2, probe: { type: scripted, with: { key: k } } }
              - { name: disk, node: all, probe: { type: scripted, with: { key: k } } }
            """).Config!;
        var at = DateTimeOffset.UtcNow;
        var membership = new ClusterMembership(TimeProvider.System);
        membership.Update(new ClusterRead(at, [new ClusterMember("db3", "1", at, at, TimeSpan.FromSeconds(2), at, "", []),
            new ClusterMember("db4", "1", at, at, TimeSpan.FromSeconds(2), null, "", [])], []));
        _catalog.TryGet(PluginKind.Probe, "cluster-node", out var probe).Should().BeTrue();

        var nodes = Sentinel.Engine.Runtime.ClusterNodeRules.Nodes(config, membership);
        var with = Sentinel.Engine.Runtime.ClusterNodeRules.With(config, nodes, probe);

        nodes.Should().Equal(["db1", "db2", "db4"], "named by a rule, checking in (db3 stopped on purpose), and this node");
        var rule = with.Rules.Single(r => r.Name == "node:db2");
        (rule.ClusterWide, rule.Node, rule.Every, rule.FailureThreshold).Should().Be((true, (string?)null, (TimeSpan?)TimeSpan.FromSeconds(3), 1));
        rule.Notify.Select(n => n.Channel).Should().Equal(["ops"]);
        Sentinel.Engine.Runtime.ClusterNodeRules.With(with, nodes, probe).Should().BeSameAs(with, "made again with the same nodes, nothing changes (no re-apply)");
        Sentinel.Engine.Runtime.ClusterNodeRules.With(with, ["db1"], probe).Rules.Where(r => r.Name.StartsWith("node:", StringComparison.Ordinal)).Select(r => r.Name)
            .Should().Equal(["node:db1"]);
    }

    [Fact]
    public void TheRulesDigest_IsTheSameOnNodesThatRunTheSameFile()
    {
        string Digest(string node) => Sentinel.Engine.Runtime.ClusterNodeRules.Digest(Load(Cluster.Replace("node: db1", "node: " + node) + """
            rules:
              - { name: disk, every: 10s, node: all, probe: { type: scripted, with: { key: k } } }
              - { name: api, every: 10s, probe: { type: timer } }
            """).Config!);

        Digest("db2").Should().Be(Digest("db1"), "node: all rules are one rule per node, each named by its node");
        Sentinel.Engine.Runtime.ClusterNodeRules.Digest(Load(Cluster + "rules:\n  - { name: api, every: 20s, probe: { type: timer } }\n").Config!)
            .Should().NotBe(Digest("db1"));
    }

    [Theory]
    [InlineData("postgres: \"Host=db1\"\n    node: all", "node 'all' is not a node name")]
    [InlineData("postgres: \"Host=db1;Nonsense=1;Password=hunter2-secret\"", "postgres is not a PostgreSQL connection string")]
    [InlineData("postgres: \"Host=db1\"\n    node: \"db 1\"", "node 'db 1' is not a node name")]
    [InlineData("postgres: \"Host=db1\"\n    checkin-interval: 100ms", "checkin-interval")]
    [InlineData("node: db1", "postgres")]
    [InlineData("postgres: \"Host=db1\"\n    advertise: db2:5100", "advertise 'db2:5100' is not the base address of an API: write e.g. \"http://db2:5100\"")]
    [InlineData("postgres: \"Host=db1\"\n    advertise: http://db2:5100/api", "advertise 'http://db2:5100/api' is not the base address")]
    public void ABadClusterSection_IsAnError_ThatNeverShowsThePassword(string section, string expected)
    {
        var result = Load($"engine:\n  cluster:\n    {section}\nrules:\n  - {{ name: a, every: 1s, probe: {{ type: timer }} }}\n");

        result.Errors.Should().ContainSingle().Which.Message.Should().Contain(expected).And.NotContain("hunter2");
    }
}
