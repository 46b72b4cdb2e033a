using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sentinel.Engine;
using Sentinel.Engine.Configuration;
using Sentinel.Engine.Plugins;
using Sentinel.Engine.State;

namespace Sentinel.Bench;

/// <summary>
/// Cluster mode under load (docs/performance.md, "Cluster mode"): a private PostgreSQL server, N node processes (this
/// program as `cluster-node`, each a real engine with the PostgreSQL store and the clustered Quartz slots, as
/// `sentinel run` builds it), R cluster-wide `timer` rules. Every node writes each check it starts (rule, due time,
/// lateness) to a file, so a check run twice or not at all is counted exactly. Measures CPU per node and of
/// PostgreSQL (from /proc), lateness, checks done against due, row-lock waits, then kills (SIGKILL) the busiest node K
/// times (SENTINEL_BENCH_VICTIM=rotate: each node in turn) and measures how long until every rule it ran was checked
/// by the others.
/// Usage: cluster [rules=10000] [every=10s] [seconds=60] [nodes=3] [kills=10] [checkin=2s]
/// </summary>
internal static class ClusterBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        string Arg(int i, string fallback) => args.Length > i ? args[i] : fallback;
        var (rules, every, seconds) = (int.Parse(Arg(0, "10000"), CultureInfo.InvariantCulture), Duration.Parse(Arg(1, "10s")), int.Parse(Arg(2, "60"), CultureInfo.InvariantCulture));
        var (count, kills, checkin) = (int.Parse(Arg(3, "3"), CultureInfo.InvariantCulture), int.Parse(Arg(4, "10"), CultureInfo.InvariantCulture), Duration.Parse(Arg(5, "2s")));
        await using var postgres = await Sentinel.Tests.PostgresServer.StartAsync();
        var database = await postgres.CreateDatabaseAsync();
        var dir = Directory.CreateTempSubdirectory("sentinel-cluster-bench-").FullName;
        var yaml = new System.Text.StringBuilder($$"""
            engine:
              http: { enabled: false }
              state: state
              log: { directory: "" }
              watch-config: false
              watch-plugins: false
              cluster: { postgres: "{{database}}", node: "${NODE}", checkin-interval: {{Duration.Format(checkin)}} }
            rules:

            """);
        for (var i = 0; i < rules; i++) yaml.Append(CultureInfo.InvariantCulture, $"  - {{ name: r{i}, every: {Duration.Format(every)}, probe: {{ type: timer }} }}\n");
        var configPath = Path.Combine(dir, "sentinel.yaml");
        await File.WriteAllTextAsync(configPath, yaml.ToString());

        var nodes = new Dictionary<string, Node>(StringComparer.Ordinal);
        try
        {
            for (var n = 1; n <= count; n++)
            {
                var name = $"n{n}";
                nodes[name] = Node.Start(name, dir, configPath);
                // The first node makes the tables; the others join it.
                if (n == 1) await WaitAsync(() => nodes[name].Starts.Count > 0, TimeSpan.FromSeconds(120), "the first node checks");
            }
            var warmup = every * 2 + checkin * 4;
            Console.WriteLine($"{count} nodes, {rules} rules at every {Duration.Format(every)} ({rules / every.TotalSeconds:0} checks/s for the cluster), check-in {Duration.Format(checkin)}; warming up {warmup.TotalSeconds:0}s");
            await Task.Delay(warmup);

            var pg = PostgresPids(postgres);
            var cpu0 = nodes.Values.ToDictionary(n => n.Name, n => Cpu(n.Pid));
            var pg0 = pg.Sum(Cpu);
            var from = DateTimeOffset.UtcNow;
            var wall = Stopwatch.StartNew();
            var waits = new List<int>();
            long peak = 0;
            while (wall.Elapsed < TimeSpan.FromSeconds(seconds))
            {
                await Task.Delay(500);
                waits.Add(await LockWaitsAsync(postgres.AdminConnectionString));
                peak = Math.Max(peak, nodes.Values.Max(n => Rss(n.Pid)));
            }
            var to = DateTimeOffset.UtcNow;
            var elapsed = wall.Elapsed.TotalSeconds;
            var pgCpu = (PostgresPids(postgres).Union(pg).Sum(Cpu) - pg0) / elapsed * 100;
            // A fire is counted where it was due inside the window, less one interval at each end (a check due at the
            // end may not have started yet).
            var (lo, hi) = (from + every, to - every);
            var starts = nodes.Values.SelectMany(n => n.Starts.Select(s => (n.Name, s.Rule, s.Due, s.LateMs))).Where(s => s.Due >= lo && s.Due < hi).ToList();
            var duplicates = starts.GroupBy(s => (s.Rule, Fire(s.Due))).Count(g => g.Count() > 1);
            var perRule = starts.GroupBy(s => s.Rule).ToDictionary(g => g.Key, g => g.Select(s => Fire(s.Due)).Distinct().Count());
            var due = (hi - lo) / every;
            var missed = Enumerable.Range(0, rules).Sum(i => Math.Max(0, (int)Math.Floor(due) - perRule.GetValueOrDefault(i)));
            var late = starts.Select(s => s.LateMs).Order().ToArray();
            Console.WriteLine($"""

                measured:        {elapsed:0.0}s, fires due from {lo:HH:mm:ss} to {hi:HH:mm:ss} ({due:0.0} per rule)
                checks:          {starts.Count} started ({starts.Count / (hi - lo).TotalSeconds:0}/s); run twice: {duplicates}; missed: {missed}
                per node:        {string.Join(", ", nodes.Values.Select(n => $"{n.Name} {starts.Count(s => s.Name == n.Name)} checks, CPU {(Cpu(n.Pid) - cpu0[n.Name]) / elapsed * 100:0.0}%"))}
                RSS:             peak {peak / 1024.0 / 1024:0} MB (largest node)
                PostgreSQL:      CPU {pgCpu:0.0}% of one core (all its processes); lock waits sampled every 500 ms: mean {waits.DefaultIfEmpty().Average():0.00}, max {waits.DefaultIfEmpty().Max()}
                start lateness:  p50 {P(late, 0.5):0.0} ms, p99 {P(late, 0.99):0.0} ms, max {P(late, 1):0.0} ms
                """);

            var failovers = new List<double>();
            var lates = new List<double>();
            for (var k = 0; k < kills; k++)
            {
                var window = DateTimeOffset.UtcNow - every;
                // The busiest node, or (SENTINEL_BENCH_VICTIM=rotate) each node in turn: the first by name is the one that
                // spreads the slots, and its death hands that to the next.
                var victim = Environment.GetEnvironmentVariable("SENTINEL_BENCH_VICTIM") == "rotate"
                    ? nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).ElementAt(k % nodes.Count)
                    : nodes.Values.OrderByDescending(n => n.Starts.Count(s => s.Due > window)).First();
                var itsRules = victim.Starts.Where(s => s.Due > window).Select(s => s.Rule).ToHashSet();
                var killedAt = DateTimeOffset.UtcNow;
                victim.Kill();
                var others = nodes.Values.Where(n => n != victim).ToList();
                var bound = every + checkin * 2 + TimeSpan.FromSeconds(30);
                try { await WaitAsync(() => itsRules.All(r => others.Any(o => o.Started(r, killedAt))), bound, $"{victim.Name}'s {itsRules.Count} rules checked by the others"); }
                catch (TimeoutException)
                {
                    var left = itsRules.Where(r => !others.Any(o => o.Started(r, killedAt))).ToList();
                    Console.WriteLine($"not checked since the kill: {left.Count} rules, e.g. {string.Join(", ", left.Take(10).Select(r => "r" + r))}");
                    await DumpAsync(database);
                    throw;
                }
                // When each of its rules was first started by another node after the kill, and how late after it was due.
                var first = itsRules.Select(r => others.Select(o => o.FirstStart(r, killedAt)).OfType<(DateTimeOffset At, double LateMs)>().MinBy(x => x.At)).ToList();
                var resumed = first.Max(x => x.At) - killedAt;
                var overdue = TimeSpan.FromMilliseconds(first.Max(x => x.LateMs));
                failovers.Add(resumed.TotalMilliseconds);
                lates.Add(overdue.TotalMilliseconds);
                Console.WriteLine($"kill {k + 1}: {victim.Name} ({itsRules.Count} rules) -9; all its rules checked again by the others after {resumed.TotalMilliseconds:0} ms "
                    + $"(bound 2 x check-in + one interval: {(checkin * 2 + every).TotalMilliseconds:0} ms); its latest first check started {overdue.TotalMilliseconds:0} ms after it was due");
                nodes[victim.Name] = Node.Start(victim.Name, dir, configPath);
                await Task.Delay(every * 2 + checkin * 4);
            }
            if (failovers.Count > 0)
                Console.WriteLine($"failover after kill -9: every rule checked again within median {P([.. failovers.Order()], 0.5):0} ms (max {failovers.Max():0} ms); "
                    + $"the latest of those first checks median {P([.. lates.Order()], 0.5):0} ms (max {lates.Max():0} ms) after it was due; over {failovers.Count} kills");
            var duplicatesAll = nodes.Values.SelectMany(n => n.Starts.Select(s => (s.Rule, Fire(s.Due)))).GroupBy(x => x).Count(g => g.Count() > 1);
            Console.WriteLine($"fires run twice over the whole run (kills included): {duplicatesAll}");
            return 0;
        }
        finally
        {
            foreach (var n in nodes.Values) n.Kill();
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    // A fire's due time as the nodes report it (to the millisecond, from the start and its lateness): fires of one
    // rule are an interval apart, so a tenth of a second names one.
    private static long Fire(DateTimeOffset due) => (long)Math.Round(due.ToUnixTimeMilliseconds() / 100.0);

    private static double P(double[] xs, double q) => xs.Length == 0 ? double.NaN : xs[Math.Min(xs.Length - 1, Math.Max(0, (int)Math.Ceiling(q * xs.Length) - 1))];

    private static async Task WaitAsync(Func<bool> done, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"not within {timeout}: {what}");
            await Task.Delay(50);
        }
    }

    private static async Task DumpAsync(string database)
    {
        await using var connection = new NpgsqlConnection(database);
        await connection.OpenAsync();
        foreach (var sql in new[] {
            "SELECT trigger_name, trigger_state, preferred_node, preferred_node_auto, to_timestamp(next_fire_time / 10000000.0 - 62135596800) FROM qrtz_triggers ORDER BY trigger_name",
            "SELECT instance_name, trigger_name, state, to_timestamp(fired_time / 10000000.0 - 62135596800) FROM qrtz_fired_triggers",
            "SELECT instance_name, to_timestamp(last_checkin_time / 10000000.0 - 62135596800), checkin_interval FROM qrtz_scheduler_state",
            "SELECT node, last_seen, left_at, cardinality(slots) FROM sentinel_nodes" })
        {
            await using var cmd = new NpgsqlCommand(sql, connection);
            await using var r = await cmd.ExecuteReaderAsync();
            Console.WriteLine("-- " + sql);
            while (await r.ReadAsync()) Console.WriteLine(string.Join(" | ", Enumerable.Range(0, r.FieldCount).Select(i => r.IsDBNull(i) ? "null" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture))));
        }
    }

    // Sessions waiting for a lock this moment (QRTZ_LOCKS rows, a trigger's row).
    private static async Task<int> LockWaitsAsync(string admin)
    {
        await using var connection = new NpgsqlConnection(admin);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT COUNT(*) FROM pg_locks WHERE NOT granted", connection);
        return (int)(long)(await cmd.ExecuteScalarAsync())!;
    }

    // The server's processes: the postmaster (its pid file's first line) and its children.
    private static List<int> PostgresPids(Sentinel.Tests.PostgresServer server)
    {
        var main = Directory.GetDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var p) ? p : 0).Where(p => p > 0)
            .FirstOrDefault(p => SafeRead($"/proc/{p}/cmdline").Replace('\0', ' ').Contains($"-p {server.Port} "));
        if (main == 0) return [];
        return [main, .. Directory.GetDirectories("/proc").Select(d => int.TryParse(Path.GetFileName(d), out var p) ? p : 0)
            .Where(p => p > 0 && Stat(p) is { Length: > 3 } s && s[3] == main.ToString(CultureInfo.InvariantCulture))];
    }

    private static string SafeRead(string path)
    {
        try { return File.ReadAllText(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return ""; }
    }

    // /proc/PID/stat after the command's closing parenthesis: fields from the state on (index 2 = state, 3 = ppid).
    private static string[] Stat(int pid)
    {
        var text = SafeRead($"/proc/{pid}/stat");
        var close = text.LastIndexOf(')');
        return close < 0 ? [] : ["", "", .. text[(close + 2)..].Split(' ')];
    }

    // User and system CPU of a process in seconds (0 once it is gone).
    private static double Cpu(int pid)
        => Stat(pid) is { Length: > 15 } s ? (long.Parse(s[13], CultureInfo.InvariantCulture) + long.Parse(s[14], CultureInfo.InvariantCulture)) / 100.0 : 0;

    private static long Rss(int pid)
        => SafeRead($"/proc/{pid}/status").Split('\n').FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal)) is { } line
            ? long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024 : 0;

    /// <summary>A node process, and the checks it started as it reports them.</summary>
    private sealed class Node
    {
        private readonly Process _process;
        public ConcurrentQueue<(int Rule, DateTimeOffset Due, double LateMs)> Starts { get; } = new();
        public string Name { get; }
        public int Pid => _process.Id;

        private Node(string name, Process process)
        {
            Name = name;
            _process = process;
            _process.OutputDataReceived += (_, e) =>
            {
                // "S rule dueUnixMs lateMs" per check started; anything else is the node's own output.
                if (e.Data is { } line && line.StartsWith("S ", StringComparison.Ordinal) && line.Split(' ') is [_, var r, var d, var l])
                    Starts.Enqueue((int.Parse(r, CultureInfo.InvariantCulture), DateTimeOffset.FromUnixTimeMilliseconds(long.Parse(d, CultureInfo.InvariantCulture)), double.Parse(l, CultureInfo.InvariantCulture)));
                else if (e.Data is { Length: > 0 }) Console.Error.WriteLine($"[{name}] {e.Data}");
            };
            _process.ErrorDataReceived += (_, e) => { if (e.Data is { Length: > 0 }) Console.Error.WriteLine($"[{name}] {e.Data}"); };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public bool Started(int rule, DateTimeOffset after) => FirstStart(rule, after) is not null;

        // The first check of the rule that started (due time plus lateness) after the given time, and its lateness.
        public (DateTimeOffset At, double LateMs)? FirstStart(int rule, DateTimeOffset after)
        {
            (DateTimeOffset At, double LateMs)? first = null;
            foreach (var s in Starts)
            {
                var at = s.Due.AddMilliseconds(s.LateMs);
                if (s.Rule == rule && at >= after && (first is null || at < first.Value.At)) first = (at, s.LateMs);
            }
            return first;
        }

        public static Node Start(string name, string dir, string config)
        {
            var folder = Path.Combine(dir, name);
            Directory.CreateDirectory(folder);
            var psi = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = folder };
            foreach (var a in new[] { typeof(ClusterBenchmark).Assembly.Location, "cluster-node", config }) psi.ArgumentList.Add(a);
            if (Path.GetFileNameWithoutExtension(Environment.ProcessPath) != "dotnet") psi.ArgumentList.RemoveAt(0);
            psi.Environment["NODE"] = name;
            return new Node(name, Process.Start(psi)!);
        }

        public void Kill()
        {
            try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
            catch (InvalidOperationException) { }
        }
    }

    /// <summary>`cluster-node CONFIG`: one node, as `sentinel run` makes it, printing each check it starts.</summary>
    public static async Task<int> NodeAsync(string[] args)
    {
        // What batch acquisition buys, measured by setting them (docs/performance.md).
        if (Environment.GetEnvironmentVariable("SENTINEL_BENCH_MAX_BATCH") is { Length: > 0 } maxBatch)
            Sentinel.Engine.Scheduling.ClusterSlots.MaxBatchSize = int.Parse(maxBatch, CultureInfo.InvariantCulture);
        if (Environment.GetEnvironmentVariable("SENTINEL_BENCH_FIRE_AHEAD") is { Length: > 0 } ahead)
            Sentinel.Engine.Scheduling.ClusterSlots.FireAheadWindow = Duration.Parse(ahead);
        var loader = new ConfigLoader();
        var catalog = new PluginCatalog([], NullLogger.Instance, builtIn: [new Sentinel.Engine.BuiltIn.EngineProbesPlugin()]);
        catalog.LoadAll();
        var config = loader.Load(args[0], catalog);
        if (!config.IsValid) { Console.Error.WriteLine(string.Join("\n", config.Errors)); return 2; }
        var settings = config.Config!.Engine;
        Directory.CreateDirectory(settings.StateDirectory);
        var store = await PostgresStateStore.OpenAsync(settings.Cluster!.ConnectionString, settings.Cluster.Node, default);
        // As `sentinel run` in a cluster: the history in the shared database.
        var history = Sentinel.Engine.History.PostgresHistoryStore.Open(settings.Cluster.ConnectionString, settings.Cluster.Node);
        using var logs = new Microsoft.Extensions.Logging.LoggerFactory([new StderrLogs()]);
        var engine = new SentinelEngine(config.Config!, catalog, store, logs, loader: loader, history: history);
        var output = Channel();
        engine.ScheduledStartObserver = (rule, late) =>
        {
            if (rule.StartsWith('r'))
                output.Enqueue(string.Create(CultureInfo.InvariantCulture, $"S {rule.AsSpan(1)} {(DateTimeOffset.UtcNow - late).ToUnixTimeMilliseconds()} {late.TotalMilliseconds:0.0}"));
        };
        await engine.StartAsync();
        // Written in batches off the checks' threads: a line per check would otherwise cost a console write each.
        while (true)
        {
            await Task.Delay(100);
            var batch = new System.Text.StringBuilder();
            while (output.TryDequeue(out var line)) batch.Append(line).Append('\n');
            if (batch.Length > 0) await Console.Out.WriteAsync(batch.ToString());
        }
    }

    private static ConcurrentQueue<string> Channel() => new();

    // The node's information and warnings, on its standard error (the harness prefixes them with the node's name).
    private sealed class StderrLogs : Microsoft.Extensions.Logging.ILoggerProvider, Microsoft.Extensions.Logging.ILogger
    {
        public Microsoft.Extensions.Logging.ILogger CreateLogger(string categoryName) => this;
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => logLevel >= Microsoft.Extensions.Logging.LogLevel.Information;
        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel)) Console.Error.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel} {formatter(state, exception)}");
        }
        public void Dispose() { }
    }
}
