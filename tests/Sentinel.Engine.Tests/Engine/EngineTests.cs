using System.Text.Json;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Engine;

/// <summary>The engine on a fake clock, with a real SQLite file and real files on disk.</summary>
public sealed class EngineTests
{
    private static string Key() => Guid.NewGuid().ToString("N");

    [Fact]
    public async Task ScheduledRule_RunsAtItsInterval_GoesDownAfterTheFailureThreshold_ThenRecovers()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: api
                every: 10s
                failure-threshold: 3
                success-threshold: 2
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        var every = TimeSpan.FromSeconds(10);
        await h.RunDueAsync();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        ScriptedProbe.Script[key] = false;
        await h.AdvanceAsync(every * 2);
        h.Engine.GetState("api")!.Should().Match<RuleState>(s => s.Status == RuleStatus.Failing && s.ConsecutiveFailures == 2);
        await h.AdvanceAsync(every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Down, "the third failure in a row");
        ScriptedProbe.Script[key] = true;
        await h.AdvanceAsync(every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Down, "one success is not enough");
        await h.AdvanceAsync(every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        ScriptedProbe.Runs[key].Should().Be(6, "one check every 10s: 1 healthy + 3 failures + 2 successes");

        // The engine's activity log subscribed to the event bus before the first check: it saw every transition.
        var transitions = await Eventually.Until(() => h.Engine.Activity.Recent(50).Where(e => e.Kind == "transition").Reverse().ToList(), t => t.Count >= 4, what: "events delivered");
        string.Join(" ", transitions.Select(t => t.Message.Split(':')[0])).Should().Be("pending → healthy healthy → failing failing → down down → healthy");
    }

