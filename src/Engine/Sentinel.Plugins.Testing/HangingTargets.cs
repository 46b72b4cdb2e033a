using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Sentinel.Plugins.Testing;

/// <summary>
/// Targets that take a probe's request and never finish it, so that a cancellation check cancels a probe while it
/// really waits (a target that fails at once lets a probe that ignores its token pass): a TCP listener on 127.0.0.1
/// that accepts connections and never sends a byte (<see cref="Port"/>, <see cref="Url"/>: HTTP, TLS, SMTP, any
/// protocol hangs on it) and a FIFO that nobody writes (<see cref="Fifo"/>: opening it for reading waits for a writer).
/// </summary>
public sealed partial class HangingTargets : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<Socket> _accepted = [];
    private readonly CancellationTokenSource _stop = new();
    private int _connections;

    /// <summary>Starts the listener and makes the FIFO in a temporary folder of its own.</summary>
    public HangingTargets()
    {
        Folder = Directory.CreateTempSubdirectory("sentinel-hanging-").FullName;
        Fifo = Path.Combine(Folder, "nobody-writes.fifo");
        if (!OperatingSystem.IsWindows() && MakeFifo(Fifo, 0x180 /* 0600 */) != 0)
            throw new IOException($"mkfifo {Fifo} failed (errno {Marshal.GetLastPInvokeError()})");
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptAsync();
    }

    /// <summary>The port on 127.0.0.1 that accepts and never answers.</summary>
    public int Port { get; }

    /// <summary><c>http://127.0.0.1:{Port}/</c>.</summary>
    public string Url => $"http://127.0.0.1:{Port}/";

    /// <summary>A named pipe nobody writes.</summary>
    public string Fifo { get; }

    /// <summary>The temporary folder holding <see cref="Fifo"/>; deleted on dispose.</summary>
    public string Folder { get; }

    /// <summary>How many connections the listener has accepted (a probe that connected is waiting for an answer).</summary>
    public int Connections => Volatile.Read(ref _connections);

    private async Task AcceptAsync()
    {
        try
        {
            while (!_stop.IsCancellationRequested)
            {
                var socket = await _listener.AcceptSocketAsync(_stop.Token);
                lock (_accepted) _accepted.Add(socket);
                Interlocked.Increment(ref _connections);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException) { }
    }

    /// <summary>Closes the listener and its connections, lets a reader still blocked on the FIFO go, and deletes the folder.</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        lock (_accepted)
            foreach (var s in _accepted) s.Dispose();
        // A probe thread that ignored its token may still wait in open(): a writer that comes and goes releases it
        // (opened non-blocking, so that with no reader left this fails at once instead of waiting in turn).
        if (OperatingSystem.IsLinux() && Open(Fifo, 0x1 /* O_WRONLY */ | 0x800 /* O_NONBLOCK */) is var fd and >= 0) Close(fd);
        try { Directory.Delete(Folder, recursive: true); } catch (IOException) { }
        _stop.Dispose();
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);

    [LibraryImport("libc", EntryPoint = "mkfifo", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int MakeFifo(string path, uint mode);
}
