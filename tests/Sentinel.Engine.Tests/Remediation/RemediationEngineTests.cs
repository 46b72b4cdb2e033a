using System.Collections.Concurrent;
using Sentinel.Engine.Remediation;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Remediation;

/// <summary>Remediation through the real engine on a fake clock: real state file, real supervised processes; backoff, budget and grace passed by moving the clock.</summary>
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

    private static readonly TimeSpan Every = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan Step = TimeSpan.FromMilliseconds(100);

    [Fact]
    public async Task FailingRule_IsRemediatedOnceDown_NotAgainDuringGrace_AndAgainAfterIt()
    {
        var key = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[key] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: worker
                every: 10s
                failure-threshold: 2
                probe: { type: scripted, with: { key: {{key}} } }
                remediate: [{ type: record, with: { key: {{key}} } }]
                grace: 1h
                backoff: { initial: 1m, max: 1m, jitter: 0 }
            """);
        var events = Collect(h.Engine);
        await h.RunDueAsync();
        RecordingAction.Of(key).Should().BeEmpty("one failure is not yet down");
        await h.AdvanceAsync(Every);
        await Eventually.Until(() => RecordingAction.Of(key).Count == 1, what: "one remediation once down");
        var done = await Eventually.Until(() => events.FirstOrDefault(e => e.Kind == RemediationEventKind.Remediated), e => e is not null);
        done!.Output.Should().Equal("recorded attempt 1 for worker");
        h.Engine.GetState("worker")!.Status.Should().Be(RuleStatus.Down);
        var first = h.Now;

        // 350 more failing checks inside the grace period bring no second attempt.
        await h.AdvanceAsync(TimeSpan.FromMinutes(59));
        RecordingAction.Of(key).Should().Equal(1);
        h.Engine.GetStatus().Rules.Single().Remediation!.Should().BeEquivalentTo(new { Streak = 1, Total = 1L, LastOutcome = "ran record" });

        // After the grace, failure-threshold failures in a row make the next attempt.
        await h.AdvanceUntilAsync(() => RecordingAction.Of(key).Count == 2, Every, what: "the second attempt after the grace");
        (h.Now - first).Should().BeGreaterThanOrEqualTo(TimeSpan.FromHours(1));
        RecordingAction.Of(key).Should().Equal(1, 2);
    }

    [Fact]
    public async Task FailingAction_IsARemediationFailedEvent_WithItsOutput_RetriedAfterItsBackoff_ThenGivesUpOnce()
    {
        var key = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[key] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: worker
                every: 10s
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{key}} } }
                remediate: [{ type: record, with: { key: {{key}}, fail: true } }]
                grace: 0s
                backoff: { initial: 30s, max: 30s, jitter: 0 }
                restart-budget: { max: 2, within: 1h, retry-after: 1h }
            """);
        var events = Collect(h.Engine);
        await h.RunDueAsync();
        await Eventually.Until(() => RecordingAction.Of(key).Count == 1, what: "the first attempt, at once");
        var first = h.Now;
        await h.AdvanceUntilAsync(() => RecordingAction.Of(key).Count == 2, TimeSpan.FromSeconds(5), what: "the second attempt");
        (h.Now - first).Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(30), "the second attempt waits out the backoff");
        await h.AdvanceUntilAsync(() => events.Any(e => e.Kind == RemediationEventKind.GaveUp), Every, what: "gave-up");
        var failed = events.Where(e => e.Kind == RemediationEventKind.RemediationFailed).ToList();
        failed.Select(e => e.Attempt).Should().Equal(1, 2);
        failed[0].Message.Should().Be("record failed: told to fail");
        failed[0].Output.Should().Equal("recorded attempt 1 for worker");

        var checks = h.Engine.GetState("worker")!.Checks;
        await h.AdvanceAsync(TimeSpan.FromMinutes(50));
        h.Engine.GetState("worker")!.Checks.Should().BeGreaterThanOrEqualTo(checks + 300, "checks go on after giving up");
        events.Count(e => e.Kind == RemediationEventKind.GaveUp).Should().Be(1);
        RecordingAction.Of(key).Should().HaveCount(2, "after giving up the next attempt is an hour away");
        await h.AdvanceUntilAsync(() => RecordingAction.Of(key).Count == 3, Every, what: "the slow retry an hour after giving up");
        events.Count(e => e.Kind == RemediationEventKind.GaveUp).Should().Be(1, "a slow retry does not give up again");
    }

    [Fact]
    public async Task GivenUpState_AndCounts_SurviveAnEngineRestart_WithoutASecondGaveUp()
    {
        var key = Guid.NewGuid().ToString("N");
        ScriptedProbe.Script[key] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: worker
                every: 10s
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{key}} } }
                remediate: [{ type: record, with: { key: {{key}}, fail: true } }]
                grace: 0s
                backoff: { initial: 10s, max: 10s, jitter: 0 }
                restart-budget: { max: 2, within: 1h, retry-after: 1h }
            """);
        var events = Collect(h.Engine);
        await h.RunDueAsync();
        await h.AdvanceUntilAsync(() => events.Any(e => e.Kind == RemediationEventKind.GaveUp), Every, what: "gave-up");
        var before = h.Engine.GetState("worker")!.Remediation!;

        await h.StopEngineAsync();
        await h.StartEngineAsync();
        var after = Collect(h.Engine);
        h.Engine.GetState("worker")!.Remediation.Should().BeEquivalentTo(new { before.Streak, before.Total, GaveUp = true, before.NextAttemptAt });
        var checks = h.Engine.GetState("worker")!.Checks;
        await h.AdvanceAsync(TimeSpan.FromMinutes(30));
        h.Engine.GetState("worker")!.Checks.Should().BeGreaterThan(checks + 100);
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
                every: 10s
                failure-threshold: 1
                success-threshold: 1
                probe: { type: scripted, with: { key: {{gw}} } }
              - name: bot
                every: 10s
                failure-threshold: 3
                depends-on: [gateway]
                probe: { type: scripted, with: { key: {{bot}} } }
                remediate: [{ type: record, with: { key: {{bot}} } }]
            """);
        await h.AdvanceAsync(Every * 2);
        h.Engine.GetState("gateway")!.Status.Should().Be(RuleStatus.Down);
        h.Engine.GetState("bot")!.Status.Should().Be(RuleStatus.Down);
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        h.Engine.GetState("bot")!.Checks.Should().BeGreaterThan(60, "the bot is checked while the gateway is down");
        RecordingAction.Of(bot).Should().BeEmpty("restarting the bot does not fix the gateway");

        ScriptedProbe.Script[gw] = true;
        await h.AdvanceUntilAsync(() => RecordingAction.Of(bot).Count == 1, Every, what: "remediated once the gateway is back");
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
        await h.AdvanceUntilAsync(() => h.Engine.GetState("svc")?.Status == RuleStatus.Healthy, Step, what: "healthy");

        using var http = new HttpClient();
        var firstPort = File.ReadAllText(port);
        File.Delete(port);
        await SupervisorPolicyTests.Tell(firstPort, "crash");
        await Eventually.Until(() => File.Exists(port), what: "restarted");
        // The pidfile is written just after the start; on a busy machine the service may have written its port file first.
        var newPid = await Eventually.Until(() => int.Parse(File.ReadAllText(pidfile)), p => p != pid, what: "the new pid in the pidfile");
        await Eventually.Until(() => events.Any(e => e.Kind == RemediationEventKind.Remediated));
        events.Select(e => e.Name).Should().StartWith(["exited", "remediating", "remediated"]);

        // A graceful stop leaves the service running; the next engine adopts it without a restart.
        await h.StopEngineAsync();
        NativeProcess.Stat(newPid).Should().NotBeNull("the service outlives Sentinel's shutdown");
        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => h.Engine.GetState("svc")?.Status == RuleStatus.Healthy && h.Engine.GetState("svc")!.LastCheck!.Description!.Contains($"pid {newPid}"),
            Step, what: "adopted");
        int.Parse(File.ReadAllText(pidfile)).Should().Be(newPid);
        (await http.GetStringAsync($"http://127.0.0.1:{await PortAsync(port)}/health")).Should().Be("ok");

        // Removing the rule stops its service.
        h.WriteConfig("rules: []");
        await h.AdvanceUntilAsync(() => NativeProcess.Stat(newPid) is null or { Zombie: true }, Step, what: "the service stopped with its rule");
    }

    [Fact]
    public async Task EveryCrash_IsAFailedCheckOfItsRule_AndWithAlertOnExited_OneMessageSaysCrashAndRestart()
    {
        using var dir = new TempDir();
        var port = Path.Combine(dir.Path, "port");
        var mail = Guid.NewGuid().ToString("N")[..10];
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 5s }
            channels:
              - { name: {{mail}}, type: test-channel, with: { key: {{mail}} } }
            rules:
              - name: bot
                every: 10s
                failure-threshold: 1
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, "{{port}}"], start-period: 0s }
                notify: [{ channel: {{mail}} }]
                alert-on: [down, exited]
            """, dir);
        await h.RunDueAsync();
        await h.AdvanceUntilAsync(() => File.Exists(port) && h.Engine.GetState("bot")?.Status == RuleStatus.Healthy, Step, what: "the bot up");
        var failures = h.Engine.GetState("bot")!.Failures;
        var firstPort = File.ReadAllText(port);
        File.Delete(port);
        await SupervisorPolicyTests.Tell(firstPort, "crash");
        await h.AdvanceUntilAsync(() => File.Exists(port), Step, what: "restarted");

        // Recorded on the rule whether or not a check saw it down: its history and its failure count.
        await Eventually.Until(async () => (await h.Engine.History!.ChecksAsync("bot", DateTimeOffset.MinValue, DateTimeOffset.MaxValue, 1000, CancellationToken.None))
            .Any(p => p.Description?.StartsWith("exited: the service (pid ") == true), what: "the exit in the history");
        h.Engine.GetState("bot")!.Failures.Should().BeGreaterThan(failures);

        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).SelectMany(n => n.Items).Any(i => i.Kind == "exited"), TimeSpan.FromSeconds(1), what: "the crash told");
        await h.AdvanceAsync(TimeSpan.FromMinutes(1));
        var crash = TestChannel.Of(mail).SelectMany(n => n.Items).Single(i => i.Kind == "exited");
        crash.Description.Should().MatchRegex(@"^bot \(pid \d+\) exited with code 1; restarted in [\d.]+(ms|s): ");
        TestChannel.Of(mail).SelectMany(n => n.Items).Where(i => i.Kind == "exited").Should().ContainSingle("one message per crash");
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
        var pidfile = Path.Combine(dir.Path, "state", "supervise", "svc.pid");
        // The service may listen before Sentinel has written its pidfile (a busy machine): both, before reading it.
        await Eventually.Until(() => File.Exists(port) && File.Exists(pidfile), what: "the service listening, its pidfile written");
        var pid = int.Parse(File.ReadAllText(pidfile));
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
        await h.AdvanceUntilAsync(() => h.Engine.GetState("svc")?.Remediation?.Process?.Pid == pid, Step, what: "adopted from the pidfile");
        await h.AdvanceUntilAsync(() => h.Engine.GetState("svc")?.LastCheck?.Description?.Contains($"running (pid {pid}") == true, Step, what: "checked as running");
        System.Diagnostics.Process.GetProcesses().Count(p => NativeProcess.CommandLine(p.Id).Contains(port)).Should().Be(1, "not started a second time");
    }

    [Fact]
    public async Task AStopOnExitService_ThatGaveUpInThePreviousRun_IsStartedAtOnceWithTheNextSentinel()
    {
        using var dir = new TempDir();
        var port = Path.Combine(dir.Path, "port");
        string Rules(string command) => $$"""
            rules:
              - name: svc
                every: 10s
                supervise: { command: {{command}}, stop-on-exit: true, start-period: 0s }
                backoff: { initial: 1s, max: 1s, jitter: 0 }
                restart-budget: { max: 2, within: 1h, retry-after: 1h }
            """;
        await using var h = await EngineHarness.StartAsync(Rules("[/bin/sh, -c, 'exit 1']"), dir);
        var events = Collect(h.Engine);
        await h.RunDueAsync();
        await h.AdvanceUntilAsync(() => events.Any(e => e.Kind == RemediationEventKind.GaveUp), TimeSpan.FromMilliseconds(500), what: "gave up on the broken command");
        await h.StopEngineAsync();

        // Fixed, and Sentinel started again (./run.sh twice): the old episode's hour-long slow retry does not apply.
        h.WriteConfig(Rules($"[/usr/bin/python3, \"{Service}\", --port-file, \"{port}\"]"));
        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => File.Exists(port), TimeSpan.FromMilliseconds(100), TimeSpan.FromMinutes(1), "the service started with Sentinel");
        h.Engine.GetState("svc")!.Remediation!.GaveUp.Should().BeFalse();
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
