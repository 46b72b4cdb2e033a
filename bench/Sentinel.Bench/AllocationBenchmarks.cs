using System.Diagnostics;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Engine;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.State;

namespace Sentinel.Bench;

/// <summary>
/// What one check allocates (BenchmarkDotNet's MemoryDiagnoser, in process): the engine's whole path for a no-op
/// probe (probe run isolated, judged, state written, observers: metrics and history), and the http, process and
/// log-regex probes on their own. The HTTP target is the demo service in a process of its own, so its allocations are
/// not counted. Usage: <c>alloc [filter]</c> (a BenchmarkDotNet filter, e.g. <c>*Http*</c>).
/// </summary>
[MemoryDiagnoser]
public class AllocationBenchmarks
{
    private SentinelEngine _engine = null!;
    private IProbe _http = null!, _httpKeepAlive = null!, _process = null!, _log = null!;
    private Process? _demo;
    private string _dir = null!;

    public static int Run(string[] args)
    {
        var config = ManualConfig.Create(DefaultConfig.Instance)
            .AddJob(Job.ShortRun.WithToolchain(InProcessEmitToolchain.Instance))
            .WithOptions(ConfigOptions.DisableOptimizationsValidator);
        BenchmarkSwitcher.FromTypes([typeof(AllocationBenchmarks)]).Run(args.Length == 0 ? ["--filter", "*"] : ["--filter", .. args], config);
        return 0;
    }

    [GlobalSetup]
    public async Task Setup()
    {
        _dir = ProbeBenchmarks.TempDir();
        var path = Path.Combine(_dir, "sentinel.yaml");
        File.WriteAllText(path, BenchConfig.Engine("") + "rules:\n  - { name: r0, every: 1h, probe: { type: noop } }\n");
        var loader = new ConfigLoader();
        var catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new NoopPlugin()]);
        catalog.LoadAll();
        var config = loader.Load(path, catalog);
        var store = SqliteStateStore.Open(Path.Combine(_dir, "state", "sentinel.db"), NullLogger.Instance);
        var history = Sentinel.Engine.History.SqliteHistoryStore.Open(Path.Combine(_dir, "state", "history.db"), NullLogger.Instance);
        _engine = new SentinelEngine(config.Config!, catalog, store, NullLoggerFactory.Instance, loader: loader, history: history);
        await _engine.StartAsync();

        var port = RestartBenchmark.FreePort();
        _demo = Process.Start(new ProcessStartInfo("dotnet", [Path.Combine(ProbeBenchmarks.Repo, "artifacts", "bin", "Sentinel.Demo", "release", "sentinel-demo.dll"),
            "--port", port.ToString(CultureInfo.InvariantCulture), "--sick-for", "0", "--log", Path.Combine(_dir, "demo.log")]) { RedirectStandardOutput = true })!;
        await _demo.StandardOutput.ReadLineAsync();
        _http = ProbeBenchmarks.CreateProbe("http", $"url: http://127.0.0.1:{port}/health\nheaders: {{ Connection: close }}");
        _httpKeepAlive = ProbeBenchmarks.CreateProbe("http", $"url: http://127.0.0.1:{port}/health");
        var pidfile = Path.Combine(_dir, "self.pid");
        File.WriteAllText(pidfile, Environment.ProcessId.ToString(CultureInfo.InvariantCulture));
        _process = ProbeBenchmarks.CreateProbe("process", $"pidfile: {pidfile}");
        var log = Path.Combine(_dir, "app.log");
        File.WriteAllText(log, "2026-12-01T12:00:00Z INFO started\n");
        _log = ProbeBenchmarks.CreateProbe("log-regex", $"path: {log}\npattern: ERROR");
    }

    /// <summary>
    /// <c>alloc-types [checks]</c>: what the engine's no-op check allocates, by type, from the runtime's allocation
    /// ticks (one sample each ~100 KB allocated), for finding what to take out; BenchmarkDotNet gives the total.
    /// </summary>
    public static async Task<int> TypesAsync(string[] args)
    {
        var checks = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 200_000;
        var bench = new AllocationBenchmarks();
        await bench.Setup();
        for (var i = 0; i < 20_000; i++) await bench.EngineCheck(); // warmed up: tiered compilation settled
        using var ticks = new AllocationTicks();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        for (var i = 0; i < checks; i++) await bench.EngineCheck();
        var total = GC.GetTotalAllocatedBytes(precise: true) - before;
        Console.WriteLine($"{checks} checks: {total / (double)checks:0} bytes a check (whole process)");
        var sampled = ticks.ByType.Values.Sum();
        foreach (var (type, bytes) in ticks.ByType.OrderByDescending(kv => kv.Value).Take(30))
            Console.WriteLine($"{bytes * (double)total / sampled / checks,8:0} B  {type}");
        await bench.Cleanup();
        return 0;
    }

    private sealed class AllocationTicks : System.Diagnostics.Tracing.EventListener
    {
        public readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> ByType = new();

        protected override void OnEventSourceCreated(System.Diagnostics.Tracing.EventSource source)
        {
            if (source.Name == "Microsoft-Windows-DotNETRuntime")
                EnableEvents(source, System.Diagnostics.Tracing.EventLevel.Verbose, (System.Diagnostics.Tracing.EventKeywords)0x1);
        }

        protected override void OnEventWritten(System.Diagnostics.Tracing.EventWrittenEventArgs e)
        {
            if (e.EventName != "GCAllocationTick_V4" || e.Payload is null) return;
            var type = e.Payload[e.PayloadNames!.IndexOf("TypeName")] as string ?? "?";
            var amount = Convert.ToInt64(e.Payload[e.PayloadNames.IndexOf("AllocationAmount")], CultureInfo.InvariantCulture);
            ByType.AddOrUpdate(type, amount, (_, v) => v + amount);
        }
    }

    [GlobalCleanup]
    public async Task Cleanup()
    {
        await _engine.DisposeAsync();
        _demo?.Kill();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private static readonly ProbeContext Context = ProbeBenchmarks.Context(TimeSpan.FromSeconds(10));

    [Benchmark(Description = "engine: one no-op check (run, judge, state, observers)")]
    public Task EngineCheck() => _engine.RunRuleAsync("r0");

    [Benchmark(Description = "http probe, a new connection each check")]
    public ValueTask<ProbeResult> Http() => _http.CheckAsync(Context, CancellationToken.None);

    [Benchmark(Description = "http probe, keep-alive")]
    public ValueTask<ProbeResult> HttpKeepAlive() => _httpKeepAlive.CheckAsync(Context, CancellationToken.None);

    [Benchmark(Description = "process probe (pidfile)")]
    public ValueTask<ProbeResult> ProcessProbe() => _process.CheckAsync(Context, CancellationToken.None);

    [Benchmark(Description = "log-regex probe, nothing new")]
    public ValueTask<ProbeResult> LogRegex() => _log.CheckAsync(Context, CancellationToken.None);
}
