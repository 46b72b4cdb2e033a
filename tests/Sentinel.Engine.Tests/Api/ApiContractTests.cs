using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.Api;

/// <summary>The HTTP API over a real Kestrel server on a free loopback port, in front of a real engine on a fake clock.</summary>
public sealed class ApiContractTests
{
    private const string Token = "t0ken-for-the-api-tests";
    private const string Secret = "hunter2-Sup3r-S3cret";

    private static readonly TimeSpan Every = TimeSpan.FromSeconds(10);

    private static string Key() => Guid.NewGuid().ToString("N")[..10];

    private static string Config(string probe, string record, string mail) => $$"""
        notifications: { group-wait: 0s }
        channels:
          - { name: mail, type: test-channel, with: { key: {{mail}} } }
        rules:
          - name: api
            every: 10s
            failure-threshold: 1
            success-threshold: 1
            probe: { type: scripted, with: { key: {{probe}}, password: "{{Secret}}", say: "login as admin:{{Secret}} answered" } }
            remediate: [{ type: record, with: { key: {{record}} } }]
            restart-budget: { max: 100, within: 1m }
            notify: [{ channel: mail }]
          - name: worker
            cron: "0 0 1 1 *"    # never during a test: only the API runs it
            probe: { type: scripted, with: { key: {{probe}}-w } }
        """;

