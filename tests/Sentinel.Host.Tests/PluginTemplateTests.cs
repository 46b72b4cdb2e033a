using System.Diagnostics;
using System.Text.Json;

namespace Sentinel.Host.Tests;

/// <summary>The whole path of a plugin author: `dotnet new sentinel-plugin`, build, test, drop into a running Sentinel.</summary>
public sealed class PluginTemplateTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-template-tests", Guid.NewGuid().ToString("N")[..12]);

    public PluginTemplateTests() => Directory.CreateDirectory(_dir);

    private async Task<string> Dotnet(string workingDirectory, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = await p.StandardOutput.ReadToEndAsync() + await p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        p.ExitCode.Should().Be(0, $"dotnet {string.Join(' ', args)}:\n{output}");
        return output;
    }

    [Fact]
    public async Task TheTemplate_MakesAPluginThatBuildsTestsAndRunsInSentinel()
    {
        var hive = Path.Combine(_dir, "hive");
        var src = Path.Combine(_dir, "src");
        await Dotnet(_dir, "new", "install", Path.Combine(SentinelProcess.RepoRoot, "templates", "sentinel-plugin"), "--debug:custom-hive", hive);
        await Dotnet(_dir, "new", "sentinel-plugin", "-n", "Acme.Probes", "-o", src, "--sentinelHome", SentinelProcess.RepoRoot, "--debug:custom-hive", hive);
        File.ReadAllText(Path.Combine(src, "Acme.Probes", "Acme.Probes.csproj")).Should().Contain("Sentinel.Abstractions").And.NotContain("ProjectReference");
        // --probeName names the probe and its classes (and files); --probeDescription its one line.
        var renamed = Path.Combine(_dir, "renamed");
        await Dotnet(_dir, "new", "sentinel-plugin", "-n", "Foo.Checks", "-o", renamed, "--probeName", "disk-latency", "--probeDescription", "Reads are fast enough.",
            "--sentinelHome", SentinelProcess.RepoRoot, "--debug:custom-hive", hive);
        File.ReadAllText(Path.Combine(renamed, "Foo.Checks", "Plugin.cs")).Should()
            .Contain("AddProbe<DiskLatencyProbe, DiskLatencyProbeOptions>(\"disk-latency\", \"Reads are fast enough.\")");
        File.Exists(Path.Combine(renamed, "Foo.Checks", "DiskLatencyProbe.cs")).Should().BeTrue();
        File.Exists(Path.Combine(renamed, "Foo.Checks.Tests", "DiskLatencyProbeTests.cs")).Should().BeTrue();
        Directory.GetFiles(renamed, "*.cs", SearchOption.AllDirectories).Select(File.ReadAllText).Should().NotContain(t => t.Contains("FileAge") || t.Contains("file-age"));

        var configuration = Path.GetFileName(Path.GetDirectoryName(SentinelProcess.Dll))!;
        await Dotnet(src, "build", "Acme.Probes", "-c", "Release", $"-p:SentinelConfiguration={configuration}", "--nologo", "-v", "quiet");
        var tests = await Dotnet(src, "test", "Acme.Probes.Tests", $"-p:SentinelConfiguration={configuration}", "--nologo");
        tests.Should().Contain("Passed!").And.Contain("Passed:     6", "its probe tests and Sentinel's conformance kit");

        // Before the plugin is dropped in, a rule of its type is a config error naming the type.
        var watched = Path.Combine(_dir, "watched.txt");
        File.WriteAllText(watched, new string('x', 2048));
        var rule = $$"""
            rules:
              - name: watched-file
                every: 200ms
                probe: { type: file-age, with: { path: "{{watched}}", max-age: 1h } }
                conditions: ["size > 1kB"]
            """;
        string Config(string rules)
        {
            var path = SentinelProcess.WriteConfig(_dir, rules);
            // This Sentinel's plugin folder holds only what the author drops in.
            File.WriteAllText(path, File.ReadAllText(path).Replace($"plugins: \"{Path.Combine(SentinelProcess.RepoRoot, "plugins")}\"", "plugins: plugins"));
            return path;
        }
        Directory.CreateDirectory(Path.Combine(_dir, "plugins"));
        var (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "validate", "--config", Config(rule));
        exit.Should().Be(2);
        stderr.Should().Contain("unknown probe type 'file-age'");

        // A running Sentinel picks up the dropped-in folder, then the rule that uses it.
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", Config("rules: []"));
        await Eventually.Until(() => sentinel.Stdout.Contains("Status page:"), context: sentinel.Output);
        var plugin = Path.Combine(_dir, "plugins", "Acme.Probes");
        Directory.CreateDirectory(plugin);
        foreach (var f in Directory.GetFiles(Path.Combine(src, "Acme.Probes", "bin", "Release", "net10.0"))) File.Copy(f, Path.Combine(plugin, Path.GetFileName(f)));
        File.Exists(Path.Combine(plugin, "Sentinel.Abstractions.dll")).Should().BeFalse("the contract is never shipped in a plugin folder");
        await Eventually.Until(() => sentinel.Stdout.Contains("Loaded plugin Acme.Probes"), context: sentinel.Output);
        Config(rule);
        await Eventually.Until(() => RuleStatus() == "healthy", context: sentinel.Output);
        sentinel.Stdout.Should().Contain("probe 'file-age'");
    }

    private string? RuleStatus()
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            return doc.RootElement.GetProperty("rules").EnumerateArray().SingleOrDefault(r => r.GetProperty("name").GetString() == "watched-file") is { ValueKind: JsonValueKind.Object } r
                ? r.GetProperty("status").GetString() : null;
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException) { return null; }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
