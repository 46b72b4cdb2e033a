using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Notify;

/// <summary>Discord, Slack and Telegram are stood in for by a local server that checks the documented request shapes.</summary>
public sealed class WebhookNotifierTests : IAsyncLifetime
{
    private readonly ConcurrentQueue<(string Path, string ContentType, JsonElement Body)> _requests = new();
    private KestrelServer _server = null!;

    public async Task InitializeAsync() => _server = await KestrelServer.StartAsync(routes: app =>
    {
        app.MapPost("/api/webhooks/123/tok", async (HttpContext ctx) => await Record(ctx, 204, ""));              // Discord answers 204
        app.MapPost("/services/T0/B0/x", async (HttpContext ctx) => await Record(ctx, 200, "ok"));                 // Slack answers "ok"
        app.MapPost("/bot123:ABC/sendMessage", async (HttpContext ctx) => await Record(ctx, 200, """{"ok":true,"result":{"message_id":1}}"""));
        app.MapPost("/gone", async (HttpContext ctx) => await Record(ctx, 404, """{"message": "Unknown Webhook", "code": 10015}"""));
        app.MapPost("/busy", async (HttpContext ctx) => await Record(ctx, 503, "try later"));
        app.MapPost("/hook", async (HttpContext ctx) => await Record(ctx, 200, "{}"));
    });

    private async Task Record(HttpContext ctx, int status, string answer)
    {
        var body = await JsonSerializer.DeserializeAsync<JsonElement>(ctx.Request.Body);
        _requests.Enqueue((ctx.Request.Path, ctx.Request.ContentType ?? "", body));
        ctx.Response.StatusCode = status;
        await ctx.Response.WriteAsync(answer);
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    private string Url(string path) => $"http://127.0.0.1:{_server.Port}{path}";

    [Fact]
    public async Task Discord_GetsContent()
    {
        var (_, error) = await RealPlugins.CreateAction("webhook", $"{{ url: '{Url("/api/webhooks/123/tok")}', format: discord }}").NotifyAsync(RealPlugins.SampleNotification());
        error.Should().BeNull();
        var r = _requests.Single();
        r.ContentType.Should().StartWith("application/json");
        r.Body.GetProperty("content").GetString().Should().StartWith("**[Sentinel] DOWN: api**\nDOWN: api");
    }

    [Fact]
    public async Task Slack_GetsText()
    {
        await RealPlugins.CreateAction("webhook", $"{{ url: '{Url("/services/T0/B0/x")}', format: slack }}").NotifyAsync(RealPlugins.SampleNotification());
        _requests.Single().Body.GetProperty("text").GetString().Should().StartWith("*[Sentinel] DOWN: api*\n");
    }

    [Fact]
    public async Task Telegram_GetsSendMessage_AndTheTokenStaysOutOfTheOutput()
    {
        var (output, error) = await RealPlugins.CreateAction("webhook", $"{{ format: telegram, url: '{Url("")}', bot-token: '123:ABC', chat-id: '-100200' }}")
            .NotifyAsync(RealPlugins.SampleNotification());
        error.Should().BeNull();
        var r = _requests.Single();
        r.Path.Should().Be("/bot123:ABC/sendMessage");
        r.Body.GetProperty("chat_id").GetString().Should().Be("-100200");
        r.Body.GetProperty("text").GetString().Should().StartWith("[Sentinel] DOWN: api\n");
        output.Single().Should().Contain("/bot***/sendMessage -> 200").And.NotContain("123:ABC");
    }

    [Fact]
    public async Task Generic_SendsSentinelsPayload_OrTheTemplate()
    {
        await RealPlugins.CreateAction("webhook", $"{{ url: '{Url("/hook")}' }}").NotifyAsync(RealPlugins.SampleNotification());
        await RealPlugins.CreateAction("webhook", $$"""{ url: '{{Url("/hook")}}', template: '{"title": "{subject}", "who": "{rule}"}' }""").NotifyAsync(RealPlugins.SampleNotification());
        var bodies = _requests.Select(r => r.Body).ToList();
        bodies[0].GetProperty("subject").GetString().Should().Be("[Sentinel] DOWN: api");
        bodies[0].GetProperty("items")[0].GetProperty("incident").GetInt64().Should().Be(7);
        bodies[1].GetProperty("title").GetString().Should().Be("[Sentinel] DOWN: api");
        bodies[1].GetProperty("who").GetString().Should().Be("api");
    }

    [Fact]
    public async Task A4xx_IsPermanent_A5xx_IsRetryable()
    {
        var (_, gone) = await RealPlugins.CreateAction("webhook", $"{{ url: '{Url("/gone")}', format: discord }}").NotifyAsync(RealPlugins.SampleNotification());
        gone.Should().BeOfType<ActionFailedException>().Which.Permanent.Should().BeTrue();
        gone!.Message.Should().Contain("answered 404 Not Found").And.Contain("Unknown Webhook");
        var (_, busy) = await RealPlugins.CreateAction("webhook", $"{{ url: '{Url("/busy")}' }}").NotifyAsync(RealPlugins.SampleNotification());
        busy.Should().BeOfType<ActionFailedException>().Which.Permanent.Should().BeFalse();
    }
}
