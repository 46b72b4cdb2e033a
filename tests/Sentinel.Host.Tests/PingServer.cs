using System.Collections.Concurrent;
using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sentinel.Host.Tests;

/// <summary>
/// Stands in for hc-ping.com on 127.0.0.1: implements the documented ping URLs (<c>/{uuid}[/start|/fail|/log|/{0-255}]</c>,
/// <c>/{ping-key}/{slug}[...]</c>), records each ping, answers <c>OK</c> with a <c>Ping-Body-Limit</c> header,
/// <c>not found</c> (404) for unknown checks, and can be told to fail the next requests with 503.
/// </summary>
public sealed class PingServer : IAsyncDisposable
{
    public sealed record Ping(string Check, string Kind, string? Rid, string Body, DateTimeOffset At);

    private readonly WebApplication _app;
    private int _failNext;

    private PingServer(WebApplication app) => _app = app;

    public ConcurrentQueue<Ping> Pings { get; } = new();
    public HashSet<string> Checks { get; } = [];
    public int BodyLimit { get; set; } = 100_000;
    public int Requests => _requests;
    private int _requests;
    public string Url => _app.Urls.Single();

    public void FailNext(int count) => Interlocked.Exchange(ref _failNext, count);

    public static async Task<PingServer> StartAsync(params string[] checks)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var app = builder.Build();
        var server = new PingServer(app);
        server.Checks.UnionWith(checks);
        app.MapMethods("/{**path}", ["GET", "POST", "HEAD"], async (string path, HttpContext ctx) => await server.HandleAsync(path, ctx));
        await app.StartAsync();
        return server;
    }

    private async Task HandleAsync(string path, HttpContext ctx)
    {
        Interlocked.Increment(ref _requests);
        if (Interlocked.Decrement(ref _failNext) >= 0)
        {
            ctx.Response.StatusCode = 503;
            await ctx.Response.WriteAsync("service unavailable");
            return;
        }
        var parts = path.Split('/');
        var (check, kind) = parts.Length switch
        {
            1 => (parts[0], "success"),
            2 when Checks.Contains(parts[0]) => (parts[0], parts[1]),
            2 => (path, "success"),
            3 => ($"{parts[0]}/{parts[1]}", parts[2]),
            _ => ("", ""),
        };
        if (!Checks.Contains(check) || kind is not ("success" or "start" or "fail" or "log") && !(int.TryParse(kind, out var code) && code is >= 0 and <= 255))
        {
            ctx.Response.StatusCode = check.Length == 0 ? 400 : 404;
            await ctx.Response.WriteAsync(check.Length == 0 ? "invalid url format" : "not found");
            return;
        }
        var body = await new StreamReader(ctx.Request.Body).ReadToEndAsync();
        Pings.Enqueue(new Ping(check, kind, ctx.Request.Query["rid"].FirstOrDefault(), body, DateTimeOffset.UtcNow));
        ctx.Response.Headers["Ping-Body-Limit"] = BodyLimit.ToString();
        await ctx.Response.WriteAsync("OK");
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
