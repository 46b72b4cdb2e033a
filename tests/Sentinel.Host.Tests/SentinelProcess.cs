using System.Diagnostics;
using System.Reflection;
using System.Text;

namespace Sentinel.Host.Tests;

/// <summary>Runs the built `sentinel` executable as a real process.</summary>
public sealed class SentinelProcess : IDisposable
{
    private static string Meta(string key) => typeof(SentinelProcess).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>().Single(a => a.Key == key).Value!;

    public static string RepoRoot { get; } = Path.GetFullPath(Meta("RepoRoot"));
    public static string Dll { get; } = Path.Combine(RepoRoot, "artifacts", "bin", "Sentinel.Host", Meta("Configuration"), "sentinel.dll");

    /// <summary>
    /// Writes <c>sentinel.yaml</c> in <paramref name="dir"/>: an engine section for tests (HTTP on a free loopback
    /// port, the real plugins, state in the folder, console logging, fast flushes) followed by <paramref name="rest"/>.
    /// </summary>
    /// <param name="logs">The log folder (none: console only).</param>
    /// <param name="engine">More lines of the engine section, indented by two spaces.</param>
    /// <param name="http">The engine's <c>http:</c> mapping (default: a free loopback port).</param>
    public static string WriteConfig(string dir, string rest, string logs = "", string engine = "", string http = """{ listen: "127.0.0.1:0" }""")
    {
        var path = Path.Combine(dir, "sentinel.yaml");
        File.WriteAllText(path, $$"""
            engine:
              http: {{http}}
              plugins: "{{Path.Combine(RepoRoot, "plugins")}}"
              state: state
              log: { directory: "{{logs}}" }
              state-flush-interval: 100ms
            """ + "\n" + engine + (engine.Length > 0 && !engine.EndsWith('\n') ? "\n" : "") + rest);
        return path;
    }

    /// <summary>The top-level <c>channels:</c> key with one channel, ops-mail, to a local SMTP server (no TLS).</summary>
    public static string MailChannel(int smtpPort) => $$"""
        channels:
          - name: ops-mail
            type: email
            with: { host: 127.0.0.1, port: {{smtpPort}}, tls: none, from: alerts@example.test, to: [ops@example.test] }
        """;

    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    private SentinelProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int Id => _process.Id;
    public string Stdout { get { lock (_stdout) return _stdout.ToString(); } }
    public string Stderr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>What the process printed, for a timeout's message.</summary>
    public string Output() => $"sentinel stdout:\n{Stdout}\nsentinel stderr:\n{Stderr}";

    public static SentinelProcess Start(string workingDirectory, IDictionary<string, string>? env, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["NO_COLOR"] = "1";
        psi.Environment.Remove("COLUMNS");
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return new SentinelProcess(Process.Start(psi)!);
    }

    public static async Task<(int Exit, string Stdout, string Stderr)> RunAsync(string workingDirectory, params string[] args)
    {
        using var p = Start(workingDirectory, null, args);
        var exit = await p.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, p.Stdout, p.Stderr);
    }

    /// <summary>Waits for Sentinel to exit (after a signal) and fails with what it printed unless it exited with <paramref name="code"/>.</summary>
    public async Task ExpectExitAsync(int code, TimeSpan timeout)
    {
        var exit = await WaitForExitAsync(timeout);
        if (exit != code) throw new Xunit.Sdk.XunitException($"sentinel exited with {exit}, not {code}\n{Output()}");
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        _process.WaitForExit(); // drains the redirected output
        return _process.ExitCode;
    }

    public void Signal(string signal)
    {
        using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString()]);
        kill.WaitForExit();
    }

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
