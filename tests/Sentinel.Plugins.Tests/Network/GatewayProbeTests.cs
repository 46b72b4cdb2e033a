using System.Net;
using System.Net.Sockets;
using Sentinel.Abstractions;
using Sentinel.Plugins.Tests.Support;

namespace Sentinel.Plugins.Tests.Network;

/// <summary>The `gateway` probe against real listeners and real TLS servers on 127.0.0.1.</summary>
public sealed class GatewayProbeTests
{
    private static readonly DateTimeOffset Now = DateTimeOffset.UtcNow;

    private static Task<ProbeResult> Check(string with) => RealPlugins.Create("gateway", with).CheckAsync();

    [Fact]
    public async Task OpenPort_IsReachable_WithTimings()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;

        var result = await Check($"{{ host: localhost, port: {port} }}");

        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        result.Data!["address"].Should().Be($"127.0.0.1:{port}");
        result.Data.Should().ContainKeys("dns-time", "connect-time");
    }

    [Fact]
    public async Task ClosedPort_IsRefused()
    {
        var port = FreePort();
        var result = await Check($"{{ host: 127.0.0.1, port: {port} }}");
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Be($"TCP connect to 127.0.0.1:{port} failed: 127.0.0.1:{port}: connection refused");
    }

    [Fact]
    public async Task AServerThatAcceptsButNeverAnswers_IsCutByCancellation_NotAHang()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();   // the kernel completes the handshake; nobody ever reads or writes
        var probe = RealPlugins.Create("gateway", $"{{ host: 127.0.0.1, port: {((IPEndPoint)listener.LocalEndpoint).Port}, http-path: / }}");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMilliseconds(500));

        var act = () => probe.CheckAsync(timeout.Token).WaitAsync(TimeSpan.FromSeconds(5));

        await act.Should().ThrowAsync<OperationCanceledException>();
    }

    [Fact]
    public async Task Tls_WithAPrivateCa_IsValid_AndReportsDaysToExpiry()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("localhost", Now.AddDays(-1), Now.AddDays(30)));
        var result = await Check($"{{ host: 127.0.0.1, port: {server.Port}, tls: true, sni: localhost, ca-file: '{TestCertificates.CaPemFile()}', http-path: / }}");

        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        ((double)result.Data!["cert-expiry"]).Should().BeApproximately(30, 0.2);
        result.Data["http-status"].Should().Be(200);
        result.Data.Should().ContainKey("tls-time");
        result.Description.Should().EndWith("certificate valid 30 more days");
    }

    [Fact]
    public async Task Tls_WithoutTheCa_IsNotTrusted()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("localhost", Now.AddDays(-1), Now.AddDays(30)));
        var result = await Check($"{{ host: 127.0.0.1, port: {server.Port}, tls: true, sni: localhost }}");
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("the certificate is not trusted (self-signed or an unknown CA: add its CA with ca-file)");
    }

    [Fact]
    public async Task Tls_ExpiredCertificate_IsReported_WithNegativeDaysLeft()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("localhost", Now.AddDays(-30), Now.AddDays(-2)));
        var result = await Check($"{{ host: 127.0.0.1, port: {server.Port}, tls: true, sni: localhost, ca-file: '{TestCertificates.CaPemFile()}' }}");
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("the certificate is expired or not yet valid");
        ((double)result.Data!["cert-expiry"]).Should().BeApproximately(-2, 0.2);
    }

    [Fact]
    public async Task Tls_CertificateForAnotherHost_IsANameMismatch()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("other.example", Now.AddDays(-1), Now.AddDays(30)));
        var result = await Check($"{{ host: 127.0.0.1, port: {server.Port}, tls: true, sni: localhost, ca-file: '{TestCertificates.CaPemFile()}' }}");
        result.Status.Should().Be(ProbeStatus.Unhealthy);
        result.Description.Should().Contain("the certificate is not for 'localhost' (it is for other.example)");
    }

    [Fact]
    public async Task Tls_WithVerificationOff_MeasuresAnUntrustedServer()
    {
        await using var server = await KestrelServer.StartAsync(TestCertificates.Server("other.example", Now.AddDays(-1), Now.AddDays(10)));
        var result = await Check($"{{ host: 127.0.0.1, port: {server.Port}, tls: true, verify-tls: false }}");
        result.Status.Should().Be(ProbeStatus.Healthy, result.Description);
        ((double)result.Data!["cert-expiry"]).Should().BeApproximately(10, 0.2);
        ((string)result.Data["tls-errors"]).Should().Contain("not for '127.0.0.1'");
    }

    [Fact]
    public async Task WebSocketUpgrade_Expects101()
    {
        await using var server = await KestrelServer.StartAsync();
        var ok = await Check($"{{ host: 127.0.0.1, port: {server.Port}, websocket-path: /ws }}");
        ok.Status.Should().Be(ProbeStatus.Healthy, ok.Description);
        ok.Data!["http-status"].Should().Be(101);

        var refused = await Check($"{{ host: 127.0.0.1, port: {server.Port}, websocket-path: / }}");
        refused.Status.Should().Be(ProbeStatus.Unhealthy);
        refused.Description.Should().StartWith("WebSocket upgrade on / answered");
    }

    [Theory]
    [InlineData("{ port: 80 }", "missing required key 'host'")]
    [InlineData("{ host: a, port: 70000 }", "must be between 1 and 65535")]
    [InlineData("{ host: a, http-path: x }", "http-path must start with '/'")]
    [InlineData("{ host: a, sni: b }", "sni and ca-file apply to TLS: add tls: true")]
    [InlineData("{ host: a, http-path: /, websocket-path: /ws }", "set http-path or websocket-path, not both")]
    public void InvalidOptions_AreExplained(string with, string message)
        => RealPlugins.Bind("gateway", with).Errors.Should().ContainSingle().Which.Message.Should().Contain(message);

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
