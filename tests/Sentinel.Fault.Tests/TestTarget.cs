using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sentinel.Fault.Tests;

/// <summary>
/// A real HTTP server on 127.0.0.1 and a free port: /health answers what the test says (the watched service), and
/// /hook/{name} receives webhook notifications, logging each one it accepted, as a chat service would.
/// </summary>
public sealed class TestTarget : IAsyncDisposable
{
    private readonly WebApplication _app;
    public volatile int Status = 200;

    /// <summary>Bodies accepted per hook, in order of arrival.</summary>
    public ConcurrentDictionary<string, ConcurrentQueue<string>> Received { get; } = new();

    /// <summary>How a hook answers: a delay before answering, and whether this request fails (500, not accepted).</summary>
    public Func<string, int, (TimeSpan Delay, bool Fail)> Behaviour { get; set; } = (_, _) => (TimeSpan.Zero, false);

    private readonly ConcurrentDictionary<string, int> _requests = new();

    private TestTarget(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public static async Task<TestTarget> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var target = new TestTarget(app);
        app.MapGet("/health", () => Results.Json(new { status = target.Status == 200 ? "ok" : "bad" }, statusCode: target.Status));
        app.MapPost("/hook/{name}", async (string name, HttpRequest request) =>
        {
            var body = await new StreamReader(request.Body).ReadToEndAsync();
            var n = target._requests.AddOrUpdate(name, 1, (_, v) => v + 1);
            var (delay, fail) = target.Behaviour(name, n);
            if (fail) return Results.StatusCode(500);
            // Accepted: it is in the chat now, whatever happens to the answer (the sender may be killed while waiting).
            target.Received.GetOrAdd(name, _ => new()).Enqueue(body);
            if (delay > TimeSpan.Zero) await Task.Delay(delay);
            return Results.Ok();
        });
        await app.StartAsync();
        target.Url = app.Urls.Single();
        return target;
    }

    /// <summary>
    /// The watched service as a rule (every check can flip it: 200 ms, thresholds 1), its channels webhooks to
    /// <paramref name="hooks"/> here, nothing grouped: YAML for the end of a config.
    /// </summary>
    public string RuleAndChannels(params string[] hooks) => $$"""
        notifications: { group-wait: 0s }
        channels:
        {{string.Join("\n", hooks.Select(h => $"  - {{ name: {h}, type: webhook, with: {{ url: \"{Url}/hook/{h}\" }} }}"))}}
        rules:
          - name: api
            every: 200ms
            failure-threshold: 1
            success-threshold: 1
            probe: { type: http, with: { url: "{{Url}}/health" } }
            notify: [{{string.Join(", ", hooks.Select(h => $"{{ channel: {h} }}"))}}]
        """;

    public IReadOnlyList<string> Of(string hook) => Received.TryGetValue(hook, out var q) ? q.ToArray() : [];

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
