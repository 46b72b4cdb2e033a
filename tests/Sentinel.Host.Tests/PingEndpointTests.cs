using System.Net;
using System.Text.Json;

namespace Sentinel.Host.Tests;

/// <summary>Sentinel as the dead-man's switch: its healthchecks-compatible /ping endpoint and the `heartbeat` probe.</summary>
public sealed class PingEndpointTests : IDisposable
{
    private const string Job = "0c8983c9-9d73-4ac2-8a4d-9e8e3e6f0b11";
    private const string Bot = "7e1c0c33-4c0d-4a8b-a1a4-3f1f4a9b5a21";
    private const string PingKey = "fqOOd6-F4MMNuCEnzTU01w";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-ping-tests", Guid.NewGuid().ToString("N")[..12]);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public PingEndpointTests() => Directory.CreateDirectory(_dir);

    private async Task<(SentinelProcess Sentinel, string Address)> StartAsync(string? rules = null)
    {
        var config = SentinelProcess.WriteConfig(_dir, rules ?? $$"""
            rules:
              - { name: nightly-job, every: 200ms, failure-threshold: 1, success-threshold: 1, probe: { type: heartbeat, with: { key: {{Job}}, period: 2s, grace: 1s } } }
              - { name: bot-alive, every: 200ms, failure-threshold: 1, success-threshold: 1, probe: { type: heartbeat, with: { key: {{Bot}}, period: 1h, grace: 1s } } }
              - { name: backup, every: 1s, probe: { type: heartbeat, with: { key: {{PingKey}}/backup-db, cron: "0 3 * * *", grace: 30m } } }
            """);
        var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        string? address = null;
        await Eventually.Until(() => (address = Http()) is not null, context: sentinel.Output);
        return (sentinel, address!);
    }

