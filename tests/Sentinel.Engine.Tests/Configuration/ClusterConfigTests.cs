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
        (cluster.Node, cluster.CheckinInterval).Should().Be(("db1", TimeSpan.FromSeconds(3)));
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

    [Theory]
    [InlineData("postgres: \"Host=db1;Nonsense=1;Password=hunter2-secret\"", "postgres is not a PostgreSQL connection string")]
    [InlineData("postgres: \"Host=db1\"\n    node: \"db 1\"", "node 'db 1' is not a node name")]
    [InlineData("postgres: \"Host=db1\"\n    checkin-interval: 100ms", "checkin-interval")]
    [InlineData("node: db1", "postgres")]
    public void ABadClusterSection_IsAnError_ThatNeverShowsThePassword(string section, string expected)
    {
        var result = Load($"engine:\n  cluster:\n    {section}\nrules:\n  - {{ name: a, every: 1s, probe: {{ type: timer }} }}\n");

        result.Errors.Should().ContainSingle().Which.Message.Should().Contain(expected).And.NotContain("hunter2");
    }
}
