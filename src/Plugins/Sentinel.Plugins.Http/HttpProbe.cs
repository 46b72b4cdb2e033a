using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Http;

internal sealed class HttpProbe : IProbe, IDisposable
{
    private readonly HttpProbeOptions _options;
    private readonly HttpClient _client;

    public HttpProbe(HttpProbeOptions options)
    {
        _options = options;
        var handler = new SocketsHttpHandler
        {
            AllowAutoRedirect = options.FollowRedirects,
            MaxAutomaticRedirections = 10,
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
        };
        if (!options.VerifyTls) handler.SslOptions.RemoteCertificateValidationCallback = (_, _, _, _) => true;
        _client = new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
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
            return ProbeResult.Unhealthy($"{_options.Method} {_options.Url} failed: {ex.Message}", ex,
                new Dictionary<string, object> { ["error"] = ex.HttpRequestError.ToString() });
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
            var ok = _options.ExpectStatus.Count == 0 ? status is >= 200 and < 300 : _options.ExpectStatus.Contains(status);
            var summary = $"{_options.Method} {_options.Url} → {status} {response.ReasonPhrase} in {elapsed.TotalMilliseconds:0}ms";
            return ok ? ProbeResult.Healthy(summary, data) : ProbeResult.Unhealthy(summary, null, data);
        }
    }

    private async Task<string> ReadBodyAsync(HttpContent content, CancellationToken ct)
    {
        await using var stream = await content.ReadAsStreamAsync(ct);
        var limit = (int)Math.Min(_options.MaxBody.Bytes, int.MaxValue);
        var buffer = new byte[Math.Min(limit, 64 * 1024)];
        using var collected = new MemoryStream();
        int read;
        while (collected.Length < limit && (read = await stream.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, limit - collected.Length)), ct)) > 0)
            collected.Write(buffer, 0, read);
        return Encoding.UTF8.GetString(collected.GetBuffer(), 0, (int)collected.Length);
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

    public void Dispose() => _client.Dispose();
}
