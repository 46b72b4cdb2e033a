using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Rules;
using Sentinel.Engine.State;

namespace Sentinel.Bench;

/// <summary>
/// Time from a rule reaching its failure threshold to a real SMTP server (aiosmtpd) accepting the alert: the real
/// engine with the real plugins, an `http` rule against a local target flipped to 503, `group-wait: 0s`.
/// Usage: <c>notify [trials=20]</c>.
/// </summary>
internal static class NotifyBenchmark
{
    private static volatile int _status = 200;

    public static async Task<int> RunAsync(string[] args)
    {
        var trials = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "Sentinel.sln"))) root = Path.GetDirectoryName(root)!;
        var dir = Directory.CreateTempSubdirectory("sentinel-notify-bench-").FullName;
        var maildir = Path.Combine(dir, "maildir");
        foreach (var sub in new[] { "tmp", "new", "cur" }) Directory.CreateDirectory(Path.Combine(maildir, sub));
        var smtpPort = FreePort();
        using var smtp = Process.Start(new ProcessStartInfo("/usr/bin/python3", ["-m", "aiosmtpd", "-n", "-l", $"127.0.0.1:{smtpPort}", "-c", "aiosmtpd.handlers.Mailbox", maildir])
            { RedirectStandardOutput = true, RedirectStandardError = true })!;
        using var target = new HttpListener();
        var targetPort = FreePort();
        target.Prefixes.Add($"http://127.0.0.1:{targetPort}/");
        target.Start();
        _ = Task.Run(async () =>
        {
            while (target.IsListening)
            {
                var ctx = await target.GetContextAsync();
                ctx.Response.StatusCode = _status;
                ctx.Response.Close();
            }
        });
        try
        {
            await WaitForPortAsync(smtpPort);
            var config = Path.Combine(dir, "sentinel.yaml");
            File.WriteAllText(config, $$"""
                engine:
                  http: { enabled: false }
                  plugins: "{{Path.Combine(root, "plugins")}}"
                  state: state
                  log: { directory: "" }
                  watch-config: false
                notifications: { group-wait: 0s }
                channels:
                  - name: mail
                    type: email
                    with: { host: 127.0.0.1, port: {{smtpPort}}, tls: none, from: alerts@example.test, to: [ops@example.test] }
                rules:
                  - name: api
                    every: 100ms
                    failure-threshold: 2
                    success-threshold: 1
                    probe: { type: http, with: { url: "http://127.0.0.1:{{targetPort}}/health" } }
                    notify: [{ channel: mail }]
                    send-resolved: false
                """);
            var loader = new ConfigLoader();
            var (settings, _) = loader.LoadEngine(config);
            using var catalog = new PluginCatalog(settings!.PluginDirectories, NullLogger.Instance);
            catalog.LoadAll();
            var loaded = loader.Load(config, catalog);
            if (!loaded.IsValid) throw new InvalidOperationException(string.Join("\n", loaded.Errors));
            await using var store = SqliteStateStore.Open(Path.Combine(settings.StateDirectory, "sentinel.db"), NullLogger.Instance);
            await using var engine = new SentinelEngine(loaded.Config!, catalog, store, NullLoggerFactory.Instance, loader: loader);
            var thresholds = new System.Collections.Concurrent.ConcurrentQueue<DateTimeOffset>();
            engine.Events.Subscribe((e, _) =>
            {
                if (e is RuleTransition { To: RuleStatus.Down, Check: { } c }) thresholds.Enqueue(c.At + c.Duration);
                return ValueTask.CompletedTask;
            });
            await engine.StartAsync();

            var ms = new List<double>();
            for (var i = 0; i < trials; i++)
            {
                await Until(() => engine.GetState("api")?.Status == RuleStatus.Healthy);
                var before = Directory.GetFiles(Path.Combine(maildir, "new")).Length;
                _status = 503;
                await Until(() => Directory.GetFiles(Path.Combine(maildir, "new")).Length > before);
                var file = Directory.GetFiles(Path.Combine(maildir, "new")).Select(f => new FileInfo(f)).OrderBy(f => f.LastWriteTimeUtc).Last();
                var reached = thresholds.Last();
                var latency = (new DateTimeOffset(file.LastWriteTimeUtc) - reached).TotalMilliseconds;
                ms.Add(latency);
                Console.Error.WriteLine($"trial {i + 1}: {latency:F1} ms");
                _status = 200;
            }
            ms.Sort();
            Console.WriteLine($"threshold reached -> SMTP server accepted: {trials} trials, median {ms[ms.Count / 2]:F1} ms, p95 {ms[(int)Math.Ceiling(ms.Count * 0.95) - 1]:F1} ms, min {ms[0]:F1} ms, max {ms[^1]:F1} ms");
        }
        finally
        {
            target.Stop();
            smtp.Kill();
            Directory.Delete(dir, recursive: true);
        }
        return 0;
    }

    private static async Task Until(Func<bool> condition)
    {
        var sw = Stopwatch.StartNew();
        while (!condition())
        {
            if (sw.Elapsed > TimeSpan.FromSeconds(30)) throw new TimeoutException("not reached in 30s");
            await Task.Delay(1);
        }
    }

    private static async Task WaitForPortAsync(int port)
    {
        for (var i = 0; i < 400; i++)
        {
            try
            {
                using var c = new TcpClient();
                await c.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException) { await Task.Delay(50); }
        }
        throw new TimeoutException($"nothing listens on {port}");
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}
