using System.Collections.Concurrent;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Remediation;

/// <summary>Remediation through the real engine: real scheduler, real state file, real supervised processes.</summary>
public sealed class RemediationEngineTests
{
    private static string Service => SupervisorPolicyTests.Service;

    private static ConcurrentQueue<RemediationEvent> Collect(SentinelEngine engine)
    {
        var events = new ConcurrentQueue<RemediationEvent>();
        engine.Events.Subscribe((e, _) =>
        {
            if (e is RemediationEvent r) events.Enqueue(r);
            return ValueTask.CompletedTask;
        });
        return events;
    }

    [Fact]
    public async Task FailingRule_IsRemediatedOnceDown_AndNotAgainDuringGrace()
    {
        var key = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[key] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: worker
                every: 100ms
                failure-threshold: 2
                probe: { type: scripted, with: { key: {{key}} } }
                remediate: [{ type: record, with: { key: {{key}} } }]
                grace: 1h
            """);
        var events = Collect(h.Engine);
        await Eventually.Until(() => RecordingAction.Of(key).Count == 1, what: "one remediation");
        var done = await Eventually.Until(() => events.FirstOrDefault(e => e.Kind == RemediationEventKind.Remediated), e => e is not null);
        done!.Output.Should().Equal("recorded attempt 1 for worker");
        h.Engine.GetState("worker")!.Status.Should().Be(RuleStatus.Down);

        // Many more failing checks inside the grace period bring no second attempt.
        var checks = h.Engine.GetState("worker")!.Checks;
        await Eventually.Until(() => h.Engine.GetState("worker")!.Checks >= checks + 10, what: "ten more checks");
        RecordingAction.Of(key).Should().Equal(1);
        h.Engine.GetStatus().Rules.Single().Remediation!.Should().BeEquivalentTo(new { Streak = 1, Total = 1L, LastOutcome = "ran record" });
    }

    [Fact]
    public async Task FailingAction_IsARemediationFailedEvent_WithItsOutput_AndTheEngineGoesOn()
    {
        var key = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[key] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: worker
                every: 100ms
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{key}} } }
                remediate: [{ type: record, with: { key: {{key}}, fail: true } }]
                grace: 0s
                backoff: { initial: 200ms, max: 200ms, jitter: 0 }
                restart-budget: { max: 2, within: 1h, retry-after: 1h }
            """);
        var events = Collect(h.Engine);
        await Eventually.Until(() => events.Any(e => e.Kind == RemediationEventKind.GaveUp), what: "gave-up");
        var failed = events.Where(e => e.Kind == RemediationEventKind.RemediationFailed).ToList();
        failed.Select(e => e.Attempt).Should().Equal(1, 2);
        failed[0].Message.Should().Be("record failed: told to fail");
        failed[0].Output.Should().Equal("recorded attempt 1 for worker");
        var checks = h.Engine.GetState("worker")!.Checks;
        await Eventually.Until(() => h.Engine.GetState("worker")!.Checks >= checks + 5, what: "checks go on after giving up");
        events.Count(e => e.Kind == RemediationEventKind.GaveUp).Should().Be(1);
        RecordingAction.Of(key).Should().HaveCount(2, "after giving up the next attempt is an hour away");
    }

    [Fact]
    public async Task GivenUpState_AndCounts_SurviveAnEngineRestart_WithoutASecondGaveUp()
    {
        var key = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[key] = false;
        var rules = $$"""
            rules:
              - name: worker
                every: 100ms
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{key}} } }
                remediate: [{ type: record, with: { key: {{key}}, fail: true } }]
                grace: 0s
                backoff: { initial: 100ms, max: 100ms, jitter: 0 }
                restart-budget: { max: 2, within: 1h, retry-after: 1h }
            """;
        await using var h = await EngineHarness.StartAsync(rules);
        var events = Collect(h.Engine);
        await Eventually.Until(() => events.Any(e => e.Kind == RemediationEventKind.GaveUp), what: "gave-up");
        var before = h.Engine.GetState("worker")!.Remediation!;

        await h.StopEngineAsync();
        await h.StartEngineAsync();
        var after = Collect(h.Engine);
        h.Engine.GetState("worker")!.Remediation.Should().BeEquivalentTo(new { before.Streak, before.Total, GaveUp = true, before.NextAttemptAt });
        var checks = h.Engine.GetState("worker")!.Checks;
        await Eventually.Until(() => h.Engine.GetState("worker")!.Checks >= checks + 5, what: "checks after the restart");
        after.Should().BeEmpty("the budget is still spent and the slow retry is an hour away: no attempt and no second gave-up");
        RecordingAction.Of(key).Should().HaveCount(2);
    }

    [Fact]
    public async Task DependsOn_DefersRemediationWhileTheDependencyIsDown()
    {
        var gw = Guid.NewGuid().ToString("N");
        var bot = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[gw] = false;
        ScriptedProbe.Script[bot] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: gateway
                every: 100ms
                failure-threshold: 1
                success-threshold: 1
                probe: { type: scripted, with: { key: {{gw}} } }
              - name: bot
                every: 100ms
                failure-threshold: 3
                depends-on: [gateway]
                probe: { type: scripted, with: { key: {{bot}} } }
                remediate: [{ type: record, with: { key: {{bot}} } }]
            """);
        await Eventually.Until(() => h.Engine.GetState("gateway")?.Status == RuleStatus.Down && h.Engine.GetState("bot")?.Status == RuleStatus.Down);
        var checks = h.Engine.GetState("bot")!.Checks;
        await Eventually.Until(() => h.Engine.GetState("bot")!.Checks >= checks + 5, what: "bot checked while the gateway is down");
        RecordingAction.Of(bot).Should().BeEmpty("restarting the bot does not fix the gateway");

        ScriptedProbe.Script[gw] = true;
        await Eventually.Until(() => RecordingAction.Of(bot).Count == 1, what: "remediated once the gateway is back");
    }

    [Fact]
    public async Task SupervisedService_IsStarted_RestartedOnCrash_AndAdoptedAcrossAnEngineRestart()
    {
        using var dir = new TempDir();
        var port = Path.Combine(dir.Path, "port");
        var rules = $$"""
            rules:
              - name: svc
                every: 100ms
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, "{{port}}"], start-period: 0s }
            """;
        await using var h = await EngineHarness.StartAsync(rules, dir);
        var events = Collect(h.Engine);
        await Eventually.Until(() => File.Exists(port), what: "the service listening");
        var pidfile = Path.Combine(dir.Path, "state", "supervise", "svc.pid");
        var pid = int.Parse(File.ReadAllText(pidfile));
        await Eventually.Until(() => h.Engine.GetState("svc")?.Status == RuleStatus.Healthy, what: "healthy");

        using var http = new HttpClient();
        var firstPort = File.ReadAllText(port);
        File.Delete(port);
        await SupervisorPolicyTests.Tell(firstPort, "crash");
        await Eventually.Until(() => File.Exists(port), what: "restarted");
        var newPid = int.Parse(File.ReadAllText(pidfile));
        newPid.Should().NotBe(pid);
        await Eventually.Until(() => events.Any(e => e.Kind == RemediationEventKind.Remediated));
        events.Select(e => e.Name).Should().StartWith(["exited", "remediating", "remediated"]);

        // A graceful stop leaves the service running; the next engine adopts it without a restart.
        await h.StopEngineAsync();
        NativeProcess.Stat(newPid).Should().NotBeNull("the service outlives Sentinel's shutdown");
        await h.StartEngineAsync();
        await Eventually.Until(() => h.Engine.GetState("svc")?.Status == RuleStatus.Healthy && h.Engine.GetState("svc")!.LastCheck!.Description!.Contains($"pid {newPid}"),
            what: "adopted");
        int.Parse(File.ReadAllText(pidfile)).Should().Be(newPid);
        (await http.GetStringAsync($"http://127.0.0.1:{await PortAsync(port)}/health")).Should().Be("ok");

        // Removing the rule stops its service.
        h.WriteConfig("rules: []");
        await Eventually.Until(() => NativeProcess.Stat(newPid) is null or { Zombie: true }, what: "the service stopped with its rule");
    }

    [Fact]
    public async Task AServiceWhoseRecordWasLost_IsStillAdopted_FromItsPidfile_NotStartedTwice()
    {
        using var dir = new TempDir();
        var port = Path.Combine(dir.Path, "port");
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: svc
                every: 100ms
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, "{{port}}"] }
            """, dir);
        await Eventually.Until(() => File.Exists(port), what: "the service listening");
        var pid = int.Parse(File.ReadAllText(Path.Combine(dir.Path, "state", "supervise", "svc.pid")));
        await h.StopEngineAsync();
        // As if Sentinel had been killed before the record of the start reached the state file.
        await using (var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir.Path, "state", "sentinel.db")};Pooling=false"))
        {
            await db.OpenAsync();
            await using var cmd = db.CreateCommand();
            cmd.CommandText = "UPDATE rule_state SET remediation = NULL";
            await cmd.ExecuteNonQueryAsync();
        }
        await h.StartEngineAsync();
        await Eventually.Until(() => h.Engine.GetState("svc")?.Remediation?.Process?.Pid == pid, what: "adopted from the pidfile");
        await Eventually.Until(() => h.Engine.GetState("svc")?.LastCheck?.Description?.Contains($"running (pid {pid}") == true, what: "checked as running");
        System.Diagnostics.Process.GetProcesses().Count(p => NativeProcess.CommandLine(p.Id).Contains(port)).Should().Be(1, "not started a second time");
    }

    [Fact]
    public async Task StopOnExit_StopsTheServiceWithSentinel()
    {
        using var dir = new TempDir();
        var port = Path.Combine(dir.Path, "port");
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: svc
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, "{{port}}"], stop-on-exit: true }
            """, dir);
        await Eventually.Until(() => File.Exists(port));
        var pid = int.Parse(File.ReadAllText(Path.Combine(dir.Path, "state", "supervise", "svc.pid")));
        await h.StopEngineAsync();
        (NativeProcess.Stat(pid) is null or { Zombie: true }).Should().BeTrue();
    }

    private static async Task<string> PortAsync(string file)
    {
        await Eventually.Until(() => File.Exists(file));
        return File.ReadAllText(file);
    }
}
