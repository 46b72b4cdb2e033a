using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Sentinel.Abstractions;
using Sentinel.Engine.Conditions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Http;

/// <summary>The `http` probe against real Kestrel servers on 127.0.0.1, plain and TLS.</summary>
public sealed class HttpProbeTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private static Task<ProbeResult> Check(string with) => RealPlugins.Create("http", with).CheckAsync();

    [Fact]
    public async Task JsonHealthEndpoint_IsMeasured_ForConditions()
    {
        await using var server = await KestrelServer.StartAsync(routes: app =>
            app.MapGet("/health", () => Results.Json(new { status = "ok", checks = new { db = true } })));
        var result = await Check($"{{ url: 'http://127.0.0.1:{server.Port}/health', headers: {{ X-Probe: sentinel }} }}");

        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        result.Data!["status"].Should().Be(200);
        foreach (var condition in new[] { "body.status == ok", "body.checks.db == true", "response-time < 5s", "headers.content-type contains json" })
            Condition.Parse(condition).Evaluate(result.Data).Passed.Should().BeTrue(condition);
    }

    [Fact]
    public async Task Non2xx_IsUnhealthy_UnlessExpected()
    {
        await using var server = await KestrelServer.StartAsync(routes: app => app.MapGet("/down", () => Results.StatusCode(503)));
        var url = $"http://127.0.0.1:{server.Port}/down";
        (await Check($"{{ url: '{url}' }}")).Status.Should().Be(ProbeStatus.Unhealthy);
        (await Check($"{{ url: '{url}', expect-status: [503] }}")).Status.Should().Be(ProbeStatus.Healthy);
    }

    [Fact]
    public async Task ConnectionRefused_IsAClearResult()
    {
        var result = await Check("{ url: 'http://127.0.0.1:1/health' }");
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("Connection refused");
        result.Data!["error"].Should().Be("ConnectionError");
    }

    [Fact]
    public async Task Https_WithAPrivateCa_IsHealthy_AndReportsDaysToExpiry()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("localhost", Now.AddDays(-1), Now.AddDays(20)), routes: app => app.MapGet("/", () => "ok"));
        var result = await Check($"{{ url: 'https://localhost:{server.Port}/', ca-file: '{TestCertificates.CaPemFile()}' }}");

        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        ((double)result.Data!["cert-expiry"]).Should().BeApproximately(20, 0.2);
        Condition.Parse("cert-expiry > 14").Evaluate(result.Data).Passed.Should().BeTrue();
    }

    [Fact]
    public async Task Https_ExpiredOrWrongHost_FailsWithTheReason()
    {
        var ca = TestCertificates.CaPemFile();
        await using (var expired = await KestrelServer.StartAsync(TestCertificates.Server("localhost", Now.AddDays(-40), Now.AddDays(-3)), routes: app => app.MapGet("/", () => "ok")))
        {
            var result = await Check($"{{ url: 'https://localhost:{expired.Port}/', ca-file: '{ca}' }}");
            result.Status.Should().Be(ProbeStatus.Unhealthy);
            result.Description.Should().Contain("TLS: the certificate is expired or not yet valid");
            ((double)result.Data!["cert-expiry"]).Should().BeApproximately(-3, 0.2);
        }
        await using var wrongHost = await KestrelServer.StartAsync(TestCertificates.Server("other.example", Now.AddDays(-1), Now.AddDays(20)), routes: app => app.MapGet("/", () => "ok"));
        var mismatch = await Check($"{{ url: 'https://localhost:{wrongHost.Port}/', ca-file: '{ca}' }}");
        mismatch.Description.Should().Contain("TLS: the certificate is not for 'localhost' (it is for other.example)");
        var optedOut = await Check($"{{ url: 'https://localhost:{wrongHost.Port}/', verify-tls: false }}");
        optedOut.Status.Should().Be(ProbeStatus.Healthy);
        ((string)optedOut.Data!["tls-errors"]).Should().Contain("not for 'localhost'");
    }

    [Fact]
    public async Task MutualTls_PresentsTheClientCertificate()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("localhost", Now.AddDays(-1), Now.AddDays(20)), requireClientCertificate: true,
            routes: app => app.MapGet("/", (HttpContext ctx) => ctx.Connection.ClientCertificate?.Subject ?? "none"));
        var ca = TestCertificates.CaPemFile();
        var (cert, key) = TestCertificates.ClientPemFiles();

        (await Check($"{{ url: 'https://localhost:{server.Port}/', ca-file: '{ca}' }}")).Status.Should().Be(ProbeStatus.Unhealthy, "the server requires a client certificate");
        var result = await Check($"{{ url: 'https://localhost:{server.Port}/', ca-file: '{ca}', client-certificate: '{cert}', client-key: '{key}' }}");
        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        result.Data!["body"].Should().Be("CN=sentinel-client");
    }

    [Fact]
    public async Task AHundredMegabyteBody_IsReadOnlyUpToMaxBody()
    {
        await using var server = await KestrelServer.StartAsync(routes: app => app.MapGet("/huge", async (HttpContext ctx) =>
        {
            var chunk = new byte[1024 * 1024];
            Array.Fill(chunk, (byte)'a');
            try { for (var i = 0; i < 100; i++) await ctx.Response.Body.WriteAsync(chunk, ctx.RequestAborted); }
            catch (OperationCanceledException) { }
        }));
        var result = await Check($"{{ url: 'http://127.0.0.1:{server.Port}/huge' }}").WaitAsync(TimeSpan.FromSeconds(10));
        result.Status.Should().Be(ProbeStatus.Healthy);
        ((string)result.Data!["body"]).Length.Should().Be(1024 * 1024);
    }

    [Fact]
    public async Task PlainHttpRules_ShareOneConnectionPool_AndOneRulesRemovalLeavesTheOthersWorking()
    {
        var connections = new global::System.Collections.Concurrent.ConcurrentDictionary<string, byte>();
        await using var server = await KestrelServer.StartAsync(routes: app => app.MapGet("/health", (HttpContext ctx) =>
        {
            connections[ctx.Connection.Id] = 0;
            return Results.Text("ok");
        }));
        var a = RealPlugins.Create("http", $"{{ url: 'http://127.0.0.1:{server.Port}/health' }}");
        var b = RealPlugins.Create("http", $"{{ url: 'http://127.0.0.1:{server.Port}/health?rule=b' }}");
        for (var i = 0; i < 3; i++)
        {
            (await a.CheckAsync()).Status.Should().Be(ProbeStatus.Healthy);
            (await b.CheckAsync()).Status.Should().Be(ProbeStatus.Healthy);
        }
        connections.Should().ContainSingle("two rules' checks, one after another, reuse one kept-alive connection");
        ((IDisposable)a).Dispose();
        ((IDisposable)a).Dispose(); // twice: a removed rule's probe may be disposed again; b's client stays
        (await b.CheckAsync()).Status.Should().Be(ProbeStatus.Healthy, "the shared client is still the other rule's");
        ((IDisposable)b).Dispose();
    }

    [Fact]
    public async Task ABodyLongerThanTheFirstBuffer_IsReadWhole_AndCutAtMaxBody()
    {
        // 3-byte characters across the 4 KiB the body is first read into, and a max-body that is not a power of two.
        var text = string.Concat(Enumerable.Repeat("€uro ", 3000));
        await using var server = await KestrelServer.StartAsync(routes: app => app.MapGet("/text", () => Results.Text(text, "text/plain")));
        var whole = await Check($"{{ url: 'http://127.0.0.1:{server.Port}/text' }}");
        whole.Data!["body"].Should().Be(text);
        var cut = await Check($"{{ url: 'http://127.0.0.1:{server.Port}/text', max-body: 5000B }}");
        cut.Data!["body"].Should().Be(global::System.Text.Encoding.UTF8.GetString(global::System.Text.Encoding.UTF8.GetBytes(text), 0, 5000), "the first 5,000 bytes, decoded");
    }

    [Fact]
    public async Task AServerThatTricklesBytes_IsCutByTheTimeout()
    {
        await using var server = await KestrelServer.StartAsync(routes: app => app.MapGet("/slow", async (HttpContext ctx) =>
        {
            await ctx.Response.StartAsync();
            try
            {
                while (!ctx.RequestAborted.IsCancellationRequested)
                {
                    await ctx.Response.Body.WriteAsync("x"u8.ToArray(), ctx.RequestAborted);
                    await ctx.Response.Body.FlushAsync(ctx.RequestAborted);
                    await Task.Delay(100, ctx.RequestAborted);
                }
            }
            catch (OperationCanceledException) { }
        }));
        var probe = RealPlugins.Create("http", $"{{ url: 'http://127.0.0.1:{server.Port}/slow' }}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(1));
        var act = () => probe.CheckAsync(timeout.Token).WaitAsync(TimeSpan.FromSeconds(5));
        await act.Should().ThrowAsync<OperationCanceledException>();
    }

    [Theory]
    [InlineData("{ url: 'ftp://x/' }", "url must start with http:// or https://")]
    [InlineData("{ url: 'http://x/', client-key: /k.pem }", "client-certificate and client-key go together")]
    [InlineData("{ url: 'http://x/', ca-file: /no/such.pem }", "ca-file /no/such.pem does not exist")]
    public void InvalidOptions_AreExplained(string with, string message)
        => RealPlugins.Bind("http", with).Errors.Should().Contain(e => e.Message.Contains(message));
}
