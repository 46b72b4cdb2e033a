using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>Plugins and config changed under a running engine, through the real file watchers (the clock is moved on until they are seen).</summary>
public sealed class HotReloadTests
{
    private const string Versioned = "Sentinel.TestPlugins.Versioned";

    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    private static object? Measured(EngineHarness h, string rule, string key)
        => h.Engine.GetState(rule)?.LastCheck?.Data is { } d && d.TryGetValue(key, out var v) ? v : null;

    [Fact]
    public async Task OverwritingAPluginDll_SwitchesRulesToTheNewCode_WithoutLosingState()
    {
        await using var h = await EngineHarness.StartAsync("""
            rules:
              - name: versioned
                every: 1s
                probe: { type: versioned }
            """, prepare: d => d.DropPlugin(TestPaths.TestPlugin(Versioned + ".V1"), Versioned));

        await h.AdvanceAsync(TimeSpan.FromSeconds(2));
        Measured(h, "versioned", "version").Should().Be(1);
        h.Engine.GetState("versioned")!.Checks.Should().Be(3);
        var before = h.Engine.GetState("versioned")!;

        h.Dir.DropPlugin(TestPaths.TestPlugin(Versioned + ".V2"), Versioned);

        await h.AdvanceUntilAsync(() => Measured(h, "versioned", "version") is 2, Step, what: "v2 running after the DLL was overwritten");
        var after = h.Engine.GetState("versioned")!;
        after.Status.Should().Be(RuleStatus.Healthy);
        after.Since.Should().Be(before.Since, "the rule's state survives the reload");
        after.Checks.Should().BeGreaterThan(before.Checks);
        h.Engine.Catalog.Plugins.Single(p => p.Name == Versioned).Version.Should().StartWith("2.0.0");
    }

    [Fact]
    public async Task ARuleWhosePluginIsNotInstalled_Waits_AndStartsWhenThePluginIsDroppedIn()
    {
        var key = Guid.NewGuid().ToString("N");
        const string rules = """
            rules:
              - name: base
                every: 1s
                probe: { type: scripted, with: { key: KEY } }
              - name: newcomer
                every: 1s
                probe: { type: versioned, with: { offset: 10 } }
            """;
        await using var h = await EngineHarness.StartAsync(rules.Replace("KEY", key, StringComparison.Ordinal));
        await h.AdvanceAsync(TimeSpan.FromSeconds(2));

        h.Engine.ConfigErrors.Should().BeEmpty("a plugin not installed yet does not reject the config");
        var waiting = h.Engine.GetStatus().Rules.Single(r => r.Name == "newcomer");
        waiting.Status.Should().Be(RuleStatus.Waiting);
        waiting.Waiting.Should().Be("waiting for a plugin that provides probe type 'versioned'");
        (await h.Engine.RunRuleAsync("newcomer")).Should().BeNull("a waiting rule is not checked");
        h.Engine.GetRule("newcomer")!.Definition.Should().BeNull();
        h.Engine.GetState("base")!.Checks.Should().Be(3, "the other rules run meanwhile");

        h.Dir.DropPlugin(TestPaths.TestPlugin(Versioned + ".V1"), Versioned);

        await h.AdvanceUntilAsync(() => Measured(h, "newcomer", "version") is 11, Step, what: "new plugin loaded and the waiting rule running");
        h.Engine.ConfigErrors.Should().BeEmpty();
        var started = h.Engine.GetStatus().Rules.Single(r => r.Name == "newcomer");
        started.Status.Should().Be(RuleStatus.Healthy);
        started.Waiting.Should().BeNull();
    }

