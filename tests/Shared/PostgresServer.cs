using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Sentinel.Tests;

/// <summary>
/// A private PostgreSQL server for the tests: Debian's <c>postgresql</c> binaries, a cluster made by initdb in a
/// temporary folder, listening on 127.0.0.1 on a free port (and on a socket in that folder), removed when disposed. As
/// root (CI) it runs as the <c>postgres</c> user, since PostgreSQL refuses to run as root. Each test takes a database
/// of its own (<see cref="CreateDatabaseAsync"/>), so tests that share the server share nothing else.
/// </summary>
public sealed class PostgresServer : IAsyncDisposable
{
    private readonly string _folder;
    private readonly string _bin;
    private int _databases;

    private PostgresServer(string folder, string bin, int port)
    {
        _folder = folder;
        _bin = bin;
        Port = port;
    }

    public int Port { get; }

    /// <summary>A connection string to the server's own <c>postgres</c> database, as its superuser.</summary>
    public string AdminConnectionString => ConnectionString("postgres");

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Pooling=true;Timeout=30;Command Timeout=60";

    /// <summary>Starts a new server; fails (never skips) when PostgreSQL is not installed: CI installs it.</summary>
    public static async Task<PostgresServer> StartAsync()
    {
        var bin = Directory.Exists("/usr/lib/postgresql")
            ? Directory.GetDirectories("/usr/lib/postgresql").Select(d => Path.Combine(d, "bin")).Where(d => File.Exists(Path.Combine(d, "initdb")))
                .OrderByDescending(d => d, StringComparer.Ordinal).FirstOrDefault()
            : null;
        if (bin is null) throw new InvalidOperationException("PostgreSQL is not installed (apt-get install -y postgresql): the cluster and state-store tests need its server");
        var folder = Directory.CreateTempSubdirectory("sentinel-pg-").FullName;
        var data = Path.Combine(folder, "data");
        if (Environment.IsPrivilegedProcess)
            await RunAsync("/bin/chown", ["-R", "postgres:postgres", folder], asPostgres: false);
        await RunAsync(Path.Combine(bin, "initdb"), ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C"], asPostgres: true);
        // A free port can be taken by another program between the probe and the server's bind: try a few.
        for (var attempt = 1; ; attempt++)
        {
            var port = FreePort();
            var options = $"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200";
            try
            {
                await RunAsync(Path.Combine(bin, "pg_ctl"), ["-D", data, "-l", Path.Combine(folder, "server.log"), "-o", options, "-w", "-t", "60", "start"], asPostgres: true);
                return new PostgresServer(folder, bin, port);
            }
            catch (InvalidOperationException) when (attempt < 3) { }
        }
    }

    /// <summary>A new, empty database on this server, and a connection string to it.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        var name = $"t{Interlocked.Increment(ref _databases)}_{Guid.NewGuid():N}"[..20];
        await using var connection = new Npgsql.NpgsqlConnection(AdminConnectionString);
        await connection.OpenAsync();
        await using var cmd = connection.CreateCommand();
        cmd.CommandText = $"CREATE DATABASE {name}";
        await cmd.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async ValueTask DisposeAsync()
    {
        Npgsql.NpgsqlConnection.ClearAllPools();
        try { await RunAsync(Path.Combine(_bin, "pg_ctl"), ["-D", Path.Combine(_folder, "data"), "-m", "immediate", "-w", "stop"], asPostgres: true); }
        catch (InvalidOperationException) { } // already gone
        try { Directory.Delete(_folder, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static async Task RunAsync(string program, string[] args, bool asPostgres)
    {
        var start = new ProcessStartInfo(asPostgres && Environment.IsPrivilegedProcess ? "/usr/sbin/runuser" : program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = "/tmp",
        };
        if (asPostgres && Environment.IsPrivilegedProcess)
            foreach (var a in new[] { "-u", "postgres", "--", program }) start.ArgumentList.Add(a);
        foreach (var a in args) start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{Path.GetFileName(program)} {string.Join(' ', args)} exited with {process.ExitCode}: {await output}{await error}");
    }
}
