using Sentinel.Engine.Notifications;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Notifications;

/// <summary>
/// Incidents and the outbox through the real engine (real SQLite file, recording channels) on a fake clock: every
/// delay (group-wait, escalation, reminders, retries, failover, maintenance) is passed by moving the clock, not waited.
/// </summary>
public sealed class NotificationTests
{
    private static string Key() => Guid.NewGuid().ToString("N")[..10];

    private static string Channels(params string[] keys) => "channels:\n" + string.Join("\n", keys.Select(k => $"  - {{ name: {k}, type: test-channel, with: {{ key: {k} }} }}"));

    // Rule "api" with scripted probe <probe>, notifying channel <mail> at once.
    private static string OneRuleOneChannel(string mail, string probe) => $$"""
        notifications: { group-wait: 0s }
        {{Channels(mail)}}
        rules:
        {{Rule("api", probe, $"[{{ channel: {mail} }}]")}}
        """;

    private static readonly TimeSpan Every = TimeSpan.FromSeconds(10);

    private static string Rule(string name, string probeKey, string notify, string extra = "") => $$"""
          - name: {{name}}
            every: 10s
            failure-threshold: 1
            success-threshold: 1
            probe: { type: scripted, with: { key: {{probeKey}} } }
            notify: {{notify}}
        {{extra}}
        """;

