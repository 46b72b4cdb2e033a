using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>Plugins and config changed under a running engine, through the real file watchers.</summary>
public sealed class HotReloadTests
{
    private const string Versioned = "Sentinel.TestPlugins.Versioned";

    private static object? Measured(EngineHarness h, string rule, string key)
        => h.Engine.GetState(rule)?.LastCheck?.Data is { } d && d.TryGetValue(key, out var v) ? v : null;

    [Fact]
    public async Task OverwritingAPluginDll_SwitchesRulesToTheNewCode_WithoutLosingState()
    {
        await using var h = await EngineHarness.StartAsync("""
            rules:
              - name: versioned
                every: 100ms
                probe: { type: versioned }
            """, prepare: d => d.DropPlugin(TestPaths.TestPlugin(Versioned + ".V1"), Versioned));

        await Eventually.Until(() => Measured(h, "versioned", "version") is 1, what: "v1 running");
        await Eventually.Until(() => h.Engine.GetState("versioned")!.Checks >= 3);
        var before = h.Engine.GetState("versioned")!;

        h.Dir.DropPlugin(TestPaths.TestPlugin(Versioned + ".V2"), Versioned);

        await Eventually.Until(() => Measured(h, "versioned", "version") is 2, TimeSpan.FromSeconds(15), "v2 running after the DLL was overwritten");
        var after = h.Engine.GetState("versioned")!;
        after.Status.Should().Be(RuleStatus.Healthy);
        after.Since.Should().Be(before.Since, "the rule's state survives the reload");
        after.Checks.Should().BeGreaterThan(before.Checks);
        h.Engine.Catalog.Plugins.Single(p => p.Name == Versioned).Version.Should().StartWith("2.0.0");
    }

    [Fact]
    public async Task DroppingANewPluginFolder_LetsARejectedConfigLoad()
    {
        var key = Guid.NewGuid().ToString("N");
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: base
                every: 100ms
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        h.WriteConfig($$"""
            rules:
              - name: base
                every: 100ms
                probe: { type: scripted, with: { key: {{key}} } }
              - name: newcomer
                every: 100ms
                probe: { type: versioned, with: { offset: 10 } }
            """);
        await Eventually.Until(() => h.Engine.ConfigErrors.Count > 0, what: "config with an unknown probe type rejected");
        h.Engine.ConfigErrors[0].Message.Should().Contain("unknown probe type 'versioned'");

        h.Dir.DropPlugin(TestPaths.TestPlugin(Versioned + ".V1"), Versioned);

        await Eventually.Until(() => Measured(h, "newcomer", "version") is 11, TimeSpan.FromSeconds(15), "new plugin loaded and rule running");
        h.Engine.ConfigErrors.Should().BeEmpty();
    }

    [Fact]
    public async Task EditingTheConfig_AppliesChanges_AndUnchangedRulesKeepTheirStateAndProbe()
    {
        string k1 = Guid.NewGuid().ToString("N"), k2 = Guid.NewGuid().ToString("N"), k3 = Guid.NewGuid().ToString("N");
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: stays
                every: 100ms
                probe: { type: scripted, with: { key: {{k1}} } }
              - name: changes
                every: 100ms
                probe: { type: scripted, with: { key: {{k2}}, value: 1 } }
              - name: goes
                every: 100ms
                probe: { type: scripted, with: { key: {{k3}} } }
            """);
        await Eventually.Until(() => h.Engine.GetState("stays")?.Checks >= 3 && h.Engine.GetState("changes")?.Checks >= 1);
        var staysBefore = h.Engine.GetState("stays")!;
        var applied = new TaskCompletionSource<ConfigApplied>();
        using var _ = h.Engine.Events.Subscribe((e, _) => { if (e is ConfigApplied a && a.Changed.Count > 0) applied.TrySetResult(a); return ValueTask.CompletedTask; });

        h.WriteConfig($$"""
            rules:
              - name: stays
                every: 100ms
                probe: { type: scripted, with: { key: {{k1}} } }
              - name: changes
                every: 100ms
                probe: { type: scripted, with: { key: {{k2}}, value: 2 } }
              - name: arrives
                every: 100ms
                probe: { type: scripted, with: { key: {{k3}} } }
            """);

        var change = await applied.Task.WaitAsync(TimeSpan.FromSeconds(15));
        change.Added.Should().Equal("arrives");
        change.Changed.Should().Equal("changes");
        change.Removed.Should().Equal("goes");
        await Eventually.Until(() => Measured(h, "changes", "value") is 2, what: "changed rule uses the new options");
        h.Engine.GetState("goes").Should().BeNull();
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
                every: 100ms
                probe: { type: scripted, with: { key: {{key}} } }
            """;
        await using var h = await EngineHarness.StartAsync(good);
        await Eventually.Until(() => h.Engine.GetState("api")?.Status == RuleStatus.Healthy);

        h.WriteConfig(good.Replace("every: 100ms", "every: soon"));

        await Eventually.Until(() => h.Engine.ConfigErrors.Count > 0, TimeSpan.FromSeconds(15), "rejection");
        h.Engine.ConfigErrors.Should().ContainSingle().Which.ToString().Should().Be($"{h.ConfigPath}:9:12: rules[0] (api).every: 'soon' is not a duration: write a number with a unit (us, ms, s, m, h, d), e.g. 500ms, 10s, 5m, 1h30m");
        var checks = h.Engine.GetState("api")!.Checks;
        await Eventually.Until(() => h.Engine.GetState("api")!.Checks > checks + 2, what: "old config keeps running");
        await Eventually.Until(() => File.ReadAllText(h.Engine.StatusFilePath).Contains("'soon' is not a duration"), what: "error in status.json");
        var status = h.Engine.GetStatus();
        status.Config.Valid.Should().BeFalse();
        status.Health.Should().Contain("rejected");

        h.WriteConfig(good);
        await Eventually.Until(() => h.Engine.ConfigErrors.Count == 0, TimeSpan.FromSeconds(15), "fixed config accepted");
    }
}
