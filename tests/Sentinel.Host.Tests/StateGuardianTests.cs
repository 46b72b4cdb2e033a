namespace Sentinel.Host.Tests;

/// <summary>The bot-state guardian recipe end to end: hourly-style backups, and on corruption restore + restart.</summary>
public sealed class StateGuardianTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-guardian-host", Guid.NewGuid().ToString("N")[..12]);
    private static readonly string Service = Path.Combine(SentinelProcess.RepoRoot, "tests", "services", "testservice.py");

    public StateGuardianTests() => Directory.CreateDirectory(_dir);

    private string StateFile => Path.Combine(_dir, "state.json");
    private string Pidfile => Path.Combine(_dir, "state", "supervise", "bot.pid");

    [Fact]
    public async Task CorruptedTruncatedOrDeletedStateFile_IsRestoredFromTheNewestValidBackup_AndTheServiceRestarted()
    {
        File.WriteAllText(StateFile, """{"sessions": ["a", "b"]}""");
        var config = SentinelProcess.WriteConfig(_dir, $$"""
            rules:
              - name: bot-state-backup
                every: 200ms
                probe: { type: timer }
                run: [{ type: backup, with: { path: state.json, backup-dir: backups, keep: 5 } }]
              - name: bot
                every: 200ms
                failure-threshold: 1
                supervise: { command: [/usr/bin/python3, "{{Service}}", --port-file, port] , cwd: "." }
                probe: { type: file-valid, with: { path: state.json } }
                remediate:
                  - { type: restore, with: { path: state.json, backup-dir: backups } }
                  - { type: restart }
                grace: 500ms
                backoff: { initial: 100ms, max: 100ms }
            """);
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => Directory.Exists(Path.Combine(_dir, "backups")) && Directory.GetFiles(Path.Combine(_dir, "backups")).Length == 1 && File.Exists(Pidfile), context: sentinel.Output);

        var corruptions = new (string Name, Action Corrupt)[]
        {
            ("truncated", () => File.WriteAllText(StateFile, """{"sessions": ["a", """)),
            ("garbage", () => File.WriteAllBytes(StateFile, [0, 1, 2, 0xff, 0xfe])),
            ("deleted", () => File.Delete(StateFile)),
        };
        foreach (var (name, corrupt) in corruptions)
        {
            var pid = File.ReadAllText(Pidfile).Trim();
            corrupt();
            await Eventually.Until(() => File.Exists(StateFile) && File.ReadAllText(StateFile) == """{"sessions": ["a", "b"]}"""
                && File.Exists(Pidfile) && File.ReadAllText(Pidfile).Trim() != pid, context: sentinel.Output);
            await Eventually.Until(() => sentinel.Stdout.Split("done: ran restore, restart").Length > Array.IndexOf(corruptions.Select(c => c.Name).ToArray(), name) + 1, context: sentinel.Output);
        }
        Directory.GetFiles(_dir, "state.json.corrupt-*").Should().NotBeEmpty("the corrupt files are kept aside");
        Directory.GetFiles(Path.Combine(_dir, "backups")).Should().ContainSingle("only the valid content was ever backed up, and it never changed")
            .Which.Should().Match(f => File.ReadAllText(f) == """{"sessions": ["a", "b"]}""");
    }

    public void Dispose()
    {
        try
        {
            if (File.Exists(Pidfile) && int.TryParse(File.ReadAllText(Pidfile).Trim(), out var pid))
                using (var kill = System.Diagnostics.Process.Start("kill", ["-9", pid.ToString()])) kill.WaitForExit();
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception) { }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
