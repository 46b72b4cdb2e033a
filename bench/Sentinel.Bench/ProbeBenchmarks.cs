using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Rules;
using Sentinel.Engine.State;

/// <summary>The probe benchmarks of docs/performance.md, on the real plugins from plugins/.</summary>
internal static class ProbeBenchmarks
{
    internal static readonly string Repo = FindRepo();

    public static async Task<int> RunAsync(string mode, string[] args) => mode switch
    {
        "logscan" => await LogScanAsync(args.Length > 0 ? long.Parse(args[0], CultureInfo.InvariantCulture) : 1024),
        "logdetect" => await LogDetectAsync(args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20),
        _ => await HttpRulesAsync(args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200, args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 60),
    };

    // 1 GB of log lines, 1 in 1000 an ERROR: `grep -c ERROR` and the log-regex probe, side by side, warm cache.
    private static async Task<int> LogScanAsync(long megabytes)
    {
        var dir = TempDir();
        var path = Path.Combine(dir, "big.log");
        var expected = WriteLog(path, megabytes * 1024 * 1024);
        var size = new FileInfo(path).Length;
        RunGrep(path); // warm the page cache
        var grepTimes = new List<double>();
        var probeTimes = new List<double>();
        for (var round = 0; round < 3; round++)
        {
            var clock = Stopwatch.StartNew();
            var grepCount = RunGrep(path);
            grepTimes.Add(clock.Elapsed.TotalSeconds);
            if (grepCount != expected) throw new InvalidOperationException($"grep counted {grepCount}, expected {expected}");

            var probe = CreateProbe("log-regex", $"{{ path: '{path}', pattern: ERROR, from-start: true, max-read-per-check: 4GiB }}");
            clock.Restart();
            var result = await probe.CheckAsync(Context(TimeSpan.FromMinutes(5)), CancellationToken.None);
            probeTimes.Add(clock.Elapsed.TotalSeconds);
            if ((int)result.Data!["matches"] != expected) throw new InvalidOperationException($"the probe counted {result.Data["matches"]}, expected {expected}");
            (probe as IDisposable)?.Dispose();
        }
        double grep = grepTimes.Min(), scan = probeTimes.Min();
        Console.WriteLine($"""
            log file:         {size / 1048576.0:0} MiB, {expected} matching lines (1 in 1000)
            grep -c ERROR:    {grep:0.00} s  ({size / 1048576.0 / grep:0} MiB/s)   best of 3
            log-regex probe:  {scan:0.00} s  ({size / 1048576.0 / scan:0} MiB/s)   best of 3
            ratio:            {grep / scan:0.00} of grep's throughput (target: at least 0.5)
            """);
        Directory.Delete(dir, recursive: true);
        return 0;
    }