    [Fact]
    public async Task OnTheRealClock_QuartzFiresEachRuleAgainAndAgain_AndTheEngineTicks()
    {
        // The one engine test on the system clock: the Quartz adapter `sentinel run` uses. Awaited, not timed.
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: api
                every: 100ms
                probe: { type: scripted, with: { key: {{key}} } }
              - name: nightly
                cron: "0 0 3 * * ?"
                probe: { type: scripted, with: { key: {{key}}-n } }
            """, realClock: true);
        await Eventually.Until(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= 3, what: "three checks of a 100ms rule");
        await Eventually.Until(() => h.Engine.SchedulerAlive, what: "the scheduler's tick");
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        ScriptedProbe.Runs.GetValueOrDefault(key + "-n").Should().Be(0, "a cron rule waits for its time");
        ScriptedProbe.MaxOverlap[key].Should().Be(1);
    }

    [Fact]
    public async Task SlowRule_NeverRunsTwiceAtOnce()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: slow
                every: 10s
                timeout: 1m
                probe: { type: scripted, with: { key: {{key}}, delay: 35s } }
            """);
        h.Scheduler!.FireWithoutWaiting("slow");
        await Eventually.Until(() => ScriptedProbe.Running.GetValueOrDefault(key) == 1, what: "the first check running");
        (await h.Engine.RunRuleAsync("slow").Within()).Should().BeNull("a rule whose check still runs is not checked beside it");
        await h.AdvanceUntilAsync(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= 3, TimeSpan.FromSeconds(5), waitForChecks: false, what: "three checks done");
        ScriptedProbe.MaxOverlap[key].Should().Be(1);
    }

    [Fact]
    public async Task ACheckAskedForWhileOneRuns_RunsWhenItEnds_NotAtTheNextPeriod()
    {
        // A ping that arrives while its rule's check runs (the probe already read the old ping) must still be judged
        // now: the next scheduled check may be an hour away.
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: hourly
                every: 1h
                timeout: 1m
                probe: { type: scripted, with: { key: {{key}}, delay: 10s } }
            """);
        var start = h.Now;
        h.Scheduler!.FireWithoutWaiting("hourly");
        await Eventually.Until(() => ScriptedProbe.Running.GetValueOrDefault(key) == 1, what: "the scheduled check running");
        ((IRemediationHost)h.Engine).RequestCheck("hourly");
        await h.AdvanceUntilAsync(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= 2, TimeSpan.FromSeconds(1), waitForChecks: false, what: "the asked-for check, after the running one");
        (h.Now - start).Should().BeLessThan(TimeSpan.FromMinutes(1), "it ran when the first ended, not an hour later");
        ScriptedProbe.MaxOverlap[key].Should().Be(1);
    }

    [Fact]
    public async Task StuckProbe_IsAbandonedAndMarked_AndNeverBlocksOtherRules()
    {
        var key = Key();
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: stuck
                every: 10s
                timeout: 2s
                failure-threshold: 1
                probe: { type: hang }
              - name: throws
                every: 10s
                failure-threshold: 1
                probe: { type: throw, with: { message: kaboom } }
              - name: fine
                every: 10s
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        try
        {
            await h.AdvanceUntilAsync(() => h.Engine.GetState("stuck") is { Status: RuleStatus.Down }, TimeSpan.FromSeconds(1), waitForChecks: false, what: "stuck rule down");
            var stuck = h.Engine.GetState("stuck")!;
            stuck.LastCheck!.Stuck.Should().BeTrue();
            stuck.LastCheck.Description.Should().Contain("stuck");
            var runsWhileStuck = ScriptedProbe.Runs.GetValueOrDefault(key);
            await h.AdvanceUntilAsync(() => ScriptedProbe.Runs.GetValueOrDefault(key) >= runsWhileStuck + 5, TimeSpan.FromSeconds(1),
                waitForChecks: false, what: "other rules keep running");
            h.Engine.GetState("fine")!.Status.Should().Be(RuleStatus.Healthy);
            h.Engine.GetState("stuck")!.LastCheck!.Description.Should().StartWith("stuck: the check started", "later checks are skipped while it hangs");

            var thrown = h.Engine.GetState("throws")!;
            thrown.Status.Should().Be(RuleStatus.Down);
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
        await using var h = await EngineHarness.StartAsync($$"""
            rules:
              - name: api
                every: 10s
                failure-threshold: 2
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        await h.AdvanceAsync(TimeSpan.FromSeconds(10));
        var down = h.Engine.GetState("api")!;
        down.Status.Should().Be(RuleStatus.Down);
        await h.StopEngineAsync();

        ScriptedProbe.Script[key] = true;
        await h.AdvanceAsync(TimeSpan.FromMinutes(5));
        await h.StartEngineAsync();
        var resumed = h.Engine.GetState("api")!;
        resumed.Status.Should().Be(RuleStatus.Down, "a down rule is still down after a restart until it recovers");
        resumed.Since.Should().Be(down.Since);
        resumed.Checks.Should().Be(down.Checks);
        await h.RunDueAsync();
        await h.AdvanceAsync(TimeSpan.FromSeconds(10));
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy, "recovered after two good checks (the default success-threshold)");
    }

    [Fact]
    public async Task ProbeState_SurvivesARestart_AndAConfigChange()
    {
        const string rules = """
            rules:
              - name: counter
                every: 10s
                probe: { type: stateful }
            """;
        await using var h = await EngineHarness.StartAsync(rules);
        await h.AdvanceAsync(TimeSpan.FromSeconds(40));
        h.Engine.GetState("counter")!.LastCheck!.Data!["count"].Should().Be(5);
        await h.StopEngineAsync();

        h.WriteConfig(rules.Replace("10s", "15s"));
        await h.StartEngineAsync();
        await h.RunDueAsync();
        h.Engine.GetState("counter")!.LastCheck!.Data!["count"].Should().Be(6, "the count resumes from the persisted state rather than from zero");
    }

    [Fact]
    public async Task StatusJson_IsNeverHalfWritten()
    {
        var rules = string.Join("\n", Enumerable.Range(0, 40).Select(i => $"  - {{ name: r{i}, every: 1s, probe: {{ type: scripted, with: {{ key: {Key()} }} }} }}"));
        await using var h = await EngineHarness.StartAsync("rules:\n" + rules);
        var path = h.Engine.StatusFilePath;
        await h.RunDueAsync();
        await Eventually.Until(() => File.Exists(path), what: "status.json written");

        // Checks go on (and status.json is rewritten) while it is read over and over: no read may see a torn file.
        using var stop = new CancellationTokenSource();
        var checking = Task.Run(async () => { while (!stop.IsCancellationRequested) await h.AdvanceAsync(TimeSpan.FromSeconds(1)); });
        var versions = new HashSet<string>();
        try
        {
            for (var reads = 0; reads < 200 || versions.Count < 5; reads++)
            {
                var bytes = await File.ReadAllBytesAsync(path);
                using var doc = JsonDocument.Parse(bytes); // throws on a torn write
                doc.RootElement.GetProperty("rules").GetArrayLength().Should().Be(40);
                versions.Add(doc.RootElement.GetProperty("now").GetString()!);
                if (reads > 100_000) throw new TimeoutException("status.json was not rewritten while checks ran");
            }
        }
        finally
        {
            await stop.CancelAsync();
            await checking.Within();
        }
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
                every: 10s
                probe: { type: scripted, with: { key: {{key}} } }
            """);
        await h.AdvanceAsync(TimeSpan.FromSeconds(10));
        ScriptedProbe.Runs[key].Should().Be(2);
        (await h.Engine.SetPausedAsync("api", true)).Should().BeTrue();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Paused);
        h.Scheduler!.Scheduled.Should().NotContain("api", "a paused rule has no schedule");
        (await h.Engine.RunRuleAsync("api")).Should().BeNull("a paused rule is not checked");
        await h.AdvanceAsync(TimeSpan.FromMinutes(1));
        ScriptedProbe.Runs[key].Should().Be(2);
        await h.Engine.SetPausedAsync("api", false);
        await h.RunDueAsync();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        ScriptedProbe.Runs[key].Should().Be(3);
    }
}
