using System.Buffers;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Sentinel.Abstractions;
using Sentinel.Plugins.Shared;

namespace Sentinel.Plugins.Http;

[ClusterWide]
internal sealed class HttpProbe : IProbe, IDisposable
{
    private readonly HttpProbeOptions _options;
    private readonly HttpClient _client;
    private readonly TlsVerifier _verifier;
    // Set by the TLS handshake of each new connection (runs of one rule never overlap).
    private X509Certificate2? _certificate;
    private string? _tlsProblem;

    // Plain-HTTP rules with no TLS settings of their own share one client (and connection pool) per follow-redirects
    // and verify-tls: 5,000 rules were 5,000 pools (433 MiB). A rule with TLS settings keeps its own: its handshake is
    // what its cert-expiry and tls-errors report.
    private static readonly Dictionary<(bool FollowRedirects, bool VerifyTls), (HttpClient Client, int Users)> Shared = [];
    private readonly (bool FollowRedirects, bool VerifyTls)? _shared;

    public HttpProbe(HttpProbeOptions options)
    {
        _options = options;
        _verifier = new TlsVerifier(options.CaFile);
        if (options.Url!.Scheme == Uri.UriSchemeHttp && options.CaFile is null && options.ClientCertificate is null)
        {
            var key = (options.FollowRedirects, options.VerifyTls);
            lock (Shared)
            {
                var (client, users) = Shared.TryGetValue(key, out var known) ? known : (NewSharedClient(options.FollowRedirects, options.VerifyTls), 0);
                Shared[key] = (client, users + 1);
                _client = client;
            }
            _shared = key;
            return;
        }
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = options.FollowRedirects,
            MaxAutomaticRedirections = 10,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        };
        handler.SslOptions.RemoteCertificateValidationCallback = (_, cert, chain, policyErrors) =>
        {
            _certificate = cert is null ? null : new X509Certificate2(cert);
            var (errors, status) = _verifier.Evaluate(_certificate, policyErrors, chain);
            _tlsProblem = errors == SslPolicyErrors.None ? null : TlsVerifier.Describe(errors, status, _certificate, options.Url!.Host);
            return !options.VerifyTls || _tlsProblem is null;
        };
        if (options.ClientCertificate is not null)
            handler.SslOptions.ClientCertificates = [LoadClientCertificate(options.ClientCertificate, options.ClientKey!)];
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    // A redirect to https is verified as the system would (unless verify-tls: false): no rule's own CA applies here.
    private static HttpClient NewSharedClient(bool followRedirects, bool verifyTls)
    {
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = followRedirects,
            MaxAutomaticRedirections = 10,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        };
        if (!verifyTls) handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }

    // A PEM key imported into an ephemeral key set cannot be used for TLS on every platform: round-trip through PKCS#12.
    private static X509Certificate2 LoadClientCertificate(string certificate, string key)
    {
        using var pem = X509Certificate2.CreateFromPemFile(certificate, key);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pfx), null);
    }

    public async ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(new HttpMethod(_options.Method.ToUpperInvariant()), _options.Url);
        if (_options.Body is not null) request.Content = new StringContent(_options.Body, Encoding.UTF8);
        foreach (var (name, value) in _options.Headers)
            if (!request.Headers.TryAddWithoutValidation(name, value)) request.Content?.Headers.TryAddWithoutValidation(name, value);
        var started = context.TimeProvider.GetTimestamp();
        HttpResponseMessage response;
        try
        {
            response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancellationToken);
        }
        catch (HttpRequestException ex)
        {
            var failed = new Dictionary<string, object> { ["error"] = ex.HttpRequestError.ToString() };
            if (_certificate is not null && _options.Url!.Scheme == "https") failed["cert-expiry"] = TlsVerifier.DaysLeft(_certificate, context.TimeProvider);
            var why = ex.HttpRequestError == HttpRequestError.SecureConnectionError && _tlsProblem is not null ? $"TLS: {_tlsProblem}" : ex.Message;
            return ProbeResult.Unhealthy($"{_options.Method} {_options.Url} failed: {why}", ex, failed);
        }
        using (response)
        {
            var body = await ReadBodyAsync(response.Content, cancellationToken);
            var elapsed = context.TimeProvider.GetElapsedTime(started);
            var status = (int)response.StatusCode;
            var data = new Dictionary<string, object>
            {
                ["status"] = status,
                ["response-time"] = elapsed,
                ["headers"] = Headers(response),
                ["body"] = Parse(body, response.Content.Headers.ContentType),
            };
            if (_certificate is not null && _options.Url!.Scheme == "https")
            {
                data["cert-expiry"] = TlsVerifier.DaysLeft(_certificate, context.TimeProvider);
                if (_tlsProblem is not null) data["tls-errors"] = _tlsProblem;
            }
            var ok = _options.ExpectStatus.Count == 0 ? status is >= 200 and < 300 : _options.ExpectStatus.Contains(status);
            var summary = $"{_options.Method} {_options.Url} → {status} {response.ReasonPhrase} in {elapsed.TotalMilliseconds:0}ms";
            return ok ? ProbeResult.Healthy(summary, data) : ProbeResult.Unhealthy(summary, null, data);
        }
    }

    // Into a pooled buffer that grows only for a large body (up to max-body): a health answer is a few hundred bytes,
    // and a 64 KiB array a check was most of what a check allocated.
    private async Task<string> ReadBodyAsync(HttpContent content, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct);
        var limit = (int)Math.Min(_options.MaxBody.Bytes, int.MaxValue);
        var buffer = ArrayPool<byte>.Shared.Rent(Math.Min(limit, 4096));
        var length = 0;
        try
        {
            while (length < limit)
            {
                if (length == buffer.Length)
                {
                    var bigger = ArrayPool<byte>.Shared.Rent((int)Math.Min(limit, 2L * buffer.Length));
                    buffer.AsSpan(0, length).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                var read = await stream.ReadAsync(buffer.AsMemory(length, Math.Min(buffer.Length, limit) - length), ct);
                if (read == 0) break;
                length += read;
            }
            return Encoding.UTF8.GetString(buffer, 0, length);
        }
        finally { ArrayPool<byte>.Shared.Return(buffer); }
    }

    private static object Parse(string body, MediaTypeHeaderValue? type)
    {
        var trimmed = body.AsSpan().TrimStart();
        var looksJson = type?.MediaType?.Contains("json", StringComparison.OrdinalIgnoreCase) == true
            || (trimmed.Length > 0 && trimmed[0] is '{' or '[');
        if (!looksJson) return body;
        try
        {
            using var doc = JsonDocument.Parse(body);
            return doc.RootElement.Clone();
        }
        catch (JsonException) { return body; }
    }

    private static Dictionary<string, string> Headers(HttpResponseMessage response)
    {
        var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        foreach (var (k, v) in response.Headers) headers[k.ToLowerInvariant()] = string.Join(", ", v);
        foreach (var (k, v) in response.Content.Headers) headers[k.ToLowerInvariant()] = string.Join(", ", v);
        return headers;
    }

    private int _disposed;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        if (_shared is not { } key)
        {
            _client.Dispose();
            return;
        }
        lock (Shared)
        {
            var (client, users) = Shared[key];
            if (users > 1) Shared[key] = (client, users - 1);
            else
            {
                Shared.Remove(key);
                client.Dispose();
            }
        }
    }
}