    // A log written at 50 MB/s; now and then an ERROR line; the time until a log-regex rule at every 500ms goes down.
    private static async Task<int> LogDetectAsync(int samples)
    {
        var dir = TempDir();
        var log = Path.Combine(dir, "busy.log");
        File.WriteAllText(log, "");
        File.WriteAllText(Path.Combine(dir, "sentinel.yaml"), $$"""
            {{Sentinel.Bench.BenchConfig.Engine($"plugins: \"{Path.Combine(Repo, "plugins")}\"").TrimEnd()}}
            rules:
              - name: errors
                every: 500ms
                failure-threshold: 1
                success-threshold: 1
                probe: { type: log-regex, with: { path: "{{log}}", pattern: "ERROR marker" } }
            """);
        await using var engine = await StartEngineAsync(Path.Combine(dir, "sentinel.yaml"));
        var down = new List<(DateTimeOffset At, RuleTransition T)>();
        using var _ = engine.Events.Subscribe((e, _) => { if (e is RuleTransition { To: RuleStatus.Down } t) lock (down) down.Add((DateTimeOffset.UtcNow, t)); return ValueTask.CompletedTask; });

        using var stop = new CancellationTokenSource();
        var marker = new TaskCompletionSource<DateTimeOffset>();
        var pendingMarker = 0;
        long written = 0;
        var writer = Task.Run(async () =>
        {
            await using var f = new FileStream(log, FileMode.Append, FileAccess.Write, FileShare.ReadWrite, 1 << 20);
            var line = Encoding.ASCII.GetBytes("2026-11-22T12:00:00.000Z INFO worker handled request id=0000000000 in 12ms, everything is fine here\n");
            var chunk = new byte[line.Length * 10_000];                    // ~1 MB
            for (var i = 0; i < 10_000; i++) line.CopyTo(chunk, i * line.Length);
            var clock = Stopwatch.StartNew();
            while (!stop.IsCancellationRequested)
            {
                // 50 MB/s: one chunk every 20 ms on average.
                var due = TimeSpan.FromSeconds(written / 50e6);
                if (clock.Elapsed < due) await Task.Delay(due - clock.Elapsed);
                await f.WriteAsync(chunk);
                written += chunk.Length;
                if (Interlocked.Exchange(ref pendingMarker, 0) == 1)
                {
                    await f.WriteAsync(Encoding.ASCII.GetBytes("2026-11-22T12:00:00.000Z ERROR marker: the database is locked\n"));
                    await f.FlushAsync();
                    marker.TrySetResult(DateTimeOffset.UtcNow);
                }
                await f.FlushAsync();
            }
        });

        await Task.Delay(2000);
        var latencies = new List<double>();
        var wall = Stopwatch.StartNew();
        for (var i = 0; i < samples; i++)
        {
            await Task.Delay(Random.Shared.Next(700, 1500));   // past a recovery, at a random point in the check cycle
            int before;
            lock (down) before = down.Count;
            marker = new TaskCompletionSource<DateTimeOffset>();
            Interlocked.Exchange(ref pendingMarker, 1);
            var appended = await marker.Task;
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (DateTime.UtcNow < deadline)
            {
                lock (down) if (down.Count > before) break;
                await Task.Delay(5);
            }
            lock (down)
            {
                if (down.Count == before) { Console.WriteLine($"sample {i}: not detected within 5 s"); continue; }
                latencies.Add((down[^1].At - appended).TotalMilliseconds);
            }
        }
        var rate = written / wall.Elapsed.TotalSeconds / 1e6;
        stop.Cancel();
        await writer;
        latencies.Sort();
        Console.WriteLine($"""
            writer:           {rate:0} MB/s of log lines (target 50)
            rule:             log-regex every 500ms, failure-threshold 1
            detected:         {latencies.Count} of {samples}
            latency:          p50 {latencies[latencies.Count / 2]:0} ms, max {latencies[^1]:0} ms (target: under 1 s)
            """);
        return 0;
    }

    // 200 http rules at every 1s against the demo service (its own process); the engine process's CPU.
    private static async Task<int> HttpRulesAsync(int rules, int seconds)
    {
        var port = FreePort();
        var demo = Process.Start(new ProcessStartInfo("dotnet", [Path.Combine(Repo, "artifacts", "bin", "Sentinel.Demo", "release", "sentinel-demo.dll"),
            "--port", port.ToString(CultureInfo.InvariantCulture), "--sick-for", "0", "--log", Path.Combine(TempDir(), "demo.log")]) { RedirectStandardOutput = true })!;
        try
        {
            await demo.StandardOutput.ReadLineAsync();
            var dir = TempDir();
            var yaml = new StringBuilder($$"""
                {{Sentinel.Bench.BenchConfig.Engine($"plugins: \"{Path.Combine(Repo, "plugins")}\"").TrimEnd()}}
                rules:

                """);
            for (var i = 0; i < rules; i++)
                yaml.Append(CultureInfo.InvariantCulture, $"  - {{ name: h{i}, every: 1s, probe: {{ type: http, with: {{ url: \"http://127.0.0.1:{port}/health\" }} }}, conditions: [\"body.status == ok\"] }}\n");
            File.WriteAllText(Path.Combine(dir, "sentinel.yaml"), yaml.ToString());
            await using var engine = await StartEngineAsync(Path.Combine(dir, "sentinel.yaml"));
            await Task.Delay(5000);
            var self = Process.GetCurrentProcess();
            self.Refresh();
            var cpu0 = self.TotalProcessorTime;
            var checks0 = engine.GetStatus().Rules.Sum(r => r.Checks);
            var clock = Stopwatch.StartNew();
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            self.Refresh();
            var cpu = (self.TotalProcessorTime - cpu0).TotalSeconds / clock.Elapsed.TotalSeconds * 100;
            var status = engine.GetStatus();
            var checks = status.Rules.Sum(r => r.Checks) - checks0;
            Console.WriteLine($"""
                rules:            {rules} http rules at every 1s against the demo service (another process)
                checks:           {checks} in {clock.Elapsed.TotalSeconds:0} s ({checks / clock.Elapsed.TotalSeconds:0}/s), healthy: {status.Rules.Count(r => r.Status == RuleStatus.Healthy)} of {rules}
                engine CPU:       {cpu:0.0}% of one core (target: under 20%)
                RSS:              {self.WorkingSet64 / 1048576} MB
                """);
            return 0;
        }
        finally
        {
            demo.Kill();
            await demo.WaitForExitAsync();
        }
    }

