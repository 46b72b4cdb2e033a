// Load harness for docs/performance.md: N rules with a no-op probe at one interval, plus one rule at 100ms,
// on the real engine (real Quartz, real SQLite state, real status.json). Measures engine CPU, RSS, start
// lateness and the 100ms rule's period.
// Usage: dotnet run -c Release --project bench/Sentinel.Bench -- [rules=10000] [every=10s] [seconds=60] [state-flush-interval=5s]
// BENCH_DIRECT=1: the engine's own cost per check, without the scheduler. BENCH_FIRE_AHEAD=5ms: the batching window.
// BENCH_HISTORY=0: without the check history (on by default, as in `sentinel run`); BENCH_HISTORY_FLUSH=5m: its flush interval.
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Sentinel.Abstractions;
using Sentinel.Engine;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.State;

if (args.Length > 0 && args[0] == "notify")
    return await Sentinel.Bench.NotifyBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "surfaces")
    return await Sentinel.Bench.SurfacesBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "alert")
    return await Sentinel.Bench.AlertBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "alloc-types")
    return await Sentinel.Bench.AllocationBenchmarks.TypesAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "alloc")
    return Sentinel.Bench.AllocationBenchmarks.Run(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "httppeer")
    return await Sentinel.Bench.HttpPeerBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "uptime")
    return await Sentinel.Bench.UptimeBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "histflush")
    return await Sentinel.Bench.HistoryFlushBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "cluster")
    return await Sentinel.Bench.ClusterBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "cluster-node")
    return await Sentinel.Bench.ClusterBenchmark.NodeAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "idle")
    return await Sentinel.Bench.IdleBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] == "restart")
    return await Sentinel.Bench.RestartBenchmark.RunAsync(args.Skip(1).ToArray());
if (args.Length > 0 && args[0] is "logscan" or "logdetect" or "http")
    return await ProbeBenchmarks.RunAsync(args[0], args.Skip(1).ToArray());

var rules = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 10_000;
var every = args.Length > 1 ? Duration.Parse(args[1]) : TimeSpan.FromSeconds(10);
var seconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60;
var flush = args.Length > 3 ? args[3] : "5s";
var warmup = every + TimeSpan.FromSeconds(5);
if (Environment.GetEnvironmentVariable("BENCH_FIRE_AHEAD") is { Length: > 0 } window)
    Sentinel.Engine.Scheduling.QuartzRuleScheduler.FireAheadWindow = Duration.Parse(window);

var dir = Path.Combine(Path.GetTempPath(), "sentinel-bench-" + Guid.NewGuid().ToString("N")[..8]);
Directory.CreateDirectory(dir);
var historyFlush = Environment.GetEnvironmentVariable("BENCH_HISTORY_FLUSH") is { Length: > 0 } hf ? $"history: {{ flush-interval: {hf} }}" : "";
var yaml = new System.Text.StringBuilder(Sentinel.Bench.BenchConfig.Engine([$"state-flush-interval: {flush}", .. historyFlush.Length > 0 ? new[] { historyFlush } : []]) + """
    rules:
      - { name: fast, every: 100ms, probe: { type: noop } }

    """);
for (var i = 0; i < rules; i++) yaml.Append(CultureInfo.InvariantCulture, $"  - {{ name: r{i}, every: {Duration.Format(every)}, probe: {{ type: noop }} }}\n");
var configPath = Path.Combine(dir, "sentinel.yaml");
File.WriteAllText(configPath, yaml.ToString());

var loader = new ConfigLoader();
var catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new NoopPlugin()]);
catalog.LoadAll();
var loadClock = Stopwatch.StartNew();
var config = loader.Load(configPath, catalog);
if (!config.IsValid) { Console.Error.WriteLine(string.Join("\n", config.Errors)); return 2; }
Console.WriteLine($"config: {rules + 1} rules loaded and validated in {loadClock.ElapsedMilliseconds} ms");

