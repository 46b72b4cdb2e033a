using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Sentinel.Plugins.Tests.Support;

/// <summary>A real Kestrel server on 127.0.0.1 and a free port; HTTPS when given a certificate; /ws accepts WebSockets.</summary>
public sealed class KestrelServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private KestrelServer(WebApplication app, int port)
    {
        _app = app;
        Port = port;
    }

    public int Port { get; }

    public static async Task<KestrelServer> StartAsync(X509Certificate2? certificate = null, bool requireClientCertificate = false, Action<WebApplication>? routes = null)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l =>
        {
            if (certificate is null) return;
            l.UseHttps(https =>
            {
                https.ServerCertificate = certificate;
                if (!requireClientCertificate) return;
                https.ClientCertificateMode = Microsoft.AspNetCore.Server.Kestrel.Https.ClientCertificateMode.RequireCertificate;
                https.ClientCertificateValidation = (client, _, _) => client.Issuer == TestCertificates.Ca.Subject;
            });
        }));
        var app = builder.Build();
        app.UseWebSockets();
        (routes ?? DefaultRoutes)(app);
        await app.StartAsync();
        return new KestrelServer(app, new Uri(app.Urls.Single()).Port);
    }

    // GET / answers "hello"; /ws accepts a WebSocket and closes it.
    private static void DefaultRoutes(WebApplication app)
    {
        app.MapGet("/", () => "hello");
        app.Map("/ws", async (HttpContext ctx) =>
        {
            if (!ctx.WebSockets.IsWebSocketRequest) { ctx.Response.StatusCode = 400; return; }
            using var socket = await ctx.WebSockets.AcceptWebSocketAsync();
            await socket.CloseAsync(global::System.Net.WebSockets.WebSocketCloseStatus.NormalClosure, "bye", CancellationToken.None);
        });
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
