using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace Sentinel.Plugins.Shared;

/// <summary>
/// Server-certificate verification shared by the TLS-speaking probes (compiled into each plugin): the platform's
/// checks, plus trust in the CAs of an optional PEM file, with failures described for people.
/// </summary>
internal sealed class TlsVerifier(string? caFile)
{
    private readonly X509Certificate2Collection? _trust = caFile is null ? null : LoadCa(caFile);

    public (SslPolicyErrors Errors, X509ChainStatusFlags Chain) Evaluate(X509Certificate2? certificate, SslPolicyErrors errors, X509Chain? systemChain)
    {
        var status = systemChain?.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (a, s) => a | s.Status) ?? X509ChainStatusFlags.NoError;
        if (_trust is null || certificate is null || !errors.HasFlag(SslPolicyErrors.RemoteCertificateChainErrors)) return (errors, status);
        // Trust the configured CA: rebuild the chain with it as the root, keeping the name check the platform made.
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(_trust);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        var ok = chain.Build(certificate);
        status = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (a, s) => a | s.Status);
        return (ok ? errors & ~SslPolicyErrors.RemoteCertificateChainErrors : errors, status);
    }

    public static string Describe(SslPolicyErrors errors, X509ChainStatusFlags chain, X509Certificate2? cert, string name)
    {
        var parts = new List<string>();
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNotAvailable)) parts.Add("the server sent no certificate");
        if (errors.HasFlag(SslPolicyErrors.RemoteCertificateNameMismatch)) parts.Add($"the certificate is not for '{name}' (it is for {cert?.GetNameInfo(X509NameType.DnsName, false) ?? cert?.Subject})");
        if (chain.HasFlag(X509ChainStatusFlags.NotTimeValid)) parts.Add($"the certificate is expired or not yet valid (valid {cert?.NotBefore:u} to {cert?.NotAfter:u})");
        if (chain.HasFlag(X509ChainStatusFlags.UntrustedRoot) || chain.HasFlag(X509ChainStatusFlags.PartialChain))
            parts.Add("the certificate is not trusted (self-signed or an unknown CA: add its CA with ca-file)");
        if (parts.Count == 0 && errors != SslPolicyErrors.None) parts.Add($"certificate errors: {errors} ({chain})");
        return string.Join("; ", parts);
    }

    /// <summary>Days left on the certificate, negative once expired.</summary>
    public static double DaysLeft(X509Certificate2 cert, TimeProvider time) => Math.Round((cert.NotAfter.ToUniversalTime() - time.GetUtcNow().UtcDateTime).TotalDays, 1);

    private static X509Certificate2Collection LoadCa(string path)
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPemFile(path);
        return collection;
    }
}