var store = SqliteStateStore.Open(Path.Combine(dir, "state", "sentinel.db"), NullLogger.Instance);
// History is on by default in `sentinel run`; BENCH_HISTORY=0 measures without it.
var history = Environment.GetEnvironmentVariable("BENCH_HISTORY") is "0" ? null
    : Sentinel.Engine.History.SqliteHistoryStore.Open(Path.Combine(dir, "state", "history.db"), NullLogger.Instance);
var engine = new SentinelEngine(config.Config!, catalog, store, NullLoggerFactory.Instance, loader: loader, history: history);
var lateness = new List<double>(capacity: rules * 8);
var fastStarts = new List<long>();
var measuring = false;
var gate = new Lock();
engine.ScheduledStartObserver = (rule, late) =>
{
    if (!Volatile.Read(ref measuring)) return;
    lock (gate)
    {
        lateness.Add(late.TotalMilliseconds);
        if (rule == "fast") fastStarts.Add(Stopwatch.GetTimestamp());
    }
};

if (Environment.GetEnvironmentVariable("BENCH_DIRECT") is "1")
{
    // Per-check engine cost without the scheduler: RunRuleAsync in a loop over the rules.
    await engine.StartAsync();
    await Task.Delay(2000);
    var proc = Process.GetCurrentProcess();
    var c0 = proc.TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    var n = 0;
    for (var round = 0; round < 20; round++)
        for (var i = 0; i < rules; i += 1) { await engine.RunRuleAsync("r" + i); n++; }
    proc.Refresh();
    Console.WriteLine($"direct: {n} checks in {sw.Elapsed.TotalSeconds:0.00}s, CPU {(proc.TotalProcessorTime - c0).TotalMilliseconds * 1000 / n:0.0} us per check");
    await engine.DisposeAsync();
    return 0;
}

var startClock = Stopwatch.StartNew();
await engine.StartAsync();
Console.WriteLine($"engine: started (scheduled {rules + 1} rules) in {startClock.ElapsedMilliseconds} ms; warming up {warmup.TotalSeconds}s");
await Task.Delay(warmup);

var process = Process.GetCurrentProcess();
process.Refresh();
var cpu0 = process.TotalProcessorTime;
var checks0 = TotalChecks(engine);
var (pause0, gen0, gen1, gen2) = (GC.GetTotalPauseDuration(), GC.CollectionCount(0), GC.CollectionCount(1), GC.CollectionCount(2));
var wall = Stopwatch.StartNew();
Volatile.Write(ref measuring, true);
long peakRss = 0;
for (var s = 0; s < seconds; s++)
{
    await Task.Delay(1000);
    process.Refresh();
    peakRss = Math.Max(peakRss, process.WorkingSet64);
}
Volatile.Write(ref measuring, false);
process.Refresh();
var cpu = (process.TotalProcessorTime - cpu0).TotalSeconds / wall.Elapsed.TotalSeconds * 100;
var checks = TotalChecks(engine) - checks0;
var gcLine = $"{(GC.GetTotalPauseDuration() - pause0).TotalMilliseconds:0} ms paused; collections gen0 {GC.CollectionCount(0) - gen0}, gen1 {GC.CollectionCount(1) - gen1}, gen2 {GC.CollectionCount(2) - gen2}";
var expected = (rules / every.TotalSeconds + 10) * wall.Elapsed.TotalSeconds;

var heap = GC.GetGCMemoryInfo();
double[] late, periods;
lock (gate)
{
    late = [.. lateness.Order()];
    periods = [.. fastStarts.Zip(fastStarts.Skip(1), (a, b) => Math.Abs(Stopwatch.GetElapsedTime(a, b).TotalMilliseconds - 100)).Order()];
}
double P(double[] xs, double q) => xs.Length == 0 ? double.NaN : xs[Math.Min(xs.Length - 1, (int)Math.Ceiling(q * xs.Length) - 1)];

