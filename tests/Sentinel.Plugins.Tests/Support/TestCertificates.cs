using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Sentinel.Plugins.Tests.Support;

/// <summary>A private CA and server certificates issued by it, made fresh for each test run.</summary>
public static class TestCertificates
{
    public static X509Certificate2 Ca { get; } = CreateCa();

    private static X509Certificate2 CreateCa()
    {
        using var key = RSA.Create(2048);
        var req = new CertificateRequest("CN=Sentinel Test CA", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        return req.CreateSelfSigned(DateTimeOffset.UtcNow.AddYears(-1), DateTimeOffset.UtcNow.AddYears(5));
    }

    /// <summary>A server certificate for <paramref name="dnsName"/> (and 127.0.0.1 when it is localhost), issued by <see cref="Ca"/>.</summary>
    public static X509Certificate2 Server(string dnsName, DateTimeOffset notBefore, DateTimeOffset notAfter)
    {
        using var key = RSA.Create(2048);
        var req = new CertificateRequest($"CN={dnsName}", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        if (dnsName == "localhost") san.AddIpAddress(IPAddress.Loopback);
        req.CertificateExtensions.Add(san.Build());
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, true, false));
        using var issued = req.Create(Ca, notBefore, notAfter, RandomNumberGenerator.GetBytes(8));
        using var withKey = issued.CopyWithPrivateKey(key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pfx), null);
    }

    /// <summary>A client certificate issued by <see cref="Ca"/>, written as PEM certificate and key files.</summary>
    public static (string Certificate, string Key) ClientPemFiles()
    {
        using var key = RSA.Create(2048);
        var req = new CertificateRequest("CN=sentinel-client", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.2")], false));
        req.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Ca, true, false));
        using var cert = req.Create(Ca, DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30), RandomNumberGenerator.GetBytes(8));
        var dir = Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), $"sentinel-client-{Guid.NewGuid():N}")).FullName;
        var certPath = Path.Combine(dir, "client.pem");
        var keyPath = Path.Combine(dir, "client.key");
        File.WriteAllText(certPath, cert.ExportCertificatePem());
        File.WriteAllText(keyPath, key.ExportPkcs8PrivateKeyPem());
        return (certPath, keyPath);
    }

    public static string CaPemFile()
    {
        var path = Path.Combine(Path.GetTempPath(), $"sentinel-ca-{Guid.NewGuid():N}.pem");
        File.WriteAllText(path, Ca.ExportCertificatePem());
        return path;
    }
}