    private static async Task<SentinelEngine> StartEngineAsync(string configPath)
    {
        var loader = new ConfigLoader();
        var (settings, errors) = loader.LoadEngine(configPath);
        if (settings is null) throw new InvalidOperationException(string.Join("\n", errors));
        var catalog = new PluginCatalog(settings.PluginDirectories, NullLogger.Instance);
        catalog.LoadAll();
        var config = loader.Load(configPath, catalog);
        if (!config.IsValid) throw new InvalidOperationException(string.Join("\n", config.Errors));
        var store = SqliteStateStore.Open(Path.Combine(settings.StateDirectory, "sentinel.db"), NullLogger.Instance);
        var engine = new SentinelEngine(config.Config!, catalog, store, NullLoggerFactory.Instance, loader: loader);
        await engine.StartAsync();
        return engine;
    }

    internal static IProbe CreateProbe(string type, string with)
    {
        var catalog = new PluginCatalog(Path.Combine(Repo, "plugins"), NullLogger.Instance);
        catalog.LoadAll();
        catalog.TryGet(PluginKind.Probe, type, out var reg);
        var stream = new YamlDotNet.RepresentationModel.YamlStream();
        stream.Load(new StringReader(with));
        var errors = new List<ConfigError>();
        var options = new YamlBinder("bench", _ => null, errors, new BindingLocations()).Bind(stream.Documents[0].RootNode, reg.OptionsType, "with");
        if (errors.Count > 0) throw new InvalidOperationException(string.Join("\n", errors));
        var rule = new RuleDefinition { Name = "bench", Timeout = TimeSpan.FromMinutes(5), Probe = reg, ProbeOptions = options!, FailureThreshold = 1, SuccessThreshold = 1, Fingerprint = "b", Every = TimeSpan.FromSeconds(1) };
        return new PluginActivator(NullLoggerFactory.Instance, TimeProvider.System).Create(rule);
    }

    internal static ProbeContext Context(TimeSpan timeout) => new() { RuleName = "bench", TimeProvider = TimeProvider.System, Logger = NullLogger.Instance, Timeout = timeout };

    private static int WriteLog(string path, long bytes)
    {
        var ok = Encoding.ASCII.GetBytes("2026-11-22T12:00:00.000Z INFO worker handled request in 12ms, everything is fine here\n");
        var bad = Encoding.ASCII.GetBytes("2026-11-22T12:00:00.000Z ERROR worker failed: database is locked, will retry later\n");
        using var f = new FileStream(path, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
        long written = 0;
        var errors = 0;
        for (var i = 0; written < bytes; i++)
        {
            var line = i % 1000 == 999 ? bad : ok;
            if (line == bad) errors++;
            f.Write(line);
            written += line.Length;
        }
        return errors;
    }

    private static int RunGrep(string path)
    {
        var grep = Process.Start(new ProcessStartInfo("grep", ["-c", "ERROR", path]) { RedirectStandardOutput = true })!;
        var output = grep.StandardOutput.ReadToEnd();
        grep.WaitForExit();
        return int.Parse(output.Trim(), CultureInfo.InvariantCulture);
    }

    internal static string TempDir() => Directory.CreateDirectory(Path.Combine(Path.GetTempPath(), "sentinel-bench-" + Guid.NewGuid().ToString("N")[..8])).FullName;

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static string FindRepo()
    {
        var dir = AppContext.BaseDirectory;
        while (dir is not null && !File.Exists(Path.Combine(dir, "Sentinel.sln"))) dir = Path.GetDirectoryName(dir);
        return dir ?? throw new InvalidOperationException("run the harness from inside the Sentinel repository");
    }
}
