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
        var process = Process.Start(psi)!;
        WaitForExec(process, Path.GetFileName(file));
        return new ChildProcess(process);
    }

    // Process.Start returns after fork, possibly before exec: until then /proc shows a copy of this test host.
    private static void WaitForExec(Process process, string program)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !process.HasExited)
        {
            try
            {
                var argv0 = File.ReadAllText($"/proc/{process.Id}/cmdline").Split('\0')[0];
                if (Path.GetFileName(argv0) == program) return;
            }
            catch (IOException) { return; }
            Thread.Sleep(2);
        }
    }

    /// <summary>`sleep` with a unique duration, so its command line is unique on a shared machine.</summary>
    public static ChildProcess Sleeper(out string marker)
    {
        marker = $"600.{Random.Shared.Next(100_000, 999_999)}";
        var child = Start("sleep", marker);
        // Wait until it is really sleeping: just after exec, /proc may still show an empty address space.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (DateTime.UtcNow < deadline && !File.ReadAllText($"/proc/{child.Pid}/stat").Contains(") S ")) Thread.Sleep(2);
        return child;
    }

    public async Task<string> ReadLineAsync() => (await _process.StandardOutput.ReadLineAsync())!;

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
        _process.WaitForExit(5000);
        _process.Dispose();
    }
}
