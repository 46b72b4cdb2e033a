using System.Diagnostics;
using System.Globalization;

namespace Sentinel.Bench;

/// <summary>
/// HTTP checks side by side with monit, measured from outside: one nginx target (its access log counts the checks
/// that reached it), N rules checking it every second, first under `sentinel run`, then under monit (<c>set daemon 1</c>,
/// one <c>check host</c> each), with <c>keepalive_timeout 0</c> (every check a new connection, as monit does) and, for
/// Sentinel, again with keep-alive allowed. The engine's own process is sampled from /proc (CPU, RSS).
/// Usage: <c>httppeer [rules=1000] [seconds=30]</c>; needs nginx (apt-get install -y nginx-light) and monit.
/// </summary>
internal static class HttpPeerBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rules = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
        var seconds = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 30;
        if (!File.Exists("/usr/sbin/nginx")) { Console.Error.WriteLine("nginx is not installed (apt-get install -y nginx-light)"); return 2; }
        var work = Directory.CreateTempSubdirectory("sentinel-httppeer-").FullName;
        var rows = new List<string>();
        try
        {
            foreach (var (name, keepAlive) in new[] { ("sentinel", false), ("monit 5", false), ("sentinel, keep-alive allowed", true) })
            {
                if (name.StartsWith("monit", StringComparison.Ordinal) && !File.Exists("/usr/bin/monit")) continue;
                var dir = Directory.CreateDirectory(Path.Combine(work, Guid.NewGuid().ToString("N")[..8])).FullName;
                var port = RestartBenchmark.FreePort();
                using var nginx = Nginx(dir, port, keepAlive);
                var log = Path.Combine(dir, "access.log");
                await WaitForAsync(() => File.Exists(Path.Combine(dir, "nginx.pid")));
                using var engine = name.StartsWith("monit", StringComparison.Ordinal) ? Monit(dir, port, rules) : Sentinel(dir, port, rules);
                try
                {
                    await Task.Delay(TimeSpan.FromSeconds(20)); // start-up, JIT, connections
                    var before = Lines(log);
                    var (cpu, _, rss) = await IdleBenchmark.SampleAsync(engine.Id, TimeSpan.FromSeconds(seconds));
                    var done = Lines(log) - before;
                    var due = (long)rules * seconds;
                    rows.Add($"| {name} | {rules:N0} | {cpu:F1}% | {100.0 * done / due:F0}% ({done:N0} of {due:N0}) | {cpu / Math.Max(1, done) * 1e6 / 100 * seconds:F1} µs | {rss:F0} MiB |");
                    Console.Error.WriteLine(rows[^1]);
                }
                finally
                {
                    engine.Kill(entireProcessTree: true);
                    await engine.WaitForExitAsync();
                    nginx.Kill(entireProcessTree: true);
                    await nginx.WaitForExitAsync();
                }
            }
        }
        finally { Directory.Delete(work, recursive: true); }
        Console.WriteLine();
        Console.WriteLine($"HTTP checks at every 1s against one local nginx, {seconds}s measured after 20s:");
        Console.WriteLine("| engine | rules | CPU (of one core) | checks done | CPU per check done | RSS |");
        Console.WriteLine("|---|---|---|---|---|---|");
        foreach (var row in rows) Console.WriteLine(row);
        return 0;
    }

    private static long Lines(string path)
    {
        if (!File.Exists(path)) return 0;
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        long count = 0;
        var buffer = new byte[1 << 16];
        int read;
        while ((read = stream.Read(buffer)) > 0) count += buffer.AsSpan(0, read).Count((byte)'\n');
        return count;
    }

    private static async Task WaitForAsync(Func<bool> condition)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.Elapsed > TimeSpan.FromSeconds(10)) throw new TimeoutException("nginx did not start");
            await Task.Delay(50);
        }
    }

    private static Process Nginx(string dir, int port, bool keepAlive)
    {
        var config = Path.Combine(dir, "nginx.conf");
        File.WriteAllText(config, $$"""
            worker_processes 1;
            daemon off;
            pid {{dir}}/nginx.pid;
            error_log {{dir}}/error.log;
            events { worker_connections 8192; }
            http {
              access_log {{dir}}/access.log;
              client_body_temp_path {{dir}}/tmp;
              proxy_temp_path {{dir}}/tmp;
              fastcgi_temp_path {{dir}}/tmp;
              uwsgi_temp_path {{dir}}/tmp;
              scgi_temp_path {{dir}}/tmp;
              keepalive_timeout {{(keepAlive ? "65" : "0")}};
              keepalive_requests 100000;
              server {
                listen 127.0.0.1:{{port}};
                location / { default_type application/json; return 200 '{"status":"ok"}'; }
              }
            }
            """);
        return RestartBenchmark.Start("/usr/sbin/nginx", ["-c", config, "-p", dir], dir);
    }

    private static Process Sentinel(string dir, int port, int rules)
        => RestartBenchmark.RunSentinel(dir, "rules:\n" + string.Concat(Enumerable.Range(0, rules).Select(i =>
            $"  - {{ name: h{i}, every: 1s, probe: {{ type: http, with: {{ url: \"http://127.0.0.1:{port}/health/{i}\" }} }} }}\n")));

    private static Process Monit(string dir, int port, int rules)
        => RestartBenchmark.MonitWith(dir, string.Concat(Enumerable.Range(0, rules).Select(i =>
            $"check host h{i} with address 127.0.0.1\n  if failed port {port} protocol http request \"/health/{i}\" then alert\n")));
}
