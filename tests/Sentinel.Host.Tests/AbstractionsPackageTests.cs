using System.Diagnostics;
using System.IO.Compression;

namespace Sentinel.Host.Tests;

/// <summary>`dotnet pack` of the plugin contract gives a package a plugin author can reference.</summary>
public sealed class AbstractionsPackageTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sentinel-pack-").FullName;

    // The version every project builds with (Directory.Build.props); the contract's is its major.minor.
    private static readonly string Version = System.Text.RegularExpressions.Regex.Match(
        File.ReadAllText(Path.Combine(SentinelProcess.RepoRoot, "Directory.Build.props")), "<Version>([^<]+)</Version>").Groups[1].Value;

    [Fact]
    public async Task Pack_ProducesAVersionedPackage_WithTheAssemblyItsXmlDocsAndAReadme()
    {
        await PackAsync("Sentinel.Abstractions");
        var nupkg = Directory.GetFiles(_dir, "*.nupkg").Should().ContainSingle().Subject;
        Version.Should().Be("0.2.0", "contract 0.2 (ProbeStatus.Unhealthy = 0) ships as 0.2.0");
        Path.GetFileName(nupkg).Should().Be($"Sentinel.Abstractions.{Version}.nupkg");
        using var zip = ZipFile.OpenRead(nupkg);
        zip.Entries.Select(e => e.FullName).Should().Contain(["lib/net10.0/Sentinel.Abstractions.dll", "lib/net10.0/Sentinel.Abstractions.xml", "README.md"]);
        using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
        var text = await nuspec.ReadToEndAsync();
        text.Should().Contain("<readme>README.md</readme>").And.Contain("Microsoft.Extensions.Logging.Abstractions");
        using var xml = new StreamReader(zip.GetEntry("lib/net10.0/Sentinel.Abstractions.xml")!.Open());
        (await xml.ReadToEndAsync()).Should().Contain("M:Sentinel.Abstractions.IProbe.CheckAsync", "the contract ships its XML docs");
    }

    [Fact]
    public async Task TheConformanceKit_PacksToo_DependingOnTheContract()
    {
        await PackAsync("Sentinel.Plugins.Testing");
        using var zip = ZipFile.OpenRead(Path.Combine(_dir, $"Sentinel.Plugins.Testing.{Version}.nupkg"));
        zip.Entries.Select(e => e.FullName).Should().Contain("lib/net10.0/Sentinel.Plugins.Testing.dll");
        using var nuspec = new StreamReader(zip.Entries.Single(e => e.FullName.EndsWith(".nuspec")).Open());
        (await nuspec.ReadToEndAsync()).Should().Contain("id=\"Sentinel.Abstractions\"");
    }

    private async Task PackAsync(string project)
    {
        var path = Path.Combine(SentinelProcess.RepoRoot, "src", "Engine", project);
        var psi = new ProcessStartInfo("dotnet", ["pack", path, "-c", "Release", "-o", _dir, "--nologo", "-v", "quiet"]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var pack = Process.Start(psi)!;
        var output = await pack.StandardOutput.ReadToEndAsync() + await pack.StandardError.ReadToEndAsync();
        await pack.WaitForExitAsync();
        pack.ExitCode.Should().Be(0, output);
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