Console.WriteLine($"""

    rules:            {rules} at every {Duration.Format(every)} + 1 at 100ms  ({rules / every.TotalSeconds + 10:0} checks/s)
    measured:         {wall.Elapsed.TotalSeconds:0.0}s after {warmup.TotalSeconds}s warm-up, on {Environment.ProcessorCount} cores
    checks:           {checks} done, {expected:0} due ({checks / expected * 100:0.0}%)
    CPU:              {cpu:0.0}% of one core (whole process, including state writes)
    RSS:              peak {peakRss / 1024.0 / 1024:0} MB; GC heap {heap.HeapSizeBytes / 1048576.0:0} MB after the last collection ({heap.FragmentedBytes / 1048576.0:0} MB of it free), {heap.TotalCommittedBytes / 1048576.0:0} MB committed
    GC:               {gcLine}
    start lateness:   p50 {P(late, 0.5):0.0} ms, p99 {P(late, 0.99):0.0} ms, max {P(late, 1):0.0} ms  ({late.Length} starts)
    100ms rule:       period error p50 {P(periods, 0.5):0.00} ms, p99 {P(periods, 0.99):0.00} ms, max {P(periods, 1):0.00} ms  ({periods.Length} intervals)
    status.json:      {new FileInfo(engine.StatusFilePath).Length / 1024} KiB
    """);

// What one status.json write costs in CPU (built and serialized, not written), as the state flush makes it: on this
// thread's clock, as the engine's other threads go on meanwhile.
var statusCpu = ThreadCpu.Now();
var statusAlloc = GC.GetAllocatedBytesForCurrentThread();
for (var i = 0; i < 5; i++) engine.WriteStatus(Stream.Null);
statusAlloc = GC.GetAllocatedBytesForCurrentThread() - statusAlloc;
statusCpu = ThreadCpu.Now() - statusCpu;
var graphCpu = ThreadCpu.Now();
for (var i = 0; i < 5; i++) GC.KeepAlive(engine.GetStatus());
graphCpu = ThreadCpu.Now() - graphCpu;
Console.WriteLine($"    status.json build: {statusCpu.TotalMilliseconds / 5:0} ms of CPU (the status graph alone {graphCpu.TotalMilliseconds / 5:0} ms) and {statusAlloc / 5 / 1048576.0:0.0} MB allocated a write (one each state flush)");

await engine.DisposeAsync();
await store.DisposeAsync();
if (history is not null) await history.DisposeAsync();
Directory.Delete(dir, recursive: true);
return 0;

static long TotalChecks(SentinelEngine engine) => engine.GetStatus().Rules.Sum(r => r.Checks);

internal sealed class NoopPlugin : ISentinelPlugin
{
    public void Register(IPluginRegistrar registrar) => registrar.AddProbe<NoopProbe, NoopOptions>("noop");
}

internal sealed class NoopOptions;

internal sealed class NoopProbe : IProbe
{
    private static readonly ValueTask<ProbeResult> Ok = ValueTask.FromResult(ProbeResult.Healthy("ok"));
    public ValueTask<ProbeResult> CheckAsync(ProbeContext context, CancellationToken cancellationToken) => Ok;
}

internal static partial class ThreadCpu
{
    [System.Runtime.InteropServices.StructLayout(System.Runtime.InteropServices.LayoutKind.Sequential)]
    private struct TimeSpec { public long Sec; public long Nsec; }

    [System.Runtime.InteropServices.LibraryImport("libc", EntryPoint = "clock_gettime")]
    private static partial int ClockGetTime(int clock, out TimeSpec time);

    /// <summary>This thread's CPU time (Linux: CLOCK_THREAD_CPUTIME_ID).</summary>
    public static TimeSpan Now() => ClockGetTime(3, out var t) == 0 ? TimeSpan.FromTicks(t.Sec * TimeSpan.TicksPerSecond + t.Nsec / 100) : TimeSpan.Zero;
}
