using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Twilio;

public sealed class TwilioSmsNotifierOptions : IValidatableObject
{
    [Required, Description("The account SID (AC...).")]
    public string? AccountSid { get; set; }

    [Secret, Description("The account's auth token; or use api-key-sid + api-key-secret.")]
    public string? AuthToken { get; set; }

    [Description("An API key SID (SK...), used with api-key-secret instead of the auth token.")]
    public string? ApiKeySid { get; set; }

    [Secret]
    public string? ApiKeySecret { get; set; }

    [Description("The sending number in E.164 (+15550001111); or set messaging-service-sid.")]
    public string? From { get; set; }

    public string? MessagingServiceSid { get; set; }

    [Description("Recipients in E.164; one message each.")]
    public List<string> To { get; set; } = [];

    [Description("Twilio's API address; change it for tests or Twilio-compatible gateways.")]
    public Uri BaseUrl { get; set; } = new("https://api.twilio.com");

    [Range(20, 1600), Description("Bodies longer than this are cut (with an ellipsis). 160 fits one GSM-7 segment.")]
    public int MaxLength { get; set; } = 320;

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(15);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (string.IsNullOrWhiteSpace(AuthToken) == (string.IsNullOrWhiteSpace(ApiKeySid) || string.IsNullOrWhiteSpace(ApiKeySecret)))
            yield return new("set auth-token, or api-key-sid with api-key-secret (one of them)", [nameof(AuthToken)]);
        if (string.IsNullOrWhiteSpace(From) == string.IsNullOrWhiteSpace(MessagingServiceSid))
            yield return new("set from (a number) or messaging-service-sid (one of them)", [nameof(From)]);
        if (To.Count == 0) yield return new("set to: the numbers to text, e.g. [\"+15550002222\"]", [nameof(To)]);
        foreach (var n in To.Where(n => !System.Text.RegularExpressions.Regex.IsMatch(n, @"^\+[1-9]\d{6,14}$")))
            yield return new($"'{n}' is not an E.164 number (+ and country code, digits only, e.g. +15550002222)", [nameof(To)]);
    }
}
