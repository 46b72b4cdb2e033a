using System.Diagnostics;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Network;

internal sealed class GatewayProbe(GatewayProbeOptions options) : IProbe
{
    private readonly X509Certificate2Collection? _trust = options.CaFile is null ? null : LoadCa(options.CaFile);

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
                        (errors, chainStatus) = Evaluate(certificate, policyErrors, chain);
                        return !options.VerifyTls || errors == SslPolicyErrors.None;
                    },
                }, cancellationToken);
            }
            catch (Exception e) when (e is AuthenticationException or IOException)
            {
                if (certificate is not null) data["cert-expiry"] = DaysLeft(certificate, time);
                var why = errors == SslPolicyErrors.None ? e.Message : Describe(errors, chainStatus, certificate, sni);
                return ProbeResult.Unhealthy($"TLS with {sni}: {why}", null, data);
            }
            data["tls-time"] = time.GetElapsedTime(started);
            if (certificate is not null)
            {
                data["cert-expiry"] = DaysLeft(certificate, time);
                data["cert-subject"] = certificate.Subject;
            }
            if (errors != SslPolicyErrors.None) data["tls-errors"] = Describe(errors, chainStatus, certificate, sni);
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

    private (SslPolicyErrors, X509ChainStatusFlags) Evaluate(X509Certificate2? certificate, SslPolicyErrors errors, X509Chain? systemChain)
    {
        var status = systemChain?.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (a, s) => a | s.Status) ?? X509ChainStatusFlags.NoError;
        if (_trust is null || certificate is null || !errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors)) return (errors, status);
        // Trust the configured CA: rebuild the chain with it as the root, keeping the name check the platform made.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var ok = chain.Build(certificate);
        status = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (a, s) => a | s.Status);
        return (ok ? errors & ~SslPolicyErrors.RemoteCertificateChainErrors : errors, status);
    }

    private static string Describe(SslPolicyErrors errors, X509ChainStatusFlags chain, X509Certificate2? cert, string sni)
    {
        var parts = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)) parts.Add("the server sent no certificate");
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)) parts.Add($"the certificate is not for '{sni}' (it is for {cert?.GetNameInfo(X509NameType.DnsName, false) ?? cert?.Subject})");
        if (chain.HasFlag(X509ChainStatusFlags.NotTimeValid)) parts.Add($"the certificate is expired or not yet valid (valid {cert?.NotBefore:u} to {cert?.NotAfter:u})");
        if (chain.HasFlag(X509ChainStatusFlags.UntrustedRoot) || chain.HasFlag(X509ChainStatusFlags.PartialChain))
            parts.Add("the certificate is not trusted (self-signed or an unknown CA: add its CA with ca-file)");
        if (parts.Count == 0 && errors != SslPolicyErrors.None) parts.Add($"certificate errors: {errors} ({chain})");
        return string.Join("; ", parts);
    }

    private static double DaysLeft(X509Certificate2 cert, TimeProvider time) => Math.Round((cert.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime).TotalDays, 1);

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

    private static X509Certificate2Collection LoadCa(string path)
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPemFile(path);
        return collection;
    }

    private readonly record struct Connection(Socket? Socket, string Error) : IDisposable
    {
        public void Dispose() => Socket?.Dispose();
    }
}
