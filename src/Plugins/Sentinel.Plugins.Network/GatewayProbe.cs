using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Network;

[ClusterWide]
internal sealed class GatewayProbe(GatewayProbeOptions options) : IProbe
{
    private readonly TlsVerifier _verifier = new(options.CaFile);

    public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        var data = new Dictionary<string, object>();
        var time = context.TimeProvider;
        var host = options.Host!;

        // DNS
        IPAddress[] addresses;
        var started = time.GetTimestamp();
        if (IPAddress.TryParse(host, out var literal)) addresses = [literal];
        else
        {
            try { addresses = await Dns.GetHostAddressesAsync(host, cancellationToken); }
            catch (SocketException e)
            {
                return ProbeResult.Unhealthy($"DNS: cannot resolve '{host}': {e.Message}", e, data);
            }
            if (addresses.Length == 0) return ProbeResult.Unhealthy($"DNS: '{host}' has no addresses", null, data);
        }
        data["dns-time"] = time.GetElapsedTime(started);

        // TCP: the first address that accepts
        using var socket = await ConnectAsync(addresses, data, time, cancellationToken);
        if (socket.Socket is null) return ProbeResult.Unhealthy(socket.Error, null, data);
        Stream stream = new NetworkStream(socket.Socket, ownsSocket: false);

        // TLS
        if (options.Tls)
        {
            var sni = options.Sni ?? host;
            var tls = new SslStream(stream, leaveInnerStreamOpen: false);
            stream = tls;
            SslPolicyErrors errors = SslPolicyErrors.None;
            X509Certificate2? certificate = null;
            X509ChainStatusFlags chainStatus = X509ChainStatusFlags.NoError;
            started = time.GetTimestamp();
            try
            {
                await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = sni,
                    RemoteCertificateValidationCallback = (_, cert, chain, policyErrors) =>
                    {
                        certificate = cert is null ? null : new X509Certificate2(cert);
                        (errors, chainStatus) = _verifier.Evaluate(certificate, policyErrors, chain);
                        return !options.VerifyTls || errors == SslPolicyErrors.None;
                    },
                }, cancellationToken);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                if (certificate is not null) data["cert-expiry"] = TlsVerifier.DaysLeft(certificate, time);
                var why = errors == SslPolicyErrors.None ? e.Message : TlsVerifier.Describe(errors, chainStatus, certificate, sni);
                return ProbeResult.Unhealthy($"TLS with {sni}: {why}", null, data);
            }
            data["tls-time"] = time.GetElapsedTime(started);
            if (certificate is not null)
            {
                data["cert-expiry"] = TlsVerifier.DaysLeft(certificate, time);
                data["cert-subject"] = certificate.Subject;
            }
            if (errors != SslPolicyErrors.None) data["tls-errors"] = TlsVerifier.Describe(errors, chainStatus, certificate, sni);
        }

        // HTTP or WebSocket
        if (options.HttpPath is not null || options.WebsocketPath is not null)
        {
            var ws = options.WebsocketPath is not null;
            var request = new StringBuilder()
                .Append($"GET {options.WebsocketPath ?? options.HttpPath} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Sentinel\r\n");
            request.Append(ws
                ? $"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {Convert.ToBase64String(RandomNumberGenerator.GetBytes(16))}\r\n\r\n"
                : "Connection: close\r\n\r\n");
            started = time.GetTimestamp();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request.ToString()), cancellationToken);
            var statusLine = await ReadLineAsync(stream, cancellationToken);
            data["http-time"] = time.GetElapsedTime(started);
            var parts = statusLine?.Split(' ', 3);
            if (parts is not { Length: >= 2 } || !parts[0].StartsWith("HTTP/", StringComparison.Ordinal) || !int.TryParse(parts[1], out var status))
                return ProbeResult.Unhealthy($"{(ws ? "WebSocket" : "HTTP")}: no HTTP response from {host}:{options.Port} (got '{statusLine}')", null, data);
            data["http-status"] = status;
            if (ws && status != 101)
                return ProbeResult.Unhealthy($"WebSocket upgrade on {options.WebsocketPath} answered {status} {(parts.Length > 2 ? parts[2] : "")}, not 101", null, data);
        }

        await stream.DisposeAsync();
        var summary = $"{host}:{options.Port} reachable ({data["address"]})"
            + (data.TryGetValue("cert-expiry", out var days) ? $", certificate valid {days:0} more days" : "");
        return ProbeResult.Healthy(summary, data);
    }

    private async Task<Connection> ConnectAsync(IPAddress[] addresses, Dictionary<string, object> data, TimeProvider time, CancellationToken ct)
    {
        var failures = new List<string>();
        foreach (var address in addresses)
        {
            var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            var started = time.GetTimestamp();
            try
            {
                await socket.ConnectAsync(address, options.Port, ct);
                data["connect-time"] = time.GetElapsedTime(started);
                data["address"] = new IPEndPoint(address, options.Port).ToString();
                return new Connection(socket, "");
            }
            catch (SocketException e)
            {
                socket.Dispose();
                failures.Add($"{new IPEndPoint(address, options.Port)}: {e.SocketErrorCode switch { SocketError.ConnectionRefused => "connection refused", SocketError.TimedOut => "timed out", _ => e.Message }}");
            }
        }
        return new Connection(null, $"TCP connect to {options.Host}:{options.Port} failed: {string.Join("; ", failures)}");
    }

    private static async Task<string?> ReadLineAsync(Stream stream, CancellationToken ct)
    {
        var buffer = new byte[1];
        var line = new StringBuilder();
        while (line.Length < 8192 && await stream.ReadAsync(buffer, ct) == 1)
        {
            if (buffer[0] == '\n') return line.ToString().TrimEnd('\r');
            line.Append((char)buffer[0]);
        }
        return line.Length > 0 ? line.ToString() : null;
    }

    private readonly record struct Connection(Socket? Socket, string Error) : IDisposable
    {
        public void Dispose() => Socket?.Dispose();
    }
}