    [Fact]
    public async Task Down_ThenHealthy_SendsOneDownAndOnePairedResolved_PerChannel_AfterTheGroupWait()
    {
        var (mail, sms, probe) = (Key(), Key(), Key());
        ScriptedProbe.Script[probe] = true;
        await using var h = await EngineHarness.StartAsync($"""
            notifications: {"{"} group-wait: 30s {"}"}
            {Channels(mail, sms)}
            rules:
            {Rule("api", probe, $"[{{ channel: {mail} }}, {{ channel: {sms} }}]")}
            """);
        await h.RunDueAsync();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Down);
        var down = h.Now;

        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1 && TestChannel.Of(sms).Count == 1, TimeSpan.FromSeconds(1));
        (h.Now - down).Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(30), "the message waits out group-wait");
        TestChannel.Of(mail)[0].Subject.Should().Be("[Sentinel] DOWN: api");
        TestChannel.Of(mail)[0].Text.Should().Contain("saw: scripted failure").And.Contain("incident: #1");
        h.Engine.GetStatus().Notifications!.OpenIncidents.Should().ContainSingle().Which.Notified.Should().BeEquivalentTo([mail, sms]);

        ScriptedProbe.Script[probe] = true;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2 && TestChannel.Of(sms).Count == 2, TimeSpan.FromSeconds(5));
        TestChannel.Of(sms)[1].Subject.Should().Be("[Sentinel] RESOLVED: api");
        TestChannel.Of(sms)[1].Items.Single().Incident.Should().Be(1);
        h.Engine.GetStatus().Notifications!.OpenIncidents.Should().BeEmpty();
    }

    [Fact]
    public async Task AnOutageThatClearsBeforeItsMessageGoesOut_IsToldOnce_AsBrieflyDown()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = true;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 30s }
            {{Channels(mail)}}
            rules:
            {{Rule("worker", probe, $"[{{ channel: {mail} }}]")}}
            """);
        await h.RunDueAsync();
        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        var down = h.Now;
        ScriptedProbe.Script[probe] = true;
        await h.AdvanceAsync(Every);
        h.Engine.GetState("worker")!.Status.Should().Be(RuleStatus.Healthy, "recovered 10 s later, inside group-wait");

        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(1), what: "the outage told");
        (h.Now - down).Should().BeGreaterThanOrEqualTo(TimeSpan.FromSeconds(30), "it goes when the down message would have: group-wait still groups");
        var n = TestChannel.Of(mail).Single();
        n.Subject.Should().Be("[Sentinel] BRIEFLY DOWN: worker");
        n.Items.Single().Description.Should().Be("down for 10s, resolved: scripted failure");
        n.Text.Should().Contain("was down since");
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        TestChannel.Of(mail).Should().HaveCount(1, "one message: not nothing, and not a down and a resolved");
        h.Engine.GetStatus().Notifications!.Should().Match<NotificationStatus>(s => s.Pending == 0 && s.OpenIncidents.Count == 0);
    }

    [Fact]
    public async Task MinDown_HidesShorterOutages_AndDelaysTheDownMessageOfLongerOnes()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = true;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            rules:
            {{Rule("worker", probe, $"[{{ channel: {mail} }}]", "    min-down: 1m")}}
            """);
        await h.RunDueAsync();
        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every * 3);
        ScriptedProbe.Script[probe] = true;
        await h.AdvanceAsync(Every);
        h.Engine.GetState("worker")!.Status.Should().Be(RuleStatus.Healthy);
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        await Eventually.Until(() => h.Engine.GetStatus().Notifications!.Pending == 0);
        TestChannel.Of(mail).Should().BeEmpty("a 30-second outage is shorter than min-down: 1m");

        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        var down = h.Now;
        await h.AdvanceAsync(TimeSpan.FromSeconds(50));
        TestChannel.Of(mail).Should().BeEmpty("not before min-down has passed");
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(1), what: "the down message once min-down passed");
        (h.Now - down).Should().BeGreaterThanOrEqualTo(TimeSpan.FromMinutes(1));
        TestChannel.Of(mail)[0].Subject.Should().Be("[Sentinel] DOWN: worker");
        ScriptedProbe.Script[probe] = true;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, Every, what: "resolved");
        TestChannel.Of(mail)[1].Subject.Should().Be("[Sentinel] RESOLVED: worker");
    }

    [Fact]
    public async Task FiftyRulesGoingDownTogether_AreOneMessagePerChannel()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = true;
        var rules = string.Join("\n", Enumerable.Range(1, 50).Select(i => Rule($"svc{i:00}", probe, $"[{{ channel: {mail} }}]")));
        await using var h = await EngineHarness.StartAsync($"""
            notifications: {"{"} group-wait: 2s {"}"}
            {Channels(mail)}
            rules:
            {rules}
            """);
        await h.RunDueAsync();
        Enumerable.Range(1, 50).Should().OnlyContain(i => h.Engine.GetState($"svc{i:00}")!.Status == RuleStatus.Healthy);
        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count >= 1, TimeSpan.FromMilliseconds(500));
        var n = TestChannel.Of(mail).Single();
        n.Items.Should().HaveCount(50);
        n.Subject.Should().StartWith("[Sentinel] 50 DOWN: svc");
        n.Short.Should().StartWith("50 DOWN:");
        await Eventually.Until(() => h.Engine.GetStatus().Notifications!.Pending == 0);
        TestChannel.Of(mail).Should().HaveCount(1);
    }

    [Fact]
    public async Task ChildOfADownParent_IsSilent_TheParentListsIt_AndResolvedStaysPaired()
    {
        var (mail, gw, bot) = (Key(), Key(), Key());
        ScriptedProbe.Script[gw] = true;
        ScriptedProbe.Script[bot] = true;
        await using var h = await EngineHarness.StartAsync($"""
            notifications: {"{"} group-wait: 5s {"}"}
            {Channels(mail)}
            rules:
            {Rule("gateway", gw, $"[{{ channel: {mail} }}]")}
            {Rule("bot", bot, $"[{{ channel: {mail} }}]", "    depends-on: [gateway]")}
            """);
        await h.RunDueAsync();
        ScriptedProbe.Script[gw] = false;
        await h.Scheduler!.FireAsync("gateway");
        h.Engine.GetState("gateway")!.Status.Should().Be(RuleStatus.Down);
        ScriptedProbe.Script[bot] = false;
        await h.Scheduler.FireAsync("bot");
        h.Engine.GetState("bot")!.Status.Should().Be(RuleStatus.Down, "down while the gateway's message waits out group-wait");
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(1));
        var down = TestChannel.Of(mail)[0];
        down.Items.Select(i => i.Rule).Should().Equal("gateway");
        down.Items[0].Suppressed.Should().Equal("bot");
        down.Text.Should().Contain("also down (depend on it, not alerted separately): bot");

        // Both recover: only the gateway was told, so only the gateway gets a resolved message.
        ScriptedProbe.Script[bot] = true;
        ScriptedProbe.Script[gw] = true;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, TimeSpan.FromSeconds(5));
        await h.AdvanceUntilAsync(() => h.Engine.GetStatus().Notifications! is { Pending: 0, OpenIncidents.Count: 0 }, TimeSpan.FromSeconds(5));
        TestChannel.Of(mail).Should().HaveCount(2);
        TestChannel.Of(mail)[1].Items.Should().ContainSingle().Which.Should().Match<Sentinel.Abstractions.NotificationItem>(i => i.Rule == "gateway" && i.Kind == "resolved");
    }

    [Fact]
    public async Task PermanentFailure_IsNotRetried_AndGoesToTheFallback()
    {
        var (sms, mail, probe) = (Key(), Key(), Key());
        TestChannel.Script[sms] = ChannelScript.FailPermanent;
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            channels:
              - { name: {{sms}}, type: test-channel, with: { key: {{sms}} }, fallback: {{mail}} }
              - { name: {{mail}}, type: test-channel, with: { key: {{mail}} } }
            rules:
            {{Rule("api", probe, $"[{{ channel: {sms} }}]")}}
            """);
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "delivered through the fallback, with no time passing");
        TestChannel.Attempts[sms].Should().Be(1, "a permanent failure is not retried");
        TestChannel.Of(mail)[0].Subject.Should().Be("[Sentinel] DOWN: api");
        await Eventually.Until(() => h.Engine.GetStatus().Notifications!.FailedOver == 1);
    }

    [Fact]
    public async Task TransientFailures_AreRetried_WithBackoff_AndDeliveredOnce()
    {
        var (mail, probe) = (Key(), Key());
        TestChannel.Script[mail] = ChannelScript.FailTransient;
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            rules:
            {{Rule("api", probe, $"[{{ channel: {mail} }}]")}}
            """);
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Attempts.GetValueOrDefault(mail) == 1, what: "the first try, at once");
        // Two quick retries (1 s, then 2 s), then the outbox's own backoff: the channel is tried again, never dropped.
        await h.AdvanceUntilAsync(() => TestChannel.Attempts.GetValueOrDefault(mail) >= 5, TimeSpan.FromMilliseconds(500));
        TestChannel.Of(mail).Should().BeEmpty();
        h.Engine.GetStatus().Notifications!.Pending.Should().Be(1, "kept in the outbox, not dropped");
        TestChannel.Script[mail] = ChannelScript.Accept;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(1), what: "delivered once the channel works");
        await Eventually.Until(() => h.Engine.GetStatus().Notifications!.Pending == 0);
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        TestChannel.Of(mail).Should().HaveCount(1);
    }

    [Fact]
    public async Task Escalation_WaitsItsDelay_AndAckStopsIt_WhileResolvedStillComes()
    {
        var (mail, sms, pager, probe) = (Key(), Key(), Key(), Key());
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail, sms, pager)}}
            rules:
            {{Rule("api", probe, $"[{{ channel: {mail} }}, {{ channel: {sms}, after: 10m }}, {{ channel: {pager}, after: 1h }}]")}}
            """);
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "the immediate channel");
        h.Engine.GetStatus().Notifications!.Pending.Should().Be(2, "the escalations wait their delay");

        await h.AdvanceAsync(TimeSpan.FromMinutes(9));
        TestChannel.Of(sms).Should().BeEmpty("10 minutes have not passed");
        await h.AdvanceUntilAsync(() => TestChannel.Of(sms).Count == 1, TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(2), "the SMS escalation after 10m");
        TestChannel.Of(sms)[0].Subject.Should().Contain("api");

        var incident = h.Engine.GetStatus().Notifications!.OpenIncidents.Single();
        (await h.Engine.AckAsync(incident.Id, default)).Should().BeTrue();
        h.Engine.GetStatus().Notifications!.Pending.Should().Be(0, "acknowledged: the pager escalation is cancelled");
        (await h.Engine.AckAsync(999, default)).Should().BeFalse();
        await h.AdvanceAsync(TimeSpan.FromHours(1));
        TestChannel.Of(pager).Should().BeEmpty();

        ScriptedProbe.Script[probe] = true;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2 && TestChannel.Of(sms).Count == 2, Every, what: "resolved after ack, on both channels that were told");
        TestChannel.Of(pager).Should().BeEmpty("the pager was never told, so it gets no resolved message");
    }

    [Fact]
    public async Task Reminders_RepeatAtTheirInterval_WhileDown()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            rules:
            {{Rule("api", probe, $"[{{ channel: {mail} }}]", "    reminder-interval: 1h")}}
            """);
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "down");
        await h.AdvanceAsync(TimeSpan.FromMinutes(59));
        TestChannel.Of(mail).Should().HaveCount(1, "no reminder before the interval");
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, Every, TimeSpan.FromMinutes(5), "the first reminder");
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 3, TimeSpan.FromMinutes(1), TimeSpan.FromHours(2), "the second reminder");
        TestChannel.Of(mail).Skip(1).Should().OnlyContain(n => n.Subject == "[Sentinel] STILL DOWN: api");
    }

    [Fact]
    public async Task PendingMessages_SurviveARestart_AndAreDeliveredOnce()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = false;
        TestChannel.Script[mail] = ChannelScript.FailTransient;
        await using var h = await EngineHarness.StartAsync(OneRuleOneChannel(mail, probe));
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Attempts.GetValueOrDefault(mail) >= 1);
        await h.StopEngineAsync();
        TestChannel.Script[mail] = ChannelScript.Accept;
        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(1), what: "delivered after the restart");
        h.Engine.GetStatus().Notifications!.OpenIncidents.Should().ContainSingle("the incident is still open, not opened again");
        await Eventually.Until(() => h.Engine.GetStatus().Notifications!.Pending == 0);
        TestChannel.Of(mail).Should().HaveCount(1);
    }

    [Fact]
    public async Task DuringMaintenance_NothingIsSent_AndWhatIsStillDownIsAlertedWhenItEnds()
    {
        var (mail, probe, other) = (Key(), Key(), Key());
        ScriptedProbe.Script[probe] = false;
        ScriptedProbe.Script[other] = false;
        var start = EngineHarness.Epoch.AddMinutes(-1).ToString("O");
        var end = EngineHarness.Epoch.AddMinutes(30);
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            maintenance:
              - { name: upgrade, rules: [api], start: "{{start}}", end: "{{end:O}}" }
            rules:
            {{Rule("api", probe, $"[{{ channel: {mail} }}]")}}
            {{Rule("web", other, $"[{{ channel: {mail} }}]")}}
            """);
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "web, not in the window, alerted at once");
        TestChannel.Of(mail)[0].Items.Single().Rule.Should().Be("web");
        h.Engine.GetStatus().Notifications!.OpenIncidents.Single(i => i.Rule == "api").MutedBy.Should().Be("upgrade");

        await h.AdvanceAsync(TimeSpan.FromMinutes(29));
        TestChannel.Of(mail).Should().HaveCount(1, "api is muted for the whole window");
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, Every, TimeSpan.FromMinutes(5), "api alerted when the window ended");
        TestChannel.Of(mail)[1].Items.Single().Rule.Should().Be("api");
        h.Now.Should().BeOnOrAfter(end);
    }

    [Fact]
    public async Task DefaultsNotify_TemplateOverride_AndGaveUpAlert()
    {
        var (mail, probe, act) = (Key(), Key(), Key());
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            defaults:
              notify: [{ channel: {{mail}} }]
            channels:
              - name: {{mail}}
                type: test-channel
                with: { key: {{mail}} }
                template: { subject: "{rule} is {kind} on {host}", short: "{count} item" }
            rules:
              - name: worker
                every: 10s
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{probe}} } }
                remediate: [{ type: record, with: { key: {{act}}, fail: true } }]
                grace: 0s
                backoff: { initial: 10s, max: 10s, jitter: 0 }
                restart-budget: { max: 1, within: 1h, retry-after: 1h }
            """);
        await h.RunDueAsync();
        // Down and gave-up come 1 check apart: they may go out as two messages or, grouped, as one.
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).SelectMany(n => n.Items).Any(i => i.Kind == "gave-up"), Every, what: "down, then gave-up");
        var first = TestChannel.Of(mail)[0];
        first.Subject.Should().Be($"worker is down on {Environment.MachineName}", "the template, with the first item's rule and kind");
        first.Short.Should().Be($"{first.Items.Count} item");
        var items = TestChannel.Of(mail).SelectMany(n => n.Items).ToList();
        items.Select(i => i.Kind).Should().Equal("down", "gave-up");
        items[1].Description.Should().StartWith("gave up after 1 attempts");
    }

    [Fact]
    public async Task RestartRateAndFailedRestarts_AlertWhenAskedFor_OnceForTheRate()
    {
        var (mail, probe, act, act2) = (Key(), Key(), Key(), Key());
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            rules:
              - name: flappy
                every: 10s
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{probe}} } }
                remediate: [{ type: record, with: { key: {{act}} } }]
                grace: 0s
                backoff: { initial: 5s, max: 5s, jitter: 0 }
                restart-budget: { max: 100, within: 1h }
                notify: [{ channel: {{mail}} }]
                alert-on: [restart-rate]
                restart-rate: { max: 2, within: 1h }
              - name: broken
                every: 10s
                failure-threshold: 1
                probe: { type: scripted, with: { key: {{probe}} } }
                remediate: [{ type: record, with: { key: {{act2}}, fail: true } }]
                grace: 1h
                notify: [{ channel: {{mail}} }]
                alert-on: [remediation-failed]
            """);
        await h.RunDueAsync();
        await h.AdvanceUntilAsync(() => RecordingAction.Of(act).Count >= 6, Every, what: "six restarts of flappy");
        await h.AdvanceUntilAsync(() => h.Engine.GetStatus().Notifications!.Pending == 0 && TestChannel.Of(mail).Count >= 2, TimeSpan.FromSeconds(1));
        var items = TestChannel.Of(mail).SelectMany(n => n.Items).ToList();
        items.Where(i => i.Rule == "flappy").Should().ContainSingle("the rate alert comes once per window, and down is not asked for")
            .Which.Should().Match<Sentinel.Abstractions.NotificationItem>(i => i.Kind == "restart-rate" && i.Description!.StartsWith("remediated 3 times within 1h (limit 2)"));
        items.Where(i => i.Rule == "broken").Should().ContainSingle().Which.Kind.Should().Be("remediation-failed");
        items.Single(i => i.Rule == "broken").Description.Should().Be("record failed: told to fail");
    }

    [Fact]
    public async Task AChannelThatKeepsFailing_FailsOverAfterItsDelay_AndWithoutFallbackExpires()
    {
        var (flaky, backup, dead, probe) = (Key(), Key(), Key(), Key());
        TestChannel.Script[flaky] = ChannelScript.FailTransient;
        TestChannel.Script[dead] = ChannelScript.FailTransient;
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            channels:
              - { name: {{flaky}}, type: test-channel, with: { key: {{flaky}} }, fallback: {{backup}}, failover-after: 2m }
              - { name: {{backup}}, type: test-channel, with: { key: {{backup}} } }
              - { name: {{dead}}, type: test-channel, with: { key: {{dead}} }, give-up-after: 10m }
            rules:
            {{Rule("api", probe, $"[{{ channel: {flaky} }}, {{ channel: {dead} }}]")}}
            """);
        await h.RunDueAsync();
        var down = h.Now;
        await h.AdvanceUntilAsync(() => TestChannel.Of(backup).Count == 1, TimeSpan.FromSeconds(5), what: "failed over to the backup");
        (h.Now - down).Should().BeGreaterThanOrEqualTo(TimeSpan.FromMinutes(2), "the channel is retried for its failover-after first");
        TestChannel.Of(backup)[0].Subject.Should().Be("[Sentinel] DOWN: api");
        await h.AdvanceUntilAsync(() => h.Engine.GetStatus().Notifications!.Expired == 1, TimeSpan.FromSeconds(30), what: "the dead channel's message expired");
        (h.Now - down).Should().BeGreaterThanOrEqualTo(TimeSpan.FromMinutes(10), "a message is kept until its channel's give-up-after");
        h.Engine.GetStatus().Notifications!.Should().BeEquivalentTo(new { Pending = 0L, FailedOver = 1L, Expired = 1L });
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task RemovingADownRule_ClosesItsIncident_WithAResolvedMessageSayingSo(bool whileStopped)
    {
        var (mail, probe, other) = (Key(), Key(), Key());
        ScriptedProbe.Script[probe] = false;
        ScriptedProbe.Script[other] = true;
        await using var h = await EngineHarness.StartAsync($$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            rules:
            {{Rule("api", probe, $"[{{ channel: {mail} }}]")}}
            {{Rule("web", other, $"[{{ channel: {mail} }}]")}}
            """);
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "api down told");
        var without = $$"""
            notifications: { group-wait: 0s }
            {{Channels(mail)}}
            rules:
            {{Rule("web", other, $"[{{ channel: {mail} }}]")}}
            """;
        if (whileStopped)
        {
            await h.StopEngineAsync();
            h.WriteConfig(without);
            await h.StartEngineAsync();
        }
        else h.WriteConfig(without);
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, TimeSpan.FromMilliseconds(100), what: "the resolved message of the removed rule");
        var resolved = TestChannel.Of(mail)[1];
        resolved.Subject.Should().Be("[Sentinel] RESOLVED: api");
        resolved.Items.Single().Description.Should().Be("the rule was removed from the configuration");
        resolved.Items.Single().Incident.Should().Be(TestChannel.Of(mail)[0].Items.Single().Incident);
        await Eventually.Until(() => h.Engine.GetStatus().Notifications!.OpenIncidents.Count == 0, what: "no incident left open for ever");
    }

    [Fact]
    public async Task ResolvedMessage_ComesAfterARestart_OnTheChannelsThatWereTold()
    {
        var (mail, probe) = (Key(), Key());
        await using var h = await DownToldAsync(mail, probe);
        await h.StopEngineAsync();
        ScriptedProbe.Script[probe] = true;
        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, Every, what: "resolved after the restart");
        TestChannel.Of(mail)[1].Subject.Should().Be("[Sentinel] RESOLVED: api");
        TestChannel.Of(mail)[1].Items.Single().Incident.Should().Be(TestChannel.Of(mail)[0].Items.Single().Incident);
    }

    // A stop while the channel has not answered leaves the outbox as a SIGKILL mid-send does: the message may have arrived.
    // Rule "api" down and its DOWN arrived on <mail>; with slowAnswer, the channel has not answered yet (it is in flight).
    private static async Task<EngineHarness> DownToldAsync(string mail, string probe, bool slowAnswer = false)
    {
        ScriptedProbe.Script[probe] = false;
        if (slowAnswer) TestChannel.Holds[mail] = new();
        var h = await EngineHarness.StartAsync(OneRuleOneChannel(mail, probe));
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "the DOWN arrived");
        return h;
    }

    [Fact]
    public async Task KilledWhileADownWasBeingSent_AfterTheRuleRecovered_TheResolvedFollows_AndTheDownIsNotRepeated()
    {
        var (mail, probe) = (Key(), Key());
        await using var h = await DownToldAsync(mail, probe, slowAnswer: true);
        ScriptedProbe.Script[probe] = true;
        await h.AdvanceAsync(Every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        await h.StopEngineAsync();
        TestChannel.Holds.TryRemove(mail, out _);

        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, TimeSpan.FromSeconds(1), what: "the message after the restart");
        var second = TestChannel.Of(mail)[1];
        second.Subject.Should().Be("[Sentinel] BRIEFLY DOWN: api", "the DOWN may or may not have arrived: the one message right either way closes it");
        second.Items.Single().Description.Should().Be("down for 10s, resolved: scripted failure");
        second.Items.Single().Incident.Should().Be(TestChannel.Of(mail)[0].Items.Single().Incident);
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        TestChannel.Of(mail).Should().HaveCount(2, "no DOWN repeated for an outage that is over");
        h.Engine.GetStatus().Notifications!.Pending.Should().Be(0);
    }

    [Fact]
    public async Task KilledWhileADownWasBeingSent_ItIsSentAgainOnce_AndItsIncidentIsResolvedOnThatChannel()
    {
        var (mail, probe) = (Key(), Key());
        await using var h = await DownToldAsync(mail, probe, slowAnswer: true);
        await h.StopEngineAsync();
        TestChannel.Holds.TryRemove(mail, out _);
        TestChannel.Script[mail] = ChannelScript.FailTransient;

        await h.StartEngineAsync();
        await h.AdvanceAsync(TimeSpan.FromSeconds(30));
        TestChannel.Of(mail).Should().HaveCount(1, "the channel fails for now");
        TestChannel.Script[mail] = ChannelScript.Accept;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, TimeSpan.FromSeconds(5), what: "the DOWN sent again");
        ScriptedProbe.Script[probe] = true;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 3, Every, what: "resolved");
        TestChannel.Of(mail).Select(n => n.Subject).Should().Equal("[Sentinel] DOWN: api", "[Sentinel] DOWN: api", "[Sentinel] RESOLVED: api");
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        TestChannel.Of(mail).Should().HaveCount(3, "one duplicate at most: the message that was in flight");
    }

    [Fact]
    public async Task AReminderInFlightWhenTheRuleRecovers_GetsOneResolved_AfterIt()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = false;
        await using var h = await EngineHarness.StartAsync(OneRuleOneChannel(mail, probe).Replace("notify: [", "reminder-interval: 1m\n    notify: ["));
        await h.RunDueAsync();
        await Eventually.Until(() => TestChannel.Of(mail).Count == 1, what: "down");
        TestChannel.Holds[mail] = new();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, TimeSpan.FromSeconds(10), what: "the reminder arrived; its answer is slow");
        ScriptedProbe.Script[probe] = true;
        await h.AdvanceAsync(Every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        await h.AdvanceAsync(TimeSpan.FromMinutes(1));
        TestChannel.Of(mail).Should().HaveCount(2, "the resolved message waits for the reminder it follows");
        TestChannel.Holds.TryRemove(mail, out var hold);
        hold!.SetResult();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 3, TimeSpan.FromSeconds(1), what: "resolved");
        await h.AdvanceAsync(TimeSpan.FromMinutes(10));
        TestChannel.Of(mail).Select(n => n.Subject).Should().Equal("[Sentinel] DOWN: api", "[Sentinel] STILL DOWN: api", "[Sentinel] RESOLVED: api");
    }

    // The state persister writes a transition at once; the incident is written when its event is handled. These two
    // put the file in the state a SIGKILL between the two writes leaves (the SQL below is that write, done by hand).
    private static void Sql(EngineHarness h, string sql)
    {
        var db = Directory.GetFiles(h.Dir.Path, "sentinel.db", SearchOption.AllDirectories).Single();
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={db};Pooling=false");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    [Fact]
    public async Task KilledAfterTheDownStateWasWritten_ButBeforeItsIncident_TheNextStartOpensItAndTellsIt()
    {
        var (mail, probe) = (Key(), Key());
        ScriptedProbe.Script[probe] = true;
        await using var h = await EngineHarness.StartAsync(OneRuleOneChannel(mail, probe));
        await h.RunDueAsync();
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        await h.StopEngineAsync();
        Sql(h, "UPDATE rule_state SET status = 'down', consecutive_failures = 1");
        ScriptedProbe.Script[probe] = false;

        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 1, TimeSpan.FromSeconds(1), what: "the outage told, though no transition is left to see");
        TestChannel.Of(mail)[0].Subject.Should().Be("[Sentinel] DOWN: api");
        h.Engine.GetStatus().Notifications!.OpenIncidents.Should().ContainSingle();
    }

    [Fact]
    public async Task KilledAfterTheHealthyStateWasWritten_ButBeforeItsIncidentClosed_TheNextStartResolvesIt_AndTheNextOutageIsTold()
    {
        var (mail, probe) = (Key(), Key());
        await using var h = await DownToldAsync(mail, probe);
        await h.StopEngineAsync();
        Sql(h, "UPDATE rule_state SET status = 'healthy', consecutive_failures = 0, consecutive_successes = 1");
        ScriptedProbe.Script[probe] = true;

        await h.StartEngineAsync();
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 2, TimeSpan.FromSeconds(1), what: "the resolved message");
        TestChannel.Of(mail)[1].Subject.Should().Be("[Sentinel] RESOLVED: api");
        h.Engine.GetStatus().Notifications!.OpenIncidents.Should().BeEmpty("no incident left open for ever");
        ScriptedProbe.Script[probe] = false;
        await h.AdvanceUntilAsync(() => TestChannel.Of(mail).Count == 3, Every, what: "the next outage, told (not swallowed by the stale incident)");
        TestChannel.Of(mail)[2].Subject.Should().Be("[Sentinel] DOWN: api");
    }
}