    [Fact]
    public async Task APluginRemovedUnderADownRule_KeepsItsIncidentOpen_AndTheRuleComesBackWithIt()
    {
        var mail = Guid.NewGuid().ToString("N")[..10];
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            channels:
              - { name: {{mail}}, type: test-channel, with: { key: {{mail}} } }
            rules:
              - name: versioned
                every: 1s
                failure-threshold: 1
                probe: { type: versioned }
                conditions: ["version == 99"]
                notify: [{ channel: {{mail}} }]
            """, prepare: d => d.DropPlugin(TestPaths.TestPlugin(Versioned + ".V1"), Versioned));
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, Step, what: "the DOWN message");
        TestChannel.Of(mail)[0].Subject.Should().Be("[Sentinel] DOWN: versioned");
        var since = h.Engine.GetState("versioned")!.Since;

        Directory.Delete(Path.Combine(h.Dir.Path, "plugins", Versioned), recursive: true);

        await h.AdvanceUntilAsync(() => h.Engine.GetStatus().Rules.Single().Status == RuleStatus.Waiting, Step, what: "the rule waiting for its plugin");
        await h.AdvanceAsync(TimeSpan.FromSeconds(5));
        TestChannel.Of(mail).Should().ContainSingle("a rule that cannot be checked has not recovered: no RESOLVED");
        h.Engine.GetStatus().Notifications!.OpenIncidents.Should().ContainSingle().Which.Rule.Should().Be("versioned");
        h.Engine.GetState("versioned")!.Status.Should().Be(RuleStatus.Down, "its state is kept while it waits");

        h.Dir.DropPlugin(TestPaths.TestPlugin(Versioned + ".V1"), Versioned);

        await h.AdvanceUntilAsync(() => h.Engine.GetStatus().Rules.Single().Status == RuleStatus.Down, Step, what: "the rule checked again");
        await h.AdvanceAsync(TimeSpan.FromSeconds(5));
        TestChannel.Of(mail).Should().ContainSingle("the same outage, the same incident: no second DOWN");
        h.Engine.GetState("versioned")!.Since.Should().Be(since);
    }

    [Fact]
    public async Task EditingTheConfig_AppliesChanges_AndUnchangedRulesKeepTheirStateAndProbe()
    {
        string k1 = Guid.NewGuid().ToString("N"), k2 = Guid.NewGuid().ToString("N"), k3 = Guid.NewGuid().ToString("N");
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: stays
                every: 1s
                probe: { type: scripted, with: { key: {{k1}} } }
              - name: changes
                every: 1s
                probe: { type: scripted, with: { key: {{k2}}, value: 1 } }
              - name: goes
                every: 1s
                probe: { type: scripted, with: { key: {{k3}} } }
            """);
        await h.AdvanceAsync(TimeSpan.FromSeconds(2));
        h.Engine.GetState("stays")!.Checks.Should().Be(3);
        var staysBefore = h.Engine.GetState("stays")!;
        var applied = new TaskCompletionSource<ConfigApplied>();
        using var _ = h.Engine.Events.Subscribe((e, _) => { if (e is ConfigApplied a && a.Changed.Count > 0) applied.TrySetResult(a); return ValueTask.CompletedTask; });

        h.WriteConfig($$"""
            rules:
              - name: stays
                every: 1s
                probe: { type: scripted, with: { key: {{k1}} } }
              - name: changes
                every: 1s
                probe: { type: scripted, with: { key: {{k2}}, value: 2 } }
              - name: arrives
                every: 1s
                probe: { type: scripted, with: { key: {{k3}} } }
            """);

        await h.AdvanceUntilAsync(() => applied.Task.IsCompleted, Step, what: "the edit applied");
        var change = await applied.Task;
        change.Added.Should().Equal("arrives");
        change.Changed.Should().Equal("changes");
        change.Removed.Should().Equal("goes");
        await h.AdvanceUntilAsync(() => Measured(h, "changes", "value") is 2, Step, what: "changed rule uses the new options");
        h.Engine.GetState("goes").Should().BeNull();
        await h.AdvanceAsync(TimeSpan.FromSeconds(1));
        var stays = h.Engine.GetState("stays")!;
        stays.Since.Should().Be(staysBefore.Since);
        stays.Checks.Should().BeGreaterThan(staysBefore.Checks);
        ((int)Measured(h, "stays", "runs")!).Should().BeGreaterThan(3, "an unchanged rule keeps its probe instance and its counters");
    }

    [Fact]
    public async Task AnInvalidConfigEdit_IsRejected_TheRunningConfigStays_AndTheErrorIsVisibleInStatus()
    {
        var key = Guid.NewGuid().ToString("N");
        var good = $$"""
            rules:
              - name: api
                every: 1s
                probe: { type: scripted, with: { key: {{key}} } }
            """;
        await using var h = await EngineHarness.StartAsync(good);
        await h.RunDueAsync();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);

        h.WriteConfig(good.Replace("every: 1s", "every: soon"));

        await h.AdvanceUntilAsync(() => h.Engine.ConfigErrors.Count > 0, Step, what: "rejection");
        h.Engine.ConfigErrors.Should().ContainSingle().Which.ToString().Should().Be($"{h.ConfigPath}:9:12: rules[0] (api).every: 'soon' is not a duration: write a number with a unit (us, ms, s, m, h, d), e.g. 500ms, 10s, 5m, 1h30m");
        var checks = h.Engine.GetState("api")!.Checks;
        await h.AdvanceAsync(TimeSpan.FromSeconds(3));
        h.Engine.GetState("api")!.Checks.Should().BeGreaterThanOrEqualTo(checks + 3, "the old config keeps running");
        await Eventually.Until(() => File.Exists(h.Engine.StatusFilePath) && File.ReadAllText(h.Engine.StatusFilePath).Contains("'soon' is not a duration"), what: "error in status.json");
        var status = h.Engine.GetStatus();
        status.Config.Valid.Should().BeFalse();
        status.Health.Should().Contain("rejected");

        h.WriteConfig(good);
        await h.AdvanceUntilAsync(() => h.Engine.ConfigErrors.Count == 0, Step, what: "fixed config accepted");
    }
}
