using System.ComponentModel;
using System.ComponentModel.DataAnnotations;
using Sentinel.Abstractions;

namespace Sentinel.Plugins.Http;

public sealed class HttpProbeOptions : IValidatableObject
{
    [Required, Description("The URL to request, e.g. http://127.0.0.1:8080/health.")]
    public Uri? Url { get; set; }

    [Description("The HTTP method.")]
    public string Method { get; set; } = "GET";

    [Description("Request headers.")]
    public Dictionary<string, string> Headers { get; set; } = [];

    [Description("Request body (sent as text).")]
    public string? Body { get; set; }

    [Description("Status codes that count as healthy. Empty: any 2xx.")]
    public List<int> ExpectStatus { get; set; } = [];

    [Description("Follow redirects (up to 10).")]
    public bool FollowRedirects { get; set; } = true;

    [Description("Verify the server's TLS certificate. Turn off only for a self-signed certificate you trust.")]
    public bool VerifyTls { get; set; } = true;

    [Description("A PEM file of CA certificates to trust besides the system's (a private CA).")]
    [FilePath]
    public string? CaFile { get; set; }

    [Description("A PEM client certificate to present (mutual TLS), with client-key.")]
    [FilePath]
    public string? ClientCertificate { get; set; }

    [Description("The PEM private key of client-certificate (unencrypted).")]
    [FilePath]
    public string? ClientKey { get; set; }

    [Description("How much of the body is read and kept for conditions.")]
    public ByteSize MaxBody { get; set; } = new(1024 * 1024);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Url is not null && Url.Scheme is not ("http" or "https"))
            yield return new ValidationResult($"url must start with http:// or https:// (found '{Url.Scheme}://')", [nameof(Url)]);
        if (CaFile is not null && !File.Exists(CaFile))
            yield return new ValidationResult($"ca-file {CaFile} does not exist", [nameof(CaFile)]);
        if ((ClientCertificate is null) != (ClientKey is null))
            yield return new ValidationResult("client-certificate and client-key go together: set both", [nameof(ClientCertificate)]);
        foreach (var (name, path) in new[] { ("client-certificate", ClientCertificate), ("client-key", ClientKey) })
            if (path is not null && !File.Exists(path)) yield return new ValidationResult($"{name} {path} does not exist", [nameof(ClientCertificate)]);
        if (ExpectStatus.Any(s => s is < 100 or > 599))
            yield return new ValidationResult("expect-status holds HTTP status codes, between 100 and 599", [nameof(ExpectStatus)]);
    }
}
