using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using MimeKit;

namespace Sentinel.Plugins.Tests.Support;

/// <summary>
/// A real SMTP server: Debian's aiosmtpd (<c>/usr/bin/python3 -m aiosmtpd</c>, installed by .ci/run) on 127.0.0.1,
/// storing what it accepts in a Maildir that the test reads back.
/// </summary>
public sealed class SmtpServer : IDisposable
{
    private Process? _process;

    private SmtpServer(string maildir, int port)
    {
        Maildir = maildir;
        Port = port;
    }

    public string Maildir { get; }
    public int Port { get; }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>Starts on <paramref name="port"/> (a free one when 0) and waits until it accepts connections.</summary>
    public static async Task<SmtpServer> StartAsync(int port = 0, string? maildir = null)
    {
        var server = new SmtpServer(maildir ?? Directory.CreateTempSubdirectory("sentinel-smtp-").FullName, port == 0 ? FreePort() : port);
        await server.StartAsync();
        return server;
    }

    public async Task StartAsync()
    {
        foreach (var sub in new[] { "tmp", "new", "cur" }) Directory.CreateDirectory(Path.Combine(Maildir, sub));
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{Port}", "-c", "aiosmtpd.handlers.Mailbox", Maildir }) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, _) => { };
        _process.ErrorDataReceived += (_, _) => { };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (true)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, Port);
                return;
            }
            catch (SocketException) when (DateTime.UtcNow < deadline && !_process.HasExited) { await Task.Delay(50); }
        }
    }

    public void Stop()
    {
        if (_process is { HasExited: false }) { _process.Kill(); _process.WaitForExit(); }
        _process?.Dispose();
        _process = null;
    }

    /// <summary>The messages received so far, oldest first.</summary>
    public IReadOnlyList<MimeMessage> Messages()
    {
        var dir = Path.Combine(Maildir, "new");
        if (!Directory.Exists(dir)) return [];
        return Directory.GetFiles(dir).Select(f => (File: f, Time: File.GetLastWriteTimeUtc(f))).OrderBy(f => f.Time).ThenBy(f => f.File)
            .Select(f => MimeMessage.Load(f.File)).ToList();
    }

    public void Dispose()
    {
        Stop();
        try { Directory.Delete(Maildir, recursive: true); } catch (IOException) { }
    }
}
