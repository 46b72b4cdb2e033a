using System.Globalization;
using System.Text;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Healthchecks;

/// <summary>
/// The healthchecks.io ping protocol: <c>{check}</c> success, <c>/start</c>, <c>/fail</c>, <c>/log</c>, <c>/{0-255}</c>
/// exit status (by <see cref="ActionContext.Event"/>: success, start, fail, log, exit:N), <c>?rid=</c> from
/// <see cref="ActionContext.RunId"/>, the message as the body, cut to the server's <c>Ping-Body-Limit</c>
/// (100 kB until the server has said). 404 and 400 are permanent (a wrong check address); 429 and 5xx are
/// retried by the engine.
/// </summary>
internal sealed class HealthchecksPinger(HealthchecksPingerOptions options) : IAction, IDisposable
{
    private readonly HttpClient _http = new() { Timeout = options.Timeout };
    private int _bodyLimit = 100_000;

    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var suffix = context.Event switch
        {
            "start" => "/start",
            "fail" or "down" => "/fail",
            "log" => "/log",
            var e when e.StartsWith("exit:", StringComparison.Ordinal) && int.TryParse(e.AsSpan(5), NumberStyles.None, CultureInfo.InvariantCulture, out var code) && code is >= 0 and <= 255 => "/" + code,
            _ => "",
        };
        var check = options.Url?.ToString().TrimEnd('/')
            ?? options.Base.ToString().TrimEnd('/') + "/" + (options.Uuid ?? $"{options.PingKey}/{options.Slug}");
        var url = check + suffix + (context.RunId is { } rid ? "?rid=" + rid : "");
        var body = Encoding.UTF8.GetBytes(context.Message);
        if (body.Length > _bodyLimit) body = body[.._bodyLimit];
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        using var response = await _http.SendAsync(request, cancellationToken);
        if (response.Headers.TryGetValues("Ping-Body-Limit", out var limits) && int.TryParse(limits.FirstOrDefault(), out var limit) && limit > 0) _bodyLimit = limit;
        var answer = (await response.Content.ReadAsStringAsync(cancellationToken)).Trim();
        var shown = options.PingKey is null ? url : url.Replace(options.PingKey, "***", StringComparison.Ordinal);
        context.Output.WriteLine($"POST {shown} -> {(int)response.StatusCode} {answer}");
        if (response.IsSuccessStatusCode) return;
        var permanent = (int)response.StatusCode is 400 or 404;
        throw new ActionFailedException($"{shown} answered {(int)response.StatusCode} '{answer}'" + ((int)response.StatusCode == 404 ? ": no such check (is the uuid or slug right?)" : ""), permanent);
    }

    public void Dispose() => _http.Dispose();
}
