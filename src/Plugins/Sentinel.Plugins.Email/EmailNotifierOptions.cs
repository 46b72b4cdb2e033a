using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using MimeKit;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Email;

public enum SmtpTls { Starttls, Ssl, None }

public sealed class EmailNotifierOptions : IValidatableObject
{
    [Required, Description("The SMTP server's host name.")]
    public string? Host { get; set; }

    [Range(1, 65535), Description("Default: 587 for starttls, 465 for ssl, 25 for none.")]
    public int? Port { get; set; }

    [Description("starttls (upgrade after connecting), ssl (TLS from the start), or none (plain text: loopback and tests only).")]
    public SmtpTls Tls { get; set; } = SmtpTls.Starttls;

    [Description("Accept a certificate that does not validate (self-signed test servers only).")]
    public bool VerifyTls { get; set; } = true;

    public string? Username { get; set; }

    [Secret]
    public string? Password { get; set; }

    [Required, Description("The sender, e.g. \"Sentinel <alerts@example.com>\".")]
    public string? From { get; set; }

    public List<string> To { get; set; } = [];

    public List<string> Cc { get; set; } = [];

    [Description("Send an HTML part next to the plain text.")]
    public bool Html { get; set; } = true;

    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (To.Count == 0) yield return new("set to: the addresses to mail, e.g. [ops@example.com]", [nameof(To)]);
        foreach (var a in To.Concat(Cc).Append(From ?? "").Where(a => a.Length > 0 && !MailboxAddress.TryParse(a, out _)))
            yield return new($"'{a}' is not an email address", [nameof(To)]);
        if (Password is not null && Username is null) yield return new("password without username: set username too", [nameof(Username)]);
    }
}
