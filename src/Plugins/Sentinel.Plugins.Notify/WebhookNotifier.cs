using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Notify;

public enum WebhookFormat { Json, Discord, Slack, Telegram }

public sealed class WebhookNotifierOptions : IValidatableObject
{
    [Secret, Description("Where to POST (secret: a Discord or Slack webhook address is its own credential). For telegram, the Bot API base (default https://api.telegram.org); the path /bot<token>/sendMessage is added.")]
    public Uri? Url { get; set; }

    [Description("json: Sentinel's own payload (or 'template'); discord, slack: their incoming-webhook formats; telegram: Bot API sendMessage.")]
    public WebhookFormat Format { get; set; } = WebhookFormat.Json;

    [Description("For format json: the body to send, with {subject}, {text}, {short}, {rule}, {kind}, {status} replaced (JSON-escaped).")]
    public string? Template { get; set; }

    public Dictionary<string, string> Headers { get; set; } = [];

    [Secret, Description("telegram: the bot token.")]
    public string? BotToken { get; set; }

    [Description("telegram: the chat id (a number, or @channelname).")]
    public string? ChatId { get; set; }

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Format == WebhookFormat.Telegram)
        {
            if (string.IsNullOrWhiteSpace(BotToken)) yield return new("telegram needs bot-token (from @BotFather), e.g. bot-token: \"${TELEGRAM_TOKEN}\"", [nameof(BotToken)]);
            if (string.IsNullOrWhiteSpace(ChatId)) yield return new("telegram needs chat-id", [nameof(ChatId)]);
        }
        else if (Url is null) yield return new($"set url to the webhook address", [nameof(Url)]);
        if (Url is not null && Url.Scheme is not ("http" or "https")) yield return new("url must be http:// or https://", [nameof(Url)]);
        if (Template is not null && Format != WebhookFormat.Json) yield return new("template applies to format json only", [nameof(Template)]);
    }
}

/// <summary>
/// POSTs a notification as JSON. 2xx is accepted; 4xx other than 408/429 is permanent (the request itself is
/// wrong: a deleted webhook, a bad token), everything else is retried by the engine.
/// </summary>
internal sealed class WebhookNotifier(WebhookNotifierOptions options) : IAction, IDisposable
{
    private readonly HttpClient _http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = options.Timeout };

    public async ValueTask ExecuteAsync(ActionContext context, CancellationToken cancellationToken)
    {
        var n = context.Notification ?? throw new ActionFailedException("webhook is a notification channel: use it under notify:", permanent: true);
        var (url, body) = options.Format switch
        {
            WebhookFormat.Discord => (options.Url!, Serialize(new JsonObject { ["content"] = Cut($"**{n.Subject}**\n{n.Text}", 2000) })),
            WebhookFormat.Slack => (options.Url!, Serialize(new JsonObject { ["text"] = Cut($"*{n.Subject}*\n{n.Text}", 40000) })),
            WebhookFormat.Telegram => (new Uri((options.Url ?? new Uri("https://api.telegram.org")).ToString().TrimEnd('/') + $"/bot{options.BotToken}/sendMessage"),
                Serialize(new JsonObject { ["chat_id"] = options.ChatId, ["text"] = Cut($"{n.Subject}\n{n.Text}", 4096), ["disable_web_page_preview"] = true })),
            _ => (options.Url!, options.Template is { } t ? Fill(t, n) : Serialize(Payload(n))),
        };
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        foreach (var (k, v) in options.Headers) request.Headers.TryAddWithoutValidation(k, v);
        using var response = await _http.SendAsync(request, cancellationToken);
        var answer = await response.Content.ReadAsStringAsync(cancellationToken);
        // The address is the credential (a Discord or Slack webhook's path is its token): only its host is shown.
        var shown = options.Format == WebhookFormat.Telegram ? url.GetLeftPart(UriPartial.Authority) + "/bot***/sendMessage" : url.GetLeftPart(UriPartial.Authority) + "/***";
        context.Output.WriteLine($"POST {shown} -> {(int)response.StatusCode} {response.ReasonPhrase} {Cut(answer, 300)}".TrimEnd());
        if (response.IsSuccessStatusCode) return;
        var code = (int)response.StatusCode;
        var permanent = code is >= 400 and < 500 && response.StatusCode is not (HttpStatusCode.RequestTimeout or HttpStatusCode.TooManyRequests);
        throw new ActionFailedException($"{shown} answered {code} {response.ReasonPhrase}: {Cut(answer, 200)}", permanent);
    }

    private static JsonObject Payload(Notification n) => new()
    {
        ["subject"] = n.Subject,
        ["text"] = n.Text,
        ["short"] = n.Short,
        ["test"] = n.IsTest,
        ["items"] = JsonSerializer.SerializeToNode(n.Items, new JsonSerializerOptions(JsonSerializerDefaults.Web)),
    };

    private static string Fill(string template, Notification n)
    {
        var first = n.Items.Count > 0 ? n.Items[0] : null;
        string Esc(string? s) => JsonEncodedText.Encode(s ?? "").ToString();
        return template.Replace("{subject}", Esc(n.Subject)).Replace("{text}", Esc(n.Text)).Replace("{short}", Esc(n.Short))
            .Replace("{rule}", Esc(first?.Rule)).Replace("{kind}", Esc(first?.Kind)).Replace("{status}", Esc(first?.Status));
    }

    private static string Serialize(JsonObject o) => o.ToJsonString();

    private static string Cut(string s, int max) => s.Length <= max ? s : s[..(max - 1)] + "…";

    public void Dispose() => _http.Dispose();
}
