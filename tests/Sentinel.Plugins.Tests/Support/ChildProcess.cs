using System.Diagnostics;

namespace Sentinel.Plugins.Tests.Support;

/// <summary>A real process started by a test, killed at the end.</summary>
public sealed class ChildProcess : IDisposable
{
    private readonly Process _process;

    private ChildProcess(Process process) => _process = process;

    public int Pid => _process.Id;
    public Process Process => _process;

    public static ChildProcess Start(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        return new ChildProcess(Process.Start(psi)!);
    }

    /// <summary>`sleep` with a unique duration, so its command line is unique on a shared machine.</summary>
    public static ChildProcess Sleeper(out string marker)
    {
        marker = $"600.{Random.Shared.Next(100_000, 999_999)}";
        return Start("sleep", marker);
    }

    public async Task<string> ReadLineAsync() => (await _process.StandardOutput.ReadLineAsync())!;

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
