using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Sentinel.Host.Tests;

/// <summary>docs/writing-plugins.md, followed to the letter: its code built outside the repo, dropped in, run.</summary>
public sealed partial class WritingPluginsDocTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-doc-plugin", Guid.NewGuid().ToString("N")[..12]);

    [Fact]
    public async Task TheDocumentedPlugin_BuildsOutsideTheRepo_AndRunsInSentinel()
    {
        var doc = await File.ReadAllTextAsync(Path.Combine(SentinelProcess.RepoRoot, "docs", "writing-plugins.md"));
        var project = Path.Combine(_dir, "Acme.Probes");
        Directory.CreateDirectory(project);
        var files = FileBlock().Matches(doc);
        files.Should().HaveCount(2);
        foreach (Match m in files) await File.WriteAllTextAsync(Path.Combine(project, m.Groups[1].Value), m.Groups[2].Value);

        var configuration = Path.GetFileName(Path.GetDirectoryName(SentinelProcess.Dll))!;
        var build = Process.Start(new ProcessStartInfo("dotnet", ["build", "-c", "Release", $"-p:SentinelHome={SentinelProcess.RepoRoot}",
            $"-p:SentinelConfiguration={configuration}", "--nologo", "-v", "quiet"]) { WorkingDirectory = project, RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await build.StandardOutput.ReadToEndAsync();
        await build.WaitForExitAsync();
        build.ExitCode.Should().Be(0, output);

        var plugins = Path.Combine(_dir, "plugins", "Acme.Probes");
        Directory.CreateDirectory(plugins);
        foreach (var f in Directory.GetFiles(Path.Combine(project, "bin", "Release", "net10.0")))
            File.Copy(f, Path.Combine(plugins, Path.GetFileName(f)));
        File.Exists(Path.Combine(plugins, "Sentinel.Abstractions.dll")).Should().BeFalse();

        var fresh = Path.Combine(_dir, "fresh.txt");
        var stale = Path.Combine(_dir, "stale.txt");
        await File.WriteAllTextAsync(fresh, new string('x', 2000));
        await File.WriteAllTextAsync(stale, "old");
        File.SetLastWriteTimeUtc(stale, DateTime.UtcNow.AddHours(-3));
        var config = Path.Combine(_dir, "sentinel.yaml");
        await File.WriteAllTextAsync(config, $"""
            engine: {"{"} plugins: plugins {"}"}
            rules:
              - name: fresh
                probe: {"{"} type: file-age, with: {"{"} path: "{fresh}", max-age: 1h {"}"} {"}"}
                conditions: ["size > 1kB"]
              - name: stale
                probe: {"{"} type: file-age, with: {"{"} path: "{stale}", max-age: 1h {"}"} {"}"}
            """);

        var ok = await SentinelProcess.RunAsync(_dir, "check", "fresh", "--config", config);
        ok.Exit.Should().Be(0, ok.Stdout + ok.Stderr);
        var both = await SentinelProcess.RunAsync(_dir, "check", "--config", config);
        both.Exit.Should().Be(1);
        both.Stdout.Should().Contain("not written for 180 min");
    }

    [GeneratedRegex(@"<!-- file: (\S+) -->\s*```\w+\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex FileBlock();

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
