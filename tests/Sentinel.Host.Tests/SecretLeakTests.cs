using System.Collections.Concurrent;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sentinel.Host.Tests;

/// <summary>
/// The one test that fails when a new output forgets the redactor: a config with secrets of every kind (a probe's
/// Authorization header that the service echoes back, in its JSON body too; a webhook address that is its own
/// token, given through the environment; the heartbeat's healthchecks UUID; the API token), run through every
/// command and route, and every byte Sentinel wrote or printed searched for every secret.
/// </summary>
public sealed partial class SecretLeakTests : IAsyncDisposable
{
    private const string ProbeToken = "Bearer probe-S3cr3t-7f3a9c";
    private const string HookToken = "hook-S3cr3t-0b7d21e4";
    private const string CheckUuid = "0f8fad5b-d9cb-469f-a165-70867728950e";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-secrets", Guid.NewGuid().ToString("N")[..12]);
    private readonly ConcurrentQueue<string> _received = new();
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private WebApplication? _app;

    public SecretLeakTests() => Directory.CreateDirectory(_dir);

    // The service answers 503 with whatever Authorization it got, in its JSON body; the hook records what it was
    // sent (the bodies: what a chat service keeps).
    private async Task<string> StartServerAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        _app = builder.Build();
        _app.MapGet("/echo", (HttpRequest r) => Results.Json(new { error = "unauthorized", youSent = r.Headers.Authorization.ToString() }, statusCode: 503));
        _app.MapPost("/hook/{token}", async (string token, HttpRequest r) => { _received.Enqueue(await new StreamReader(r.Body).ReadToEndAsync()); return Results.Ok(); });
        // healthchecks.io, failing: each ping's error (which names its address, the UUID in it) goes to the log.
        _app.MapMethods("/{uuid}/{kind?}", ["HEAD", "GET", "POST"], () => Results.StatusCode(500));
        await _app.StartAsync();
        return _app.Urls.Single();
    }

    private string Config(string url, string uuid = CheckUuid) => SentinelProcess.WriteConfig(_dir, $$"""
        notifications: { group-wait: 0s }
        channels:
          - { name: hook, type: webhook, with: { url: "${HOOK_URL}" } }
        rules:
          - name: echo
            every: 300ms
            failure-threshold: 1
            probe: { type: http, with: { url: "{{url}}/echo", headers: { Authorization: "{{ProbeToken}}" } } }
            notify: [{ channel: hook }]
        """, logs: "logs", engine: $$"""
          heartbeat:
            every: 1s
            to: [{ type: healthchecks, with: { base: "{{url}}", uuid: "{{uuid}}" } }]
        """);

    [Fact]
    public async Task NoSecret_AppearsInAnyOutput_FileOrAnswer()
    {
        var url = await StartServerAsync();
        var hookUrl = $"{url}/hook/{HookToken}";
        var env = new Dictionary<string, string> { ["HOOK_URL"] = hookUrl };
        var config = Config(url);
        var outputs = new List<(string What, string Text)>();
        async Task Cli(params string[] args)
        {
            using var p = SentinelProcess.Start(_dir, env, [.. args, "--config", config]);
            var exit = await p.WaitForExitAsync(TimeSpan.FromSeconds(60));
            outputs.Add(($"sentinel {string.Join(' ', args)} (exit {exit})", p.Stdout + p.Stderr));
        }

        await Cli("validate");
        await Cli("check");
        await Cli("notify-test", "hook");
        using (var sentinel = SentinelProcess.Start(_dir, env, "run", "--config", config))
        {
            await Eventually.Until(() => _received.Any(b => b.Contains("DOWN: echo")) && File.Exists(Path.Combine(_dir, "state", "status.json")), context: sentinel.Output);
            var page = StatusPage().Match(sentinel.Stdout).Groups[1].Value;
            var token = (await File.ReadAllTextAsync(Path.Combine(_dir, "state", "api-token"))).Trim();
            foreach (var route in new[] { "", "health", "metrics", "api", "api/status?recent=10", "api/rules", "api/rules/echo", "api/rules/echo/history", "api/incidents", "api/plugins", "api/config", "api/events?limit=100" })
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, page + route);
                request.Headers.Authorization = new("Bearer", token);
                using var answer = await _http.SendAsync(request);
                outputs.Add(($"GET /{route} ({(int)answer.StatusCode})", await answer.Content.ReadAsStringAsync()));
            }
            await Cli("status");
            await Cli("status", "--json");
            await Cli("history", "echo");
            sentinel.Signal("TERM");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(0, sentinel.Output());
            outputs.Add(("sentinel run", sentinel.Stdout + sentinel.Stderr));
        }
        await Cli("status", "--json"); // stopped: read from status.json
        // A malformed secret is not echoed by the error that rejects it.
        var bad = Config(url, uuid: "0f8fad5b-NOT-A-UUID-secret");
        using (var p = SentinelProcess.Start(_dir, env, "validate", "--config", bad))
        {
            (await p.WaitForExitAsync(TimeSpan.FromSeconds(60))).Should().Be(2, p.Output());
            p.Stderr.Should().Contain("uuid is not a UUID");
            outputs.Add(("sentinel validate (malformed uuid)", p.Stdout + p.Stderr));
        }

        outputs.Where(o => o.Text.Contains("***")).Select(o => o.What).Should().Contain(["GET /api/rules/echo (200)", "sentinel notify-test hook (exit 0)"],
            "the echoed header (in the JSON body the probe keeps) and the hook's address are shown masked: the test does see them");
        outputs.AddRange(_received.Select((b, i) => ($"message {i} received by the hook or the ping endpoint", b)));
        foreach (var file in Directory.GetFiles(Path.Combine(_dir, "state"), "*", SearchOption.AllDirectories)
                     .Concat(Directory.GetFiles(Path.Combine(_dir, "logs"), "*", SearchOption.AllDirectories)))
            outputs.Add((Path.GetRelativePath(_dir, file), Encoding.Latin1.GetString(await File.ReadAllBytesAsync(file))));
        outputs.Should().Contain(o => o.What.StartsWith("logs"), "the log file is searched too");

        var secrets = new[] { ProbeToken, "probe-S3cr3t", HookToken, CheckUuid, "NOT-A-UUID-secret" };
        var leaks = outputs.SelectMany(o => secrets.Where(s => o.Text.Contains(s, StringComparison.Ordinal)).Select(s => $"{o.What} shows '{s}'")).ToList();
        leaks.Should().BeEmpty();
    }

    [GeneratedRegex(@"Status page: (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex StatusPage();

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        if (_app is not null) await _app.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
