using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Healthchecks;

public sealed class HealthchecksPingerOptions : IValidatableObject
{
    [Secret, Description("The whole ping URL, e.g. https://hc-ping.com/<uuid>; or give base with uuid, or base with ping-key and slug.")]
    public Uri? Url { get; set; }

    [Description("The ping server: https://hc-ping.com, or a self-hosted healthchecks' /ping address.")]
    public Uri Base { get; set; } = new("https://hc-ping.com");

    [Secret, Description("The check's UUID (whoever knows it can ping the check).")]
    public string? Uuid { get; set; }

    [Secret, Description("The project's ping key (with slug).")]
    public string? PingKey { get; set; }

    public string? Slug { get; set; }

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var forms = (Url is not null ? 1 : 0) + (Uuid is not null ? 1 : 0) + (PingKey is not null || Slug is not null ? 1 : 0);
        if (forms != 1) yield return new("say which check: url, or uuid, or ping-key with slug (one of them)", [nameof(Url)]);
        if ((PingKey is null) != (Slug is null)) yield return new("ping-key and slug go together", [nameof(Slug)]);
        if (Uuid is not null && !Guid.TryParse(Uuid, out _)) yield return new("uuid is not a UUID (8-4-4-4-12 hex digits: copy it from the check's page)", [nameof(Uuid)]);
        if (Url is not null && Url.Scheme is not ("http" or "https")) yield return new("url must be http:// or https://", [nameof(Url)]);
    }
}
