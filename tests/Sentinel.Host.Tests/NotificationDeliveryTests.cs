using System.Text.Json;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Host.Tests;

/// <summary>The outbox end to end: the real `sentinel`, a real SMTP server, real crashes.</summary>
public sealed class NotificationDeliveryTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-notify-tests", Guid.NewGuid().ToString("N")[..12]);

    public NotificationDeliveryTests() => Directory.CreateDirectory(_dir);

    private string Config(int smtpPort, string groupWait) => MailConfig(smtpPort, groupWait, """
              - name: api
                every: 200ms
                failure-threshold: 1
                probe: { type: http, with: { url: "http://127.0.0.1:1/health" } }
                notify: [{ channel: ops-mail }]
            """);

    // The ops-mail channel to a local SMTP server, and the given rules (and any extra top-level keys before them).
    private string MailConfig(int smtpPort, string groupWait, string rules, string extra = "") => SentinelProcess.WriteConfig(_dir, $$"""
            {{extra}}
            notifications: { group-wait: {{groupWait}} }
            {{SentinelProcess.MailChannel(smtpPort)}}
            rules:
            {{rules}}
            """);

    [Fact]
    public async Task SentinelKilledBetweenEnqueueAndDelivery_DeliversOnceAfterRestart()
    {
        using var smtp = await SmtpServer.StartAsync();
        var config = Config(smtp.Port, "3s");
        using (var first = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            // The message is in the outbox (status.json is written after the database) and waits for its group.
            await Eventually.Until(() => Pending() == 1, context: first.Output);
            first.Signal("KILL");
            await first.WaitForExitAsync(TimeSpan.FromSeconds(10));
        }
        smtp.Messages().Should().BeEmpty();

        using var second = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => smtp.Messages().Count == 1, context: second.Output);
        // The outbox holds one sent message and nothing pending: there is nothing left that could be sent twice.
        await Eventually.Until(() => Pending() == 0 && Count("sent") == 1, context: second.Output);
        smtp.Messages().Should().ContainSingle().Which.Subject.Should().Be("[Sentinel] DOWN: api");
    }

    [Fact]
    public async Task ATracebackThatClearsAtTheNextCheck_IsStillMailed_Once()
    {
        // The log shows one error, the next check sees nothing new: the rule is healthy again long before group-wait
        // ends. Nothing that went down may go untold, so one mail says it was down and is resolved, with the line.
        using var smtp = await SmtpServer.StartAsync();
        var log = Path.Combine(_dir, "bot.log");
        File.WriteAllText(log, "INFO started\n");
        var config = MailConfig(smtp.Port, "3s", $$"""
              - name: bot-errors
                every: 200ms
                failure-threshold: 1
                success-threshold: 1
                probe: { type: log-regex, with: { path: "{{log}}", pattern: "Traceback|ERROR", context-after: 10 } }
                notify: [{ channel: ops-mail }]
            """);
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => sentinel.Stdout.Contains("Rule bot-errors: Pending -> Healthy"), context: sentinel.Output);
        File.AppendAllText(log, "Traceback (most recent call last):\n  File \"bot.py\", line 42, in vote\n    user = users[ctx.author]\nKeyError: 'alice'\n"
            + "2026-12-01 10:00:02 INFO handling /help\n");
        await Eventually.Until(() => sentinel.Stdout.Contains("Rule bot-errors: Down -> Healthy"), context: sentinel.Output);
        await Eventually.Until(() => smtp.Messages().Count == 1, context: sentinel.Output);
        await Eventually.Until(() => Pending() == 0, context: sentinel.Output);
        var mail = smtp.Messages().Single();
        mail.Subject.Should().Be("[Sentinel] BRIEFLY DOWN: bot-errors");
        mail.TextBody.Should().Contain("resolved: 1 line(s) matching").And.Contain("Traceback (most recent call last):")
            .And.Contain("| KeyError: 'alice'", "the block after the match, to act on").And.NotContain("handling /help", "the next record is not part of it");
        Count("sent").Should().Be(1, "one message, not a down and a resolved");
    }

    [Fact]
    public async Task ATraceback_IsMailed_WithTheDefaultThresholds()
    {
        // defaults.failure-threshold: 3 is for flapping targets; a log line is an event that the next check no
        // longer sees, so a log-regex rule that says nothing goes down at the first match.
        using var smtp = await SmtpServer.StartAsync();
        var log = Path.Combine(_dir, "bot.log");
        File.WriteAllText(log, "INFO started\n");
        var config = MailConfig(smtp.Port, "1s", $$"""
              - name: bot-errors
                every: 200ms
                probe: { type: log-regex, with: { path: "{{log}}", pattern: Traceback } }
                notify: [{ channel: ops-mail }]
            """, extra: "defaults: { failure-threshold: 3 }");
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => sentinel.Stdout.Contains("Rule bot-errors: Pending -> Healthy"), context: sentinel.Output);
        File.AppendAllText(log, "Traceback (most recent call last):\nKeyError: 'alice'\n");
        await Eventually.Until(() => smtp.Messages().Count == 1, context: sentinel.Output);
        smtp.Messages().Single().Subject.Should().Be("[Sentinel] BRIEFLY DOWN: bot-errors");
    }

    [Theory]
    [InlineData("rename")]
    [InlineData("copytruncate")]
    public async Task AnErrorLoggedWhileSentinelWasStopped_InAFileRotatedMeanwhile_IsStillSeen(string mode)
    {
        var log = Path.Combine(_dir, "bot.log");
        File.WriteAllText(log, string.Concat(Enumerable.Repeat("2026-12-01 10:00:00 INFO handling /help\n", 20)));
        var config = SentinelProcess.WriteConfig(_dir, $$"""
            rules:
              - name: bot-errors
                every: 200ms
                failure-threshold: 1
                probe: { type: log-regex, with: { path: "{{log}}", pattern: "ERROR" } }
            """);
        using (var first = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => first.Stdout.Contains("Rule bot-errors: Pending -> Healthy"), context: first.Output);
            first.Signal("TERM");
            await first.ExpectExitAsync(0, TimeSpan.FromSeconds(30));
        }
        File.AppendAllText(log, "2026-12-01 10:05:00 ERROR lost the gateway connection\n");
        if (mode == "rename") File.Move(log, log + ".1");
        else
        {
            File.Copy(log, log + ".1");
            using var f = new FileStream(log, FileMode.Open, FileAccess.Write);
            f.SetLength(0);
        }
        File.AppendAllText(log, "2026-12-01 10:06:00 INFO started again\n");

        using var second = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => second.Stdout.Contains("Rule bot-errors: Healthy -> Down"), context: second.Output);
        second.Stdout.Should().Contain("last: 2026-12-01 10:05:00 ERROR lost the gateway connection");
    }

    [Fact]
    public async Task SmtpServerDownForAWhile_ThenUp_DeliversOnce()
    {
        var port = SmtpServer.FreePort();
        var config = Config(port, "0s");
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => sentinel.Stdout.Contains("Channel ops-mail failed (will retry)"), context: sentinel.Output);
        Pending().Should().Be(1);

        using var smtp = await SmtpServer.StartAsync(port);
        await Eventually.Until(() => smtp.Messages().Count == 1, context: sentinel.Output);
        await Eventually.Until(() => Pending() == 0, context: sentinel.Output);
        smtp.Messages().Should().ContainSingle().Which.Subject.Should().Be("[Sentinel] DOWN: api");
    }

    private long? Pending() => Count("pending");

    private long? Count(string what)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            return doc.RootElement.TryGetProperty("notifications", out var n) && n.ValueKind == JsonValueKind.Object ? n.GetProperty(what).GetInt64() : null;
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException) { return null; }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
