using System.Text.Json;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>The engine with real Quartz scheduling, a real SQLite file and real files on disk.</summary>
public sealed class EngineTests
{
    private static string Key() => Guid.NewGuid().ToString("N");

    [Fact]
    public async Task ScheduledRule_RunsRepeatedly_AndGoesDownAfterTheFailureThreshold_ThenRecovers()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: api
                every: 100ms
                failure-threshold: 3
                success-threshold: 2
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        await Eventually.Until(() => h.Engine.GetState("api")?.Status == RuleStatus.Healthy, what: "healthy");
        ScriptedProbe.Script[key] = false;
        await Eventually.Until(() => h.Engine.GetState("api")?.Status == RuleStatus.Down, what: "down");
        ScriptedProbe.Script[key] = true;
        await Eventually.Until(() => h.Engine.GetState("api")?.Status == RuleStatus.Healthy, what: "recovered");

        // The engine's activity log subscribed to the event bus before the first check: it saw every transition.
        var transitions = await Eventually.Until(() => h.Engine.Activity.Recent(50).Where(e => e.Kind == "transition").Reverse().ToList(), t => t.Count >= 4, what: "events delivered");
        string.Join(" ", transitions.Select(t => t.Message.Split(':')[0])).Should().Be("pending → healthy healthy → failing failing → down down → healthy");
        ScriptedProbe.Runs[key].Should().BeGreaterThanOrEqualTo(6, "1 healthy + 3 failures + 2 successes");
    }

    [Fact]
    public async Task SlowRule_NeverRunsTwiceAtOnce()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: slow
                every: 100ms
                probe: { type: scripted, with: { key: {{key}}, delay: 350ms } }
            """);

        await Eventually.Until(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= 4, what: "4 runs");
        ScriptedProbe.MaxOverlap[key].Should().Be(1);
    }

    [Fact]
    public async Task StuckProbe_IsAbandonedAndMarked_AndNeverBlocksOtherRules()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: stuck
                every: 200ms
                timeout: 200ms
                failure-threshold: 1
                probe: { type: hang }
              - name: throws
                every: 100ms
                failure-threshold: 1
                probe: { type: throw, with: { message: kaboom } }
              - name: fine
                every: 100ms
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        try
        {
            var stuck = await Eventually.Until(() => h.Engine.GetState("stuck"), s => s.Status == RuleStatus.Down, what: "stuck rule down");
            stuck.LastCheck!.Stuck.Should().BeTrue();
            stuck.LastCheck.Description.Should().Contain("stuck");
            var runsWhileStuck = ScriptedProbe.Runs.GetValueOrDefault(key);
            await Eventually.Until(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= runsWhileStuck + 5, what: "other rules keep running");
            h.Engine.GetState("fine")!.Status.Should().Be(RuleStatus.Healthy);

            var thrown = await Eventually.Until(() => h.Engine.GetState("throws"), s => s.Status == RuleStatus.Down, what: "throwing rule down");
            thrown.LastCheck!.Description.Should().Be("the probe failed with InvalidOperationException: kaboom");
            h.Engine.GetHealth().Healthy.Should().BeTrue("a failing plugin never takes the engine down");
        }
        finally { HangingProbe.Release.Set(); }
    }

    [Fact]
    public async Task Restart_ResumesWhereItWas()
    {
        var key = Key();
        ScriptedProbe.Script[key] = false;
        var rules = $$"""
            rules:
              - name: api
                every: 100ms
                failure-threshold: 2
                probe: { type: scripted, with: { key: {{key}} } }
            """;
        await using var h = await EngineHarness.StartAsync(rules);
        var down = await Eventually.Until(() => h.Engine.GetState("api"), s => s.Status == RuleStatus.Down, what: "down");
        await h.StopEngineAsync();
        var saved = h.Engine.GetState("api")!;

        ScriptedProbe.Script[key] = true;
        var second = await EngineHarness.StartAsync(rules, h.Dir, start: false);
        await second.StartEngineAsync();
        try
        {
            var resumed = second.Engine.GetState("api")!;
            resumed.Status.Should().Be(RuleStatus.Down, "a down rule is still down after a restart until it recovers");
            resumed.Since.Should().Be(down.Since);
            resumed.Checks.Should().BeGreaterThanOrEqualTo(saved.Checks);
            await Eventually.Until(() => second.Engine.GetState("api")?.Status == RuleStatus.Healthy, what: "recovered after restart");
        }
        finally { await second.StopEngineAsync(); }
    }

    [Fact]
    public async Task ProbeState_SurvivesARestart_AndAConfigChange()
    {
        const string rules = """
            rules:
              - name: counter
                every: 100ms
                probe: { type: stateful }
            """;
        await using var h = await EngineHarness.StartAsync(rules);
        await Eventually.Until(() => h.Engine.GetState("counter")?.LastCheck?.Data?["count"] is int c && c >= 5, what: "5 runs");
        await h.StopEngineAsync();
        var counted = int.Parse(h.Engine.GetState("counter")!.ProbeState!["count"]);

        var second = await EngineHarness.StartAsync(rules.Replace("100ms", "150ms"), h.Dir, start: false);
        await second.StartEngineAsync();
        try
        {
            var next = await Eventually.Until(() => second.Engine.GetState("counter")?.LastCheck?.Data?["count"] as int?, c => c > counted, what: "counting on");
            next.Should().BeLessThanOrEqualTo(counted + 3, "the count resumes from the persisted state rather than from zero");
        }
        finally { await second.StopEngineAsync(); }
    }

    [Fact]
    public async Task StatusJson_IsNeverHalfWritten()
    {
        var rules = string.Join("\n", Enumerable.Range(0, 40).Select(i => $"  - {{ name: r{i}, every: 100ms, probe: {{ type: scripted, with: {{ key: {Key()} }} }} }}"));
        await using var h = await EngineHarness.StartAsync("rules:\n" + rules);
        var path = h.Engine.StatusFilePath;
        await Eventually.Until(() => File.Exists(path), what: "status.json written");

        var reads = 0;
        var deadline = DateTime.UtcNow.AddSeconds(3);
        while (DateTime.UtcNow < deadline)
        {
            var bytes = await File.ReadAllBytesAsync(path);
            using var doc = JsonDocument.Parse(bytes); // throws on a torn write
            doc.RootElement.GetProperty("rules").GetArrayLength().Should().Be(40);
            reads++;
        }
        reads.Should().BeGreaterThan(50);
        await h.StopEngineAsync();
        Directory.GetFiles(Path.GetDirectoryName(path)!, "*.tmp").Should().BeEmpty("no temporary file is left behind");
    }

    [Fact]
    public async Task PauseAndResume_StopAndRestartChecks()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: api
                every: 100ms
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        await Eventually.Until(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= 2);
        (await h.Engine.SetPausedAsync("api", true)).Should().BeTrue();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Paused);
        var runs = ScriptedProbe.Runs[key];
        (await h.Engine.RunRuleAsync("api")).Should().BeNull("a paused rule is not checked");
        await h.Engine.SetPausedAsync("api", false);
        await Eventually.Until(() => h.Engine.GetState("api")?.Status == RuleStatus.Healthy && ScriptedProbe.Runs[key] > runs);
    }
}
