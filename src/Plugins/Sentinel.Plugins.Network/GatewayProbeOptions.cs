using Sentinel.Abstractions;
using System.ComponentModel;
using System.ComponentModel.DataAnnotations;

namespace Sentinel.Plugins.Network;

public sealed class GatewayProbeOptions : IValidatableObject
{
    [Required, Description("Host name or IP address, e.g. gateway.discord.gg or 127.0.0.1.")]
    public string? Host { get; set; }

    [Range(1, 65535), Description("TCP port.")]
    public int Port { get; set; } = 443;

    [Description("Perform a TLS handshake after connecting.")]
    public bool Tls { get; set; }

    [Description("The TLS server name (SNI) and the name the certificate must carry. Default: host.")]
    public string? Sni { get; set; }

    [Description("Verify the certificate (trusted, valid now, for this name). Turn off only to measure a server you know is self-signed.")]
    public bool VerifyTls { get; set; } = true;

    [Description("A PEM file of CA certificates to trust in addition to the system's (a private CA).")]
    [FilePath]
    public string? CaFile { get; set; }

    [Description("After connecting (and TLS), send GET for this path and expect any HTTP response, e.g. /.")]
    public string? HttpPath { get; set; }

    [Description("After connecting (and TLS), request a WebSocket upgrade on this path and expect 101 Switching Protocols.")]
    public string? WebsocketPath { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (HttpPath is not null && WebsocketPath is not null)
            yield return new ValidationResult("set http-path or websocket-path, not both", [nameof(WebsocketPath)]);
        foreach (var (name, path) in new[] { (nameof(HttpPath), HttpPath), (nameof(WebsocketPath), WebsocketPath) })
            if (path is not null && !path.StartsWith('/')) yield return new ValidationResult($"{(name == nameof(HttpPath) ? "http-path" : "websocket-path")} must start with '/'", [name]);
        if (CaFile is not null && !File.Exists(CaFile))
            yield return new ValidationResult($"ca-file {CaFile} does not exist", [nameof(CaFile)]);
        if ((Sni is not null || CaFile is not null) && !Tls)
            yield return new ValidationResult("sni and ca-file apply to TLS: add tls: true", [nameof(Tls)]);
    }
}
