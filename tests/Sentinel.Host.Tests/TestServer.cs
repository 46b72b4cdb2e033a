using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sentinel.Host.Tests;

/// <summary>A real HTTP server on 127.0.0.1 and a free port, whose /health answers what the test says.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    public volatile int Status = 200;

    private TestServer(WebApplication app) => _app = app;

    public string Url { get; private set; } = "";

    public static async Task<TestServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        var app = builder.Build();
        var server = new TestServer(app);
        app.MapGet("/health", () => Results.Json(new { status = server.Status == 200 ? "ok" : "bad" }, statusCode: server.Status));
        await app.StartAsync();
        server.Url = app.Urls.Single();
        return server;
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