    private static async Task<(EngineHarness H, HttpClient Http, string Probe, string Record, string Mail)> StartAsync()
    {
        var (probe, record, mail) = (Key(), Key(), Key());
        ScriptedProbe.Script[probe] = true;
        var h = await EngineHarness.StartAsync(Config(probe, record, mail));
        var address = await h.ServeAsync(Token);
        var http = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(20) };
        await h.AdvanceAsync(Every * 2);
        h.Engine.GetState("api").Should().Match<RuleState>(s => s.Status == RuleStatus.Healthy && s.Checks == 3);
        return (h, http, probe, record, mail);
    }

    private static async Task<JsonElement> GetJsonAsync(HttpClient http, string path)
    {
        using var response = await http.GetAsync(path);
        response.StatusCode.Should().Be(HttpStatusCode.OK, path);
        response.Content.Headers.ContentType!.MediaType.Should().Be("application/json", path);
        return JsonDocument.Parse(await response.Content.ReadAsStringAsync()).RootElement.Clone();
    }

    private static HttpRequestMessage Post(string path, string? token)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path);
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return request;
    }

    [Fact]
    public async Task EveryReadRoute_Answers_WithoutAToken()
    {
        var (h, http, _, _, _) = await StartAsync();
        await using var _h = h;
        using var _http = http;

        var page = await http.GetAsync("/");
        page.StatusCode.Should().Be(HttpStatusCode.OK);
        page.Content.Headers.ContentType!.MediaType.Should().Be("text/html");
        page.Headers.GetValues("Content-Security-Policy").Single().Should().Contain("default-src 'self'");
        (await page.Content.ReadAsStringAsync()).Should().Contain("<title>Sentinel</title>").And.NotContainAny(["src=\"http", "href=\"http", "url(http", "import "]);

        (await GetJsonAsync(http, "/health")).GetProperty("status").GetString().Should().Be("ok");
        (await http.GetStringAsync("/api")).Should().Contain("POST /api/rules/{rule}/pause");

        var status = await GetJsonAsync(http, "/api/status?recent=5");
        var api = status.GetProperty("rules").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "api");
        api.GetProperty("status").GetString().Should().Be("healthy");
        api.GetProperty("uptime").GetProperty("day").GetDouble().Should().Be(1);
        api.GetProperty("recent").GetProperty("ms").GetArrayLength().Should().BeInRange(1, 5);
        api.GetProperty("lastCheck").GetProperty("data").GetProperty("rule").GetString().Should().Be("api");

        (await GetJsonAsync(http, "/api/rules")).EnumerateArray().Select(r => r.GetProperty("name").GetString()).Should().Equal("api", "worker");
        var detail = await GetJsonAsync(http, "/api/rules/api");
        detail.GetProperty("definition").GetProperty("probe").GetProperty("type").GetString().Should().Be("scripted");
        detail.GetProperty("definition").GetProperty("remediate")[0].GetProperty("type").GetString().Should().Be("record");
        detail.GetProperty("state").GetProperty("recent").GetProperty("ms").GetArrayLength().Should().BeGreaterThan(0);

        var history = await GetJsonAsync(http, "/api/rules/api/history?since=1h&limit=3");
        history.GetProperty("checks").GetArrayLength().Should().Be(3);
        history.GetProperty("checks")[0].GetProperty("state").GetString().Should().Be("healthy");
        var hourly = await GetJsonAsync(http, "/api/rules/api/history?since=2h&resolution=hour");
        hourly.GetProperty("hours").EnumerateArray().Sum(h => h.GetProperty("checks").GetInt64()).Should().BeGreaterThan(2, "the checks of the last hours, whichever hour they fell in");

        (await GetJsonAsync(http, "/api/incidents")).GetArrayLength().Should().Be(0);
        (await GetJsonAsync(http, "/api/plugins")).GetProperty("plugins").EnumerateArray()
            .SelectMany(p => p.GetProperty("types").EnumerateArray().Select(t => t.GetString())).Should().Contain("probe:scripted");
        var config = await GetJsonAsync(http, "/api/config");
        config.GetProperty("valid").GetBoolean().Should().BeTrue();
        config.GetProperty("file").GetString().Should().Be(h.ConfigPath);
        (await GetJsonAsync(http, "/api/events")).EnumerateArray().Select(e => e.GetProperty("kind").GetString()).Should().Contain("transition");

        var missing = await http.GetAsync("/api/rules/apj");
        missing.StatusCode.Should().Be(HttpStatusCode.NotFound);
        (await missing.Content.ReadAsStringAsync()).Should().Contain("did you mean 'api'");
        (await http.GetAsync("/api/rules/api/history?since=soon")).StatusCode.Should().Be(HttpStatusCode.BadRequest);
        (await http.GetAsync("/api/incidents/999")).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task ChangingCalls_WithoutOrWithAWrongToken_AreRefused_AndChangeNothing()
    {
        var (h, http, probe, record, _) = await StartAsync();
        await using var _h = h;
        using var _http = http;

        foreach (var path in new[] { "/api/rules/api/pause", "/api/rules/api/run", "/api/rules/api/remediate", "/api/incidents/1/ack", "/api/rules/api/resume" })
        {
            foreach (var token in new string?[] { null, "wrong", Token + "x" })
            {
                using var response = await http.SendAsync(Post(path, token));
                response.StatusCode.Should().Be(HttpStatusCode.Unauthorized, $"{path} with token {token ?? "(none)"}");
                response.Headers.WwwAuthenticate.ToString().Should().StartWith("Bearer");
                (await response.Content.ReadAsStringAsync()).Should().Contain(token is null ? "Authorization: Bearer" : "wrong");
            }
        }
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        RecordingAction.Runs.ContainsKey(record).Should().BeFalse("no remediation ran");

        h.Engine.ApiToken = null; // an engine without a token refuses every changing call
        using var noToken = await http.SendAsync(Post("/api/rules/api/pause", "anything"));
        noToken.StatusCode.Should().Be(HttpStatusCode.Unauthorized);
        (await noToken.Content.ReadAsStringAsync()).Should().Contain("no API token");
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Healthy);
        _ = probe;
    }

    [Fact]
    public async Task ChangingCalls_WithTheToken_PauseResumeRunRemediateAndAck()
    {
        var (h, http, probe, record, mail) = await StartAsync();
        await using var _h = h;
        using var _http = http;

        (await http.SendAsync(Post("/api/rules/worker/pause", Token))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await GetJsonAsync(http, "/api/rules/worker")).GetProperty("state").GetProperty("status").GetString().Should().Be("paused");
        (await http.SendAsync(Post("/api/rules/worker/run", Token))).StatusCode.Should().Be(HttpStatusCode.Conflict, "a paused rule is not run");
        (await http.SendAsync(Post("/api/rules/worker/resume", Token))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await GetJsonAsync(http, "/api/rules/worker")).GetProperty("state").GetProperty("status").GetString().Should().NotBe("paused");

        var before = h.Engine.GetState("worker")!.Checks;
        using (var run = await http.SendAsync(Post("/api/rules/worker/run", Token)))
        {
            run.StatusCode.Should().Be(HttpStatusCode.OK);
            var body = JsonDocument.Parse(await run.Content.ReadAsStringAsync()).RootElement;
            body.GetProperty("check").GetProperty("status").GetString().Should().Be("healthy");
            body.GetProperty("check").GetProperty("description").GetString().Should().Be("scripted ok");
        }
        h.Engine.GetState("worker")!.Checks.Should().Be(before + 1);

        using (var remediate = await http.SendAsync(Post("/api/rules/api/remediate", Token)))
        {
            remediate.StatusCode.Should().Be(HttpStatusCode.OK);
            JsonDocument.Parse(await remediate.Content.ReadAsStringAsync()).RootElement.GetProperty("remediated").GetBoolean().Should().BeTrue();
        }
        RecordingAction.Runs[record].Should().HaveCount(1);
        (await http.SendAsync(Post("/api/rules/worker/remediate", Token))).StatusCode.Should().Be(HttpStatusCode.Conflict, "worker has no remediation");
        (await http.SendAsync(Post("/api/rules/nope/pause", Token))).StatusCode.Should().Be(HttpStatusCode.NotFound);

        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        var incident = await Eventually.Until<JsonElement>(async () => (await GetJsonAsync(http, "/api/incidents")).EnumerateArray().FirstOrDefault(),
            i => i.ValueKind == JsonValueKind.Object && i.GetProperty("messages").EnumerateArray().Any(m => m.GetProperty("status").GetString() == "sent"),
            what: "an incident with its sent message");
        var id = incident.GetProperty("incident").GetProperty("id").GetInt64();
        incident.GetProperty("messages")[0].GetProperty("channel").GetString().Should().Be("mail");
        TestChannel.Accepted[mail].Should().NotBeEmpty();

        (await http.SendAsync(Post($"/api/incidents/{id}/ack", Token))).StatusCode.Should().Be(HttpStatusCode.OK);
        (await GetJsonAsync(http, $"/api/incidents/{id}")).GetProperty("incident").GetProperty("ackedAt").ValueKind.Should().Be(JsonValueKind.String);
        (await http.SendAsync(Post("/api/incidents/424242/ack", Token))).StatusCode.Should().Be(HttpStatusCode.NotFound);
    }

    [Fact]
    public async Task Secrets_NeverAppear_InAnyAnswer()
    {
        var (h, http, probe, _, _) = await StartAsync();
        await using var _h = h;
        using var _http = http;
        ScriptedProbe.Script[probe] = false; // the failure's description echoes the secret; it reaches events, incidents and history
        await h.AdvanceAsync(Every);
        h.Engine.GetState("api")!.Status.Should().Be(RuleStatus.Down);
        await Eventually.Until(() => h.Engine.Activity.Recent(50).Any(e => e.Kind == "remediated"), what: "a remediation");

        var detail = await GetJsonAsync(http, "/api/rules/api");
        detail.GetProperty("definition").GetProperty("probe").GetProperty("options").GetProperty("password").GetString().Should().Be("***");
        foreach (var path in new[] { "/api/status", "/api/status?recent=60", "/api/rules", "/api/rules/api", "/api/rules/api/history?since=1h", "/api/incidents",
                     "/api/events?limit=200", "/api/config", "/metrics", "/health" })
        {
            var text = await http.GetStringAsync(path);
            text.Should().NotContain(Secret, path);
            text.Should().NotContain(Token, path);
        }
        (await http.GetStringAsync("/api/rules/api/history?since=1h")).Should().Contain("login as admin:***");
    }

    [Fact]
    public async Task EventStream_DeliversATransition_AsItHappens()
    {
        var (h, http, probe, _, _) = await StartAsync();
        await using var _h = h;
        using var _http = http;
        using var request = new HttpRequestMessage(HttpMethod.Get, "/api/events");
        request.Headers.Accept.ParseAdd("text/event-stream");
        using var response = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
        response.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync());
        (await reader.ReadLineAsync()).Should().Be("retry: 2000");

        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        using var cts = new CancellationTokenSource(Eventually.DefaultLimit);
        string? data = null;
        while (await reader.ReadLineAsync(cts.Token) is { } line)
            if (line.StartsWith("data: ", StringComparison.Ordinal) && line.Contains("down", StringComparison.Ordinal)) { data = line[6..]; break; }
        var e = JsonDocument.Parse(data!).RootElement;
        e.GetProperty("kind").GetString().Should().Be("transition");
        e.GetProperty("rule").GetString().Should().Be("api");
        e.GetProperty("message").GetString().Should().StartWith("healthy → down");
    }

    [Fact]
    public async Task Metrics_ParseAsPrometheusText_AndMove_WhenRulesChange()
    {
        var (h, http, probe, record, mail) = await StartAsync();
        await using var _h = h;
        using var _http = http;
        async Task<Dictionary<string, double>> Scrape()
        {
            using var response = await http.GetAsync("/metrics");
            response.Content.Headers.ContentType!.ToString().Should().StartWith("text/plain; version=0.0.4");
            return PrometheusText.Parse(await response.Content.ReadAsStringAsync());
        }

        var first = await Scrape();
        first["sentinel_rule_state{rule=\"api\",state=\"healthy\"}"].Should().Be(1);
        first["sentinel_rule_state{rule=\"api\",state=\"down\"}"].Should().Be(0);
        first["sentinel_rule_up{rule=\"api\"}"].Should().Be(1);
        first["sentinel_check_duration_seconds_count{rule=\"api\"}"].Should().Be(3);
        first["sentinel_check_start_lateness_seconds_count"].Should().Be(3, "each scheduled check's start is measured");
        first["sentinel_config_valid"].Should().Be(1);
        first["sentinel_outbox_depth"].Should().Be(0);
        first["sentinel_plugin_load_errors"].Should().Be(0);

        ScriptedProbe.Script[probe] = false;
        await h.AdvanceAsync(Every);
        await Eventually.Until(() => TestChannel.Accepted.TryGetValue(mail, out var q) && !q.IsEmpty && RecordingAction.Runs.ContainsKey(record), what: "alerted and remediated");
        var later = await Eventually.Until<Dictionary<string, double>>(async () => await Scrape(),
            m => m.GetValueOrDefault("sentinel_notifications_total{channel=\"mail\",result=\"sent\"}") >= 1, what: "the sent counter");
        later["sentinel_rule_state{rule=\"api\",state=\"down\"}"].Should().Be(1);
        later["sentinel_rule_up{rule=\"api\"}"].Should().Be(0);
        later["sentinel_check_failures_total{rule=\"api\"}"].Should().BeGreaterThan(0);
        later["sentinel_remediations_total{rule=\"api\",event=\"remediating\"}"].Should().BeGreaterThan(0);
        later["sentinel_rule_transitions_total{rule=\"api\",to=\"down\"}"].Should().Be(1);
        later["sentinel_incidents_open"].Should().Be(1);
        later["sentinel_check_duration_seconds_count{rule=\"api\"}"].Should().BeGreaterThan(first["sentinel_check_duration_seconds_count{rule=\"api\"}"]);

        h.WriteConfig(Config(probe, record, mail).Replace("""
              - name: worker
                cron: "0 0 1 1 *"    # never during a test: only the API runs it
                probe: { type: scripted, with: { key: PROBE-w } }
            """.Replace("PROBE", probe), ""));
        await h.AdvanceUntilAsync(() => !h.Engine.HasRule("worker"), TimeSpan.FromMilliseconds(100), what: "worker removed by the reload");
        var after = await Scrape();
        after.Keys.Should().NotContain(k => k.Contains("rule=\"worker\""));
        after.Keys.Should().Contain("sentinel_rule_up{rule=\"api\"}");
    }
}
