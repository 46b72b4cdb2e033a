using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Twilio;

/// <summary>
/// <c>POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json</c> with Basic auth and form fields To, From (or
/// MessagingServiceSid) and Body, once per recipient. Twilio's error body (<c>code</c>, <c>message</c>) is read:
/// 4xx other than 429 is permanent (invalid number, unverified sender), 429 and 5xx are retried.
/// Recipients already accepted are not texted again when the engine retries the rest.
/// </summary>
internal sealed class TwilioSmsNotifier(TwilioSmsNotifierOptions options) : IAction, IDisposable
{
    private readonly HttpClient _http = new() { Timeout = options.Timeout };
    private readonly HashSet<string> _acceptedFor = [];
    private string? _acceptedBody;

    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var n = context.Notification ?? throw new ActionFailedException("twilio-sms is a notification channel: use it under notify:", permanent: true);
        var body = Shorten(n.Short, options.MaxLength);
        if (_acceptedBody != body) { _acceptedFor.Clear(); _acceptedBody = body; }
        var url = new Uri(options.BaseUrl, $"2010-04-01/Accounts/{Uri.EscapeDataString(options.AccountSid!)}/Messages.json");
        var (user, secret) = options.ApiKeySid is { Length: > 0 } key ? (key, options.ApiKeySecret!) : (options.AccountSid!, options.AuthToken!);
        var auth = new AuthenticationHeaderValue("Basic", Convert.ToBase64String(Encoding.UTF8.GetBytes($"{user}:{secret}")));
        ActionFailedException? failure = null;
        foreach (var to in options.To)
        {
            if (_acceptedFor.Contains(to)) continue;
            var form = new List<KeyValuePair<string, string>> { new("To", to), new("Body", body) };
            form.Add(options.MessagingServiceSid is { Length: > 0 } ms ? new("MessagingServiceSid", ms) : new("From", options.From!));
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new FormUrlEncodedContent(form) };
            request.Headers.Authorization = auth;
            using var response = await _http.SendAsync(request, cancellationToken);
            var answer = await response.Content.ReadAsStringAsync(cancellationToken);
            if (response.IsSuccessStatusCode)
            {
                _acceptedFor.Add(to);
                context.Output.WriteLine($"{to}: accepted ({(int)response.StatusCode}) sid {Field(answer, "sid") ?? "?"} status {Field(answer, "status") ?? "?"}");
                continue;
            }
            var code = Field(answer, "code");
            var message = Field(answer, "message") ?? answer;
            context.Output.WriteLine($"{to}: {(int)response.StatusCode} error {code}: {message}");
            var permanent = (int)response.StatusCode is >= 400 and < 500 && response.StatusCode != HttpStatusCode.TooManyRequests;
            failure ??= new ActionFailedException($"Twilio refused the message to {to}: {(int)response.StatusCode} error {code}: {message}", permanent);
        }
        if (failure is not null) throw failure;
    }

    /// <summary>Cuts to <paramref name="max"/> characters at a word boundary where one is near, with an ellipsis.</summary>
    internal static string Shorten(string text, int max)
    {
        text = string.Join(' ', text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
        if (text.Length <= max) return text;
        var cut = text.LastIndexOf(' ', max - 1, Math.Min(max - 1, 30));
        return (cut > 0 ? text[..cut] : text[..(max - 1)]) + "…";
    }

    private static string? Field(string json, string name)
    {
        try
        {
            using var doc = JsonDocument.Parse(json);
            return doc.RootElement.TryGetProperty(name, out var v) ? v.ToString() : null;
        }
        catch (JsonException) { return null; }
    }

    public void Dispose() => _http.Dispose();
}
