using System.Text.Json;

namespace Sentinel.Host.Tests;

/// <summary>`sentinel notify-test` and `sentinel ack` as an operator runs them.</summary>
public sealed class NotifyCommandsTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-notify-cli", Guid.NewGuid().ToString("N")[..12]);

    public NotifyCommandsTests() => Directory.CreateDirectory(_dir);

    private string Config() => SentinelProcess.WriteConfig(_dir, """
            notifications: { group-wait: 0s }
            channels:
              - { name: audit, type: file, with: { path: alerts.jsonl } }
              - { name: pager, type: file, with: { path: pager.jsonl } }
            rules:
              - name: api
                every: 200ms
                failure-threshold: 1
                probe: { type: http, with: { url: "http://127.0.0.1:1/health" } }
                notify: [{ channel: audit }, { channel: pager, after: 1h }]
            """);

    [Fact]
    public async Task NotifyTest_SendsOnTheChannel_AndSaysWhatHappened()
    {
        var config = Config();
        var (exit, stdout, stderr) = await SentinelProcess.RunAsync(_dir, "notify-test", "audit", "--config", config);
        exit.Should().Be(0, stderr);
        stdout.Should().Contain("Sending a test message on 'audit' (file)...").And.Contain($"appended to {Path.Combine(_dir, "alerts.jsonl")}").And.Contain("ok: 'audit' accepted the message");
        var line = JsonDocument.Parse(File.ReadAllLines(Path.Combine(_dir, "alerts.jsonl")).Single()).RootElement;
        line.GetProperty("test").GetBoolean().Should().BeTrue();
        line.GetProperty("subject").GetString().Should().StartWith("[Sentinel] Test message from ");

        var (unknown, _, err) = await SentinelProcess.RunAsync(_dir, "notify-test", "adit", "--config", config);
        unknown.Should().Be(2);
        err.Should().Contain("no channel named 'adit' (did you mean 'audit'?)");
    }

    [Fact]
    public async Task Ack_StopsTheEscalation_OfTheRunningSentinel()
    {
        var config = Config();
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => File.Exists(Path.Combine(_dir, "alerts.jsonl")) && Pending() == 1, context: sentinel.Output);
        var (exit, stdout, stderr) = await SentinelProcess.RunAsync(_dir, "ack", "1", "--config", config);
        exit.Should().Be(0, stderr);
        stdout.Should().Contain("incident #1 acknowledged");
        // The pager escalation is cancelled (status.json shows it at its next write).
        // The log line and status.json are written independently (and stdout is read asynchronously): await both.
        await Eventually.Until(() => Pending() == 0 && sentinel.Stdout.Contains("Rule api: incident #1 acknowledged: escalations and reminders stop"), context: sentinel.Output);

        var (missing, _, err) = await SentinelProcess.RunAsync(_dir, "ack", "99", "--config", config);
        missing.Should().Be(1);
        err.Should().Contain("there is no open incident #99");
    }

    private long? Pending()
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            return doc.RootElement.GetProperty("notifications").GetProperty("pending").GetInt64();
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException) { return null; }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