    private string? Http()
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            return doc.RootElement.TryGetProperty("http", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null;
        }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    private string? RuleStatus(string rule)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            var r = doc.RootElement.GetProperty("rules").EnumerateArray().Single(x => x.GetProperty("name").GetString() == rule);
            return r.GetProperty("status").GetString() + ": " + (r.TryGetProperty("lastCheck", out var c) && c.ValueKind == JsonValueKind.Object ? c.GetProperty("description").GetString() : "");
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or KeyNotFoundException) { return null; }
    }

    private async Task<(HttpStatusCode Code, string Body, string? Limit)> Ping(string address, string path, HttpMethod? method = null, string? body = null)
    {
        using var request = new HttpRequestMessage(method ?? HttpMethod.Post, address + path) { Content = body is null ? null : new StringContent(body) };
        using var response = await _http.SendAsync(request);
        return (response.StatusCode, await response.Content.ReadAsStringAsync(), response.Headers.TryGetValues("Ping-Body-Limit", out var v) ? v.First() : null);
    }

    [Fact]
    public async Task Endpoint_AnswersEveryUrlFormAndMethodLikeHealthchecks_AndRefusesOversizeAndFloods()
    {
        var (sentinel, a) = await StartAsync();
        using var _ = sentinel;
        (await Ping(a, $"/ping/{Job}")).Should().Be((HttpStatusCode.OK, "OK", "10000"));
        (await Ping(a, $"/ping/{Job}", HttpMethod.Get)).Code.Should().Be(HttpStatusCode.OK);
        (await Ping(a, $"/ping/{Job}", HttpMethod.Head)).Code.Should().Be(HttpStatusCode.OK);
        foreach (var kind in new[] { "start", "fail", "log", "0", "255" })
            (await Ping(a, $"/ping/{Job}/{kind}", body: "some log text")).Code.Should().Be(HttpStatusCode.OK, kind);
        (await Ping(a, $"/ping/{Job}/256")).Should().Be((HttpStatusCode.BadRequest, "invalid url format", null));
        (await Ping(a, $"/ping/{Job}/start/extra")).Code.Should().Be(HttpStatusCode.BadRequest);
        (await Ping(a, $"/ping/{Guid.NewGuid()}")).Should().Be((HttpStatusCode.NotFound, "not found", null));
        (await Ping(a, $"/ping/{PingKey}/backup-db")).Code.Should().Be(HttpStatusCode.OK);
        (await Ping(a, $"/ping/{PingKey}/backup-db/start")).Code.Should().Be(HttpStatusCode.OK);
        (await Ping(a, $"/ping/{PingKey}/no-such-slug")).Code.Should().Be(HttpStatusCode.NotFound);
        (await Ping(a, $"/ping/{Job}", body: new string('x', 200_000))).Should().Be((HttpStatusCode.RequestEntityTooLarge, "request body too large", null));

        var flood = await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => Ping(a, $"/ping/{Bot}")));
        flood.Count(r => r.Code == HttpStatusCode.TooManyRequests).Should().BeGreaterThan(0, "a flood is rate-limited");
        flood.Where(r => r.Code == HttpStatusCode.TooManyRequests).Should().OnlyContain(r => r.Body == "rate limited");
        (await _http.GetAsync(a + "/health")).StatusCode.Should().Be(HttpStatusCode.OK, "the engine is unaffected");
    }

    [Fact]
    public async Task AMalformedChunkedBody_Is400_WithOneLogLine_NotA500WithAStackTrace()
    {
        var (sentinel, a) = await StartAsync();
        using var _ = sentinel;
        var uri = new Uri(a);
        using var tcp = new System.Net.Sockets.TcpClient();
        await tcp.ConnectAsync(uri.Host, uri.Port);
        var stream = tcp.GetStream();
        var request = $"POST /ping/{Job} HTTP/1.1\r\nHost: {uri.Authority}\r\nTransfer-Encoding: chunked\r\n\r\nzz-not-a-size\r\nhello\r\n0\r\n\r\n";
        await stream.WriteAsync(System.Text.Encoding.ASCII.GetBytes(request));
        var buffer = new byte[4096];
        var read = await stream.ReadAsync(buffer).AsTask().WaitAsync(TimeSpan.FromSeconds(30));
        var answer = System.Text.Encoding.ASCII.GetString(buffer, 0, read);
        answer.Should().StartWith("HTTP/1.1 400");
        await Eventually.Until(() => sentinel.Stdout.Contains("Refused a bad request: POST /ping/"), context: sentinel.Output);
        sentinel.Output().Should().NotContain("   at ", "no stack trace");
        (await _http.GetAsync(a + "/health")).StatusCode.Should().Be(HttpStatusCode.OK);
    }

    [Fact]
    public async Task HeartbeatRule_GoesDownWhenPingsStop_AndWhenAStartDoesNotFinish()
    {
        var (sentinel, a) = await StartAsync();
        using var _ = sentinel;
        // Pinging every 500ms keeps the job (period 2s) healthy.
        using var pinging = new CancellationTokenSource();
        var pinger = Task.Run(async () =>
        {
            while (!pinging.IsCancellationRequested)
            {
                await Ping(a, $"/ping/{Job}");
                try { await Task.Delay(500, pinging.Token); } catch (OperationCanceledException) { }
            }
        });
        await Eventually.Until(() => RuleStatus("nightly-job")?.StartsWith("healthy: last ping") == true, context: sentinel.Output);
        await pinging.CancelAsync();
        await pinger;
        await Eventually.Until(() => RuleStatus("nightly-job")?.StartsWith("down: the last ping was") == true, context: sentinel.Output);

        // The bot reports a start and never finishes: down after the grace, with the run measured once it does.
        (await Ping(a, $"/ping/{Bot}/start?rid=1f0b7b0c-1111-4c1c-9c36-5d3c9b2b8e1a")).Code.Should().Be(HttpStatusCode.OK);
        await Eventually.Until(() => RuleStatus("bot-alive")?.StartsWith("down: started") == true, context: sentinel.Output);
        RuleStatus("bot-alive").Should().Contain("not finished within the grace of 1s");
        (await Ping(a, $"/ping/{Bot}?rid=1f0b7b0c-1111-4c1c-9c36-5d3c9b2b8e1a")).Code.Should().Be(HttpStatusCode.OK);
        await Eventually.Until(() => RuleStatus("bot-alive")?.StartsWith("healthy: last ping 0s ago, run took") == true, context: sentinel.Output);

        (await Ping(a, $"/ping/{Bot}/3", body: "disk full")).Code.Should().Be(HttpStatusCode.OK);
        await Eventually.Until(() => RuleStatus("bot-alive")?.Contains("reported failure") == true, context: sentinel.Output);
        RuleStatus("bot-alive").Should().Contain("(exit status 3): disk full");
    }

    [Fact]
    public async Task AFailPing_TakesEffectWhenItArrives_NotAtTheNextCheck_AndASuccessHealsAsSoon()
    {
        // Checked once an hour: only the ping itself can make the rule see the failure within the test.
        var (sentinel, a) = await StartAsync($$"""
            rules:
              - { name: nightly-job, every: 1h, failure-threshold: 1, success-threshold: 1, probe: { type: heartbeat, with: { key: {{Job}}, period: 1d } } }
            """);
        using var _ = sentinel;
        await Eventually.Until(() => RuleStatus("nightly-job")?.StartsWith("healthy: new: waiting for the first ping") == true, context: sentinel.Output);
        (await Ping(a, $"/ping/{Job}/fail", body: "pg_dump: connection refused")).Code.Should().Be(HttpStatusCode.OK);
        await Eventually.Until(() => RuleStatus("nightly-job") == "down: the job reported failure 0s ago: pg_dump: connection refused", context: sentinel.Output);
        (await Ping(a, $"/ping/{Job}")).Code.Should().Be(HttpStatusCode.OK);
        await Eventually.Until(() => RuleStatus("nightly-job")?.StartsWith("healthy: last ping") == true, context: sentinel.Output);
    }

    public void Dispose()
    {
        _http.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
