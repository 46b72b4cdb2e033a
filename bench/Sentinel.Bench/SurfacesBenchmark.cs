// The operator surfaces under load: N rules checked every second (N checks/s) with their history kept, over
// a history.db pre-filled with D days of checks at 1-minute resolution. Measures /health, /api/status, the
// page and history queries over a real Kestrel server, and the history's size on disk.
// Usage: dotnet run -c Release --project bench/Sentinel.Bench -- surfaces [rules=1000] [days=90] [seconds=30]
using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine;
using Sentinel.Engine.Api;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.History;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.Rules;
using Sentinel.Engine.State;

namespace Sentinel.Bench;

internal static class SurfacesBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rules = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1000;
        var days = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 90;
        var seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 30;
        var dir = Path.Combine(Path.GetTempPath(), "sentinel-bench-surfaces-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path.Combine(dir, "state"));
        try
        {
            var yaml = new System.Text.StringBuilder(BenchConfig.Engine($"history: {{ retention: {days + 1}d, downsampled-retention: 400d }}") + "rules:\n");
            for (var i = 0; i < rules; i++) yaml.Append(CultureInfo.InvariantCulture, $"  - {{ name: r{i}, every: 1s, probe: {{ type: noop }} }}\n");
            var configPath = Path.Combine(dir, "sentinel.yaml");
            File.WriteAllText(configPath, yaml.ToString());

            var historyPath = Path.Combine(dir, "state", "history.db");
            var fill = Stopwatch.StartNew();
            var written = await FillAsync(historyPath, rules, days);
            var filledSize = SizeOf(historyPath);
            Console.WriteLine($"history: {written:N0} checks ({rules} rules x {days} days at 1-minute resolution) written in {fill.Elapsed.TotalSeconds:0} s: "
                + $"{filledSize / 1024.0 / 1024:0} MB on disk ({(double)filledSize / written:0.00} bytes a check)");

            var loader = new ConfigLoader();
            using var catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new NoopPlugin()]);
            catalog.LoadAll();
            var config = loader.Load(configPath, catalog);
            if (!config.IsValid) { Console.Error.WriteLine(string.Join("\n", config.Errors)); return 2; }
            await using var store = SqliteStateStore.Open(Path.Combine(dir, "state", "sentinel.db"), NullLogger.Instance);
            await using var history = SqliteHistoryStore.Open(historyPath, NullLogger.Instance);
            var engine = new SentinelEngine(config.Config!, catalog, store, NullLoggerFactory.Instance, loader: loader, history: history);
            var start = Stopwatch.StartNew();
            await engine.StartAsync();
            Console.WriteLine($"engine: started with {rules} rules and their 30 days of hourly counts in {start.ElapsedMilliseconds} ms");

            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0));
            await using var web = builder.Build();
            web.MapSentinel(engine);
            await web.StartAsync();
            using var http = new HttpClient { BaseAddress = new Uri(web.Urls.First()) };
            await Task.Delay(5000);

            var process = Process.GetCurrentProcess();
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var checks0 = engine.GetStatus().Rules.Sum(r => r.Checks);
            var wall = Stopwatch.StartNew();
            var deadline = TimeSpan.FromSeconds(seconds);
            var health = await TimeAsync(http, "/health", wall, deadline * 0.4, maxCount: int.MaxValue);
            var status = await TimeAsync(http, "/api/status", wall, deadline * 0.55, 200);
            var statusRecent = await TimeAsync(http, "/api/status?recent=30", wall, deadline * 0.7, 200);
            var page = await TimeAsync(http, "/", wall, deadline * 0.75, 200);
            var day = await TimeAsync(http, "/api/rules/r7/history?since=24h&limit=2000", wall, deadline * 0.85, 100);
            var hours = await TimeAsync(http, $"/api/rules/r7/history?since={days}d&resolution=hour", wall, deadline, 100);
            while (wall.Elapsed < deadline) await Task.Delay(100);
            process.Refresh();
            var cpu = (process.TotalProcessorTime - cpu0).TotalSeconds / wall.Elapsed.TotalSeconds * 100;
            var checks = engine.GetStatus().Rules.Sum(r => r.Checks) - checks0;
            var statusBytes = (await http.GetByteArrayAsync("/api/status?recent=30")).Length;
            await engine.DisposeAsync();

            static string Line(string what, double[] ms) => $"    {what,-34} p50 {P(ms, 0.5),7:0.00} ms   p99 {P(ms, 0.99),7:0.00} ms   max {P(ms, 1),7:0.00} ms   ({ms.Length} requests)";
            Console.WriteLine($"""

                load:            {rules} rules every 1s ({rules} checks/s), history on; measured {wall.Elapsed.TotalSeconds:0} s on {Environment.ProcessorCount} cores
                checks:          {checks / wall.Elapsed.TotalSeconds:0} per second done ({checks / wall.Elapsed.TotalSeconds / rules * 100:0.0}% of due)
                CPU:             {cpu:0.0}% of one core (engine, history writes and the HTTP server)
                latency (sequential requests over loopback keep-alive, while the checks run):
                {Line("GET /health", health)}
                {Line("GET /api/status", status)}
                {Line("GET /api/status?recent=30 (page)", statusRecent)}
                {Line("GET / (the page itself)", page)}
                {Line("history, 24 h of checks (1440)", day)}
                {Line($"history, {days} d hourly ({days * 24})", hours)}
                /api/status?recent=30: {statusBytes / 1024} KiB
                history.db:      {SizeOf(historyPath) / 1024.0 / 1024:0} MB after the run
                """);
            return 0;
        }
        finally
        {
            Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
            Directory.Delete(dir, recursive: true);
        }
    }

    private static long SizeOf(string path) => new[] { "", "-wal" }.Select(s => new FileInfo(path + s)).Where(f => f.Exists).Sum(f => f.Length);

    private static double P(double[] xs, double q) => xs.Length == 0 ? double.NaN : xs[Math.Min(xs.Length - 1, (int)Math.Ceiling(q * xs.Length) - 1)];

    private static async Task<double[]> TimeAsync(HttpClient http, string path, Stopwatch wall, TimeSpan until, int maxCount)
    {
        var list = new List<double>();
        while (wall.Elapsed < until && list.Count < maxCount)
        {
            var t = Stopwatch.GetTimestamp();
            using var response = await http.GetAsync(path, HttpCompletionOption.ResponseContentRead);
            response.EnsureSuccessStatusCode();
            list.Add(Stopwatch.GetElapsedTime(t).TotalMilliseconds);
        }
        return [.. list.Order()];
    }

    // Checks every minute for `days` days, as the engine writes them: one chunk and one hourly row per rule and hour.
    private static async Task<long> FillAsync(string path, int rules, int days)
    {
        await using var store = SqliteHistoryStore.Open(path, NullLogger.Instance);
        var random = new Random(7);
        var nowHour = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() / 3_600_000;
        long written = 0;
        for (var hour = nowHour - days * 24L; hour < nowHour; hour++)
        {
            var chunks = new List<ChunkWrite>(rules);
            var buckets = new List<BucketWrite>(rules);
            for (var r = 0; r < rules; r++)
            {
                var start = hour * 3_600_000 + r % 60_000;
                var chunk = new CheckChunk(start);
                var counts = new HourCounts();
                for (var m = 0; m < 60; m++)
                {
                    var failed = random.Next(200) == 0;
                    var p = new CheckPoint(DateTimeOffset.FromUnixTimeMilliseconds(start + m * 60_000L + random.Next(-3, 4)),
                        failed ? ProbeStatus.Unhealthy : ProbeStatus.Healthy, failed ? RuleStatus.Failing : RuleStatus.Healthy,
                        TimeSpan.FromMicroseconds(random.Next(800, 40_000)), failed ? "GET http://127.0.0.1:8080/health → 503 Service Unavailable" : "200 OK");
                    chunk.Append(p);
                    counts.Add(p);
                }
                chunks.Add(new ChunkWrite($"r{r}", chunk.StartMs, chunk.EndMs, chunk.Count, chunk.ToArray()));
                buckets.Add(new BucketWrite($"r{r}", hour, counts));
                written += 60;
            }
            await store.WriteAsync(chunks, buckets, CancellationToken.None);
        }
        return written;
    }
}
