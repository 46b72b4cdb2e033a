using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Npgsql;
using Sentinel.Plugins.Tests.Support;
using Xunit.Abstractions;

namespace Sentinel.Host.Tests;

/// <summary>
/// Cluster mode end to end: three real `sentinel run` nodes on one real PostgreSQL server, cluster rules against a
/// local HTTP server that counts who checked what and when, a real SMTP server, and `kill -9`.
/// </summary>
public sealed class ClusterTests(ITestOutputHelper output) : IAsyncLifetime
{
    private const int Rules = 20;
    private const string NightlyKey = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278";
    private static readonly TimeSpan Checkin = TimeSpan.FromSeconds(2); // the default: at 1 s a loaded machine took live nodes for dead
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-cluster-tests", Guid.NewGuid().ToString("N")[..12]);
    private PostgresServer? _postgres;
    private HitServer? _hits;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _postgres = await PostgresServer.StartAsync();
        _hits = await HitServer.StartAsync();
    }

    public async Task DisposeAsync()
    {
        if (_hits is not null) await _hits.DisposeAsync();
        if (_postgres is not null) await _postgres.DisposeAsync();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    // The one config every node runs; what differs (the node's name) comes from the environment.
    private string Config(string database, int smtpPort, string services)
    {
        var rules = string.Concat(Enumerable.Range(0, Rules).Select(i => $$"""
              - name: api-{{i}}
                every: {{(int)Every.TotalSeconds}}s
                probe: { type: http, with: { url: "{{_hits!.Url}}/r/api-{{i}}", headers: { X-Node: "${NODE}" } } }

            """));
        return $$"""
            engine:
              http: { listen: "127.0.0.1:0" }
              plugins: "{{Path.Combine(SentinelProcess.RepoRoot, "plugins")}}"
              state: state
              log: { directory: "" }
              state-flush-interval: 100ms
              history: { flush-interval: 1s }
              cluster:
                postgres: "{{_postgres!.ConnectionString(database)}}"
                node: "${NODE}"
                checkin-interval: {{(int)Checkin.TotalSeconds}}s
            notifications: { group-wait: 0s }
            {{SentinelProcess.MailChannel(smtpPort)}}
            rules:
            {{rules}}{{string.Concat(new[] { "before", "during" }.Select(name => $$"""
              - name: {{name}}
                every: 1s
                failure-threshold: 1
                success-threshold: 1
                probe: { type: http, with: { url: "{{_hits!.Url}}/r/{{name}}", headers: { X-Node: "${NODE}" } } }
                notify: [{ channel: ops-mail }]

            """))}}
              - name: pinned
                every: 1s
                node: n2
                probe: { type: http, with: { url: "{{_hits!.Url}}/r/pinned", headers: { X-Node: "${NODE}" } } }
              - name: worker
                node: n1
                supervise:
                  command: [/bin/sh, -c, 'echo "$NODE" >> "{{services}}"; exec sleep 600']
              - name: tick
                every: 1s
                node: all
                probe: { type: timer }
              - name: nightly
                every: 1s
                failure-threshold: 1
                success-threshold: 1
                probe: { type: heartbeat, with: { key: {{NightlyKey}}, period: 1h, grace: 1h } }
            """;
    }

    // What the mails told, item by item: a message that groups several (rules that changed together) lists each as a
    // "WORD: rule" line of its text.
    private static List<(string Word, string Rule)> Told(SmtpServer smtp) => [.. smtp.Messages()
        .SelectMany(m => (m.TextBody ?? "").Split('\n'))
        .Select(l => System.Text.RegularExpressions.Regex.Match(l.TrimEnd('\r'), "^([A-Z][A-Z ]*): (\\S+)$"))
        .Where(m => m.Success)
        .Select(m => (m.Groups[1].Value, m.Groups[2].Value))];

    private SentinelProcess StartNode(string node, string config)
    {
        var dir = Path.Combine(_dir, node);
        Directory.CreateDirectory(dir);
        var path = Path.Combine(dir, "sentinel.yaml");
        File.WriteAllText(path, config);
        return SentinelProcess.Start(dir, new Dictionary<string, string> { ["NODE"] = node }, "run", "--config", path);
    }

    [Fact]
    public async Task ThreeNodes_CheckEachRuleOnce_AndAKilledNodesRulesResumeElsewhere_WithOneDownAndOneResolvedMail()
    {
        using var smtp = await SmtpServer.StartAsync();
        var database = await _postgres!.CreateDatabaseAsync();
        var services = Path.Combine(_dir, "services.log");
        var config = Config(database, smtp.Port, services);
        var nodes = new Dictionary<string, SentinelProcess>();
        string Output() => string.Join("\n", nodes.Select(n => $"--- {n.Key} ---\n{n.Value.Output()}"));
        try
        {
            // One node first: it makes the tables, and the others join it.
            nodes["n1"] = StartNode("n1", config);
            await Eventually.Until(() => _hits!.Count("api-0") > 0, context: Output);
            nodes["n2"] = StartNode("n2", config);
            nodes["n3"] = StartNode("n3", config);
            await Eventually.Until(() => _hits!.Count("pinned") > 0, context: Output);
            // Counted once the slots are spread over the three nodes and every rule has settled on its node (a slot
            // that moves may lose a fire on the way: Quartz skips a fire it finds late, and the rule is a second late).
            await Eventually.Until(() => nodes["n1"].Stdout.Contains("over 3 live nodes"), context: Output);
            var spread = DateTimeOffset.UtcNow;
            await Eventually.Until(() => Enumerable.Range(0, Rules).All(i => _hits!.Hits($"api-{i}", spread, DateTimeOffset.MaxValue) is { Count: >= 2 } h
                && h[^1].Node == h[^2].Node), context: Output);

            // Each rule once per interval for the whole cluster, not once per node: counted over a window.
            // Counted over a window in which the membership held still: on a machine loaded enough for a node's check-in
            // to be seconds late, Quartz takes it for dead, its slots move, and a move may fire a slot on two nodes once
            // (at least once, not exactly once, across a failure detection). Such a window is counted again, five at most.
            var window = TimeSpan.FromSeconds(6);
            // A move shows first as Quartz's failure detection and as a slot that fires on a node it did not fire on.
            int Changes() => nodes.Values.Sum(n => Regex.Count(n.Stdout, "Cluster slots spread|Took over|stopped checking in|detected \\d+ failed|fires on this node now"));
            DateTimeOffset from, to;
            var tries = 0;
            do
            {
                var changes = Changes();
                from = DateTimeOffset.UtcNow;
                await Task.Delay(window);
                to = DateTimeOffset.UtcNow;
                await Task.Delay(Checkin); // what the nodes logged within the window has reached their output
                if (Changes() == changes) break;
                output.WriteLine($"the membership changed during the window from {from:HH:mm:ss}: counted again");
            }
            while (++tries < 5);
            tries.Should().BeLessThan(5, "the cluster's membership held still for 6 s at least once in five tries");
            for (var i = 0; i < Rules; i++)
                _hits!.Count($"api-{i}", from, to).Should().BeInRange((int)(window / Every) - 1, (int)(window / Every) + 1, $"api-{i} is checked once a second by the cluster");
            _hits!.Nodes("pinned").Should().Equal(["n2"], "a rule that names its node runs there only");
            (await Eventually.Until(() => File.Exists(services) ? File.ReadAllLines(services) : null, lines => lines.Length > 0, context: Output))
                .Should().Equal(["n1"], "the supervised service runs on its node");

            // Every node's status shows the whole cluster: its members, and each rule with the node that runs it.
            var seen = await Eventually.Until(() => StatusAsync("n3"), st => Members(st).Count == 3 && Members(st).Values.All(v => v == "up")
                && new[] { "node:n1", "node:n2", "node:n3", "tick@n1", "tick@n2", "tick@n3", "pinned", "nightly" }.All(r => Rule(st, r)?.Status == "healthy"), context: Output);
            Rule(seen, "pinned")!.Node.Should().Be("n2");
            Rule(seen, "worker")!.Node.Should().Be("n1", "n3 shows the service n1 runs");
            foreach (var n in new[] { "n1", "n2", "n3" }) Rule(seen, $"tick@{n}")!.Node.Should().Be(n, "a node: all rule runs on every node, as NAME@node");
            Enumerable.Range(0, Rules).Select(i => Rule(seen, $"api-{i}")!.Node).Should().OnlyContain(n => n == "n1" || n == "n2" || n == "n3",
                "a cluster-wide rule shows the node that checked it last");
            var text = await CliAsync("n1", "status");
            text.Should().Contain("Node").And.Contain("n1 (this node)").And.Contain("Cluster of 3 nodes");
            // A command about a rule another node runs is forwarded to that node, which acts on it once (acted on by
            // the node asked as well, the rule would be acted on twice).
            var (exit, said) = await CommandAsync("n1", "pause", "pinned");
            exit.Should().Be(0, said);
            said.Should().Contain("pinned: paused (not checked, not alerted for) until `sentinel resume pinned`");
            Rule(await StatusAsync("n2"), "pinned")!.Status.Should().Be("paused", "n2 runs it, and n1 sent it the command");
            (await CommandAsync("n3", "resume", "pinned")).Exit.Should().Be(0);
            await Eventually.Until(() => StatusAsync("n2"), st => Rule(st, "pinned")?.Status == "healthy", context: Output);

            // A ping reaches any node, and the node that runs its heartbeat rule judges it: recorded in the database
            // before it is answered, read by the others at their next check-in.
            var judge = Rule(seen, "nightly")!.Node!;
            var heard = nodes.Keys.First(k => k != judge);
            (await PingAsync(heard, $"/ping/{NightlyKey}/fail", "backup failed: disk full")).Should().Be(System.Net.HttpStatusCode.OK);
            var failed = await Eventually.Until(() => StatusAsync(judge), st => Rule(st, "nightly")?.Status == "down", context: Output);
            Rule(failed, "nightly")!.LastCheck.Should().Contain("the job reported failure").And.Contain("backup failed: disk full");
            var third = nodes.Keys.First(k => k != judge && k != heard);
            (await PingAsync(third, $"/ping/{NightlyKey}", "")).Should().Be(System.Net.HttpStatusCode.OK);
            await Eventually.Until(() => StatusAsync(heard), st => Rule(st, "nightly") is { Status: "healthy", LastCheck: { } d } && d.StartsWith("last ping", StringComparison.Ordinal),
                context: Output);

            // An outage told before the node that checks most dies, and one that starts as it dies: the others
            // take its rules over, the first one's incident with them.
            var busiest = Enumerable.Range(0, Rules).SelectMany(i => _hits!.Hits($"api-{i}", from, to)).GroupBy(h => h.Node)
                .OrderByDescending(g => g.Count()).First().Key;
            output.WriteLine($"checks by node: {string.Join(", ", Enumerable.Range(0, Rules).SelectMany(i => _hits!.Hits($"api-{i}", from, to)).GroupBy(h => h.Node).Select(g => $"{g.Key} {g.Count()}"))}");
            _hits!.Fail("before");
            await Eventually.Until(() => Told(smtp).Contains(("DOWN", "before")), context: Output);
            // Marked sent, too: a node killed between the channel's answer and that mark sends it again from its successor
            // (at least once; the window is one send), which is not what this case is about.
            await Eventually.Until(async () => await PendingAsync(database) == 0, context: Output);
            var killed = DateTimeOffset.UtcNow;
            // What was told up to the kill: a loaded machine may have delayed a live node's check-in long enough for a
            // DOWN and RESOLVED of its own before this (a check-in late by more than the dead-node timeout).
            var toldAtKill = Told(smtp).Count;
            nodes[busiest].Signal("KILL");
            await nodes[busiest].WaitForExitAsync(TimeSpan.FromSeconds(10));
            _hits!.Fail("during");

            // Every rule is checked again by a node still alive within the failover bound (two check-ins and an
            // interval), with room for a loaded machine's scheduling.
            var bound = 2 * Checkin + Every + TimeSpan.FromSeconds(4);
            await Eventually.Until(() => Enumerable.Range(0, Rules).All(i => _hits!.Hits($"api-{i}", killed, DateTimeOffset.MaxValue).Any(h => h.Node != busiest)),
                timeout: TimeSpan.FromSeconds(60), context: Output);
            var resumed = Enumerable.Range(0, Rules).Max(i => _hits!.Hits($"api-{i}", killed, DateTimeOffset.MaxValue).First(h => h.Node != busiest).At) - killed;
            output.WriteLine($"{busiest} killed; its rules resumed after {resumed.TotalMilliseconds:F0} ms at most");
            resumed.Should().BeLessThan(bound, "a killed node's cluster rules resume on the others within 2 x checkin-interval + one interval");

            // A rule's history is the whole cluster's: a survivor shows the checks the killed node made of a rule it
            // took over, and its own after.
            var survivor = nodes.Keys.First(k => k != busiest);
            // A check only the killed node can have made (its start is at most 500 ms before the request arrived): no other
            // node checked that rule within 700 ms of it. Slots may have moved between nodes before the kill, so a rule
            // is not assumed to have been one node's all along.
            var (moved, made) = Enumerable.Range(0, Rules).Select(i => $"api-{i}").SelectMany(r => _hits!.Hits(r, from, killed - TimeSpan.FromSeconds(2))
                    .Where(h => h.Node == busiest && !_hits!.Hits(r, h.At - TimeSpan.FromMilliseconds(700), h.At + TimeSpan.FromMilliseconds(700)).Any(o => o.Node != busiest))
                    .Select(h => (Rule: r, h.At)))
                .First();
            List<DateTimeOffset> shown = [];
            var history = await Eventually.Until(async () => shown = System.Text.Json.JsonDocument.Parse(await CliAsync(survivor, "history", moved, "--since", "1h", "--json")).RootElement
                .GetProperty("checks").EnumerateArray().Select(c => c.GetProperty("at").GetDateTimeOffset()).ToList(),
                at => at.Any(t => t > killed + resumed), context: () =>
                    $"{survivor}'s history of {moved} (killed at {killed:HH:mm:ss.fff}, resumed +{resumed.TotalMilliseconds:F0} ms): {shown.Count} checks, the last "
                    + string.Join(", ", shown.TakeLast(8).Select(t => t.ToString("HH:mm:ss.fff")))
                    + $"\nrequests for {moved} since the kill: " + string.Join(", ", _hits!.Hits(moved, killed, DateTimeOffset.MaxValue).Select(h => $"{h.Node} {h.At:HH:mm:ss.fff}"))
                    + "\n" + Output());
            history.Should().Contain(t => t >= made - TimeSpan.FromMilliseconds(500) && t <= made + TimeSpan.FromMilliseconds(50),
                $"{busiest} checked {moved} at {made:HH:mm:ss.fff} before it was killed, and wrote it to the shared history");

            // The outage that started at the kill, and the killed node itself (told together when both go down at once).
            await Eventually.Until(() => Told(smtp).Contains(("DOWN", "during")), context: Output);
            await Eventually.Until(() => Told(smtp).Skip(toldAtKill).Contains(("DOWN", $"node:{busiest}")), context: Output);
            _hits!.Recover("before");
            _hits!.Recover("during");
            await Eventually.Until(() => Told(smtp).Contains(("RESOLVED", "before")) && Told(smtp).Contains(("RESOLVED", "during")), context: Output);
            await Eventually.Until(async () => await PendingAsync(database) == 0, context: Output);
            Told(smtp).Where(t => t.Rule == "before").Select(t => t.Word)
                .Should().Equal(["DOWN", "RESOLVED"], "the node that took the rule over resolves the incident it found, and does not open another");
            Told(smtp).Where(t => t.Rule == "during").Select(t => t.Word).Should().Equal(["DOWN", "RESOLVED"], "one DOWN and one RESOLVED across the cluster");

            // The killed node is a rule of its own that is down (told once), and what runs only there is unknown. The
            // survivor sees the membership at its own check-in, and the `node:` rule's state when the node that runs that
            // rule has written it (at that node's check-in): the two are awaited together, not one after the other.
            var after = await Eventually.Until(() => StatusAsync(survivor), st => Members(st).GetValueOrDefault(busiest) == "down"
                && Rule(st, $"tick@{busiest}")?.Status == "unknown" && Rule(st, $"node:{busiest}")?.Status == "down", context: Output);
            Rule(after, $"tick@{busiest}")!.Unknown.Should().Be($"node {busiest} is down");
            Rule(after, busiest == "n1" ? "worker" : "pinned")!.Status.Should().Be(busiest is "n1" or "n2" ? "unknown" : "healthy");

            // A node stopped on purpose is shown as stopped, and is not alerted on.
            var stopped = nodes.Keys.First(k => k != busiest && k != survivor);
            var toldAtStop = Told(smtp).Count;
            nodes[stopped].Signal("TERM");
            await nodes[stopped].ExpectExitAsync(0, TimeSpan.FromSeconds(30));
            var last = await Eventually.Until(() => StatusAsync(survivor), st => Members(st).GetValueOrDefault(stopped) == "stopped", context: Output);
            Rule(last, $"tick@{stopped}")!.Unknown.Should().Be($"node {stopped} is stopped");
            await Eventually.Until(() => StatusAsync(survivor), st => Rule(st, $"node:{stopped}") is { Status: "healthy", LastCheck: { } d } && d.Contains("stopped"), context: Output);
            Told(smtp).Skip(toldAtKill).Where(t => t.Rule.StartsWith("node:", StringComparison.Ordinal)).Should().Equal([("DOWN", $"node:{busiest}")],
                "the killed node is told once, and not resolved");
            Told(smtp).Skip(toldAtStop).Where(t => t.Rule == $"node:{stopped}").Should().BeEmpty("a node stopped on purpose is not alerted on");

            // The pinned rule and the service stay with their nodes: neither is started elsewhere.
            var since = DateTimeOffset.UtcNow;
            await Eventually.Until(() => _hits!.Hits("pinned", since, DateTimeOffset.MaxValue).Count >= 2 || busiest == "n2" || stopped == "n2", context: Output);
            _hits!.Nodes("pinned").Should().Equal(["n2"]);
            File.ReadAllLines(services).Should().Equal(["n1"], "a killed node's service is not started by another node");
        }
        finally
        {
            output.WriteLine("mails: " + string.Join(" | ", smtp.Messages().Select(m => m.Subject)));
            foreach (var n in nodes.Values) n.Dispose();
            foreach (var (name, n) in nodes) output.WriteLine($"--- {name} ---\n{string.Join("\n", n.Stdout.Split('\n').TakeLast(80))}\n{n.Stderr}");
            KillService(services);
        }
    }

    // `sentinel status` of a node, as its operator runs it (with the node's environment).
    private async Task<string> CliAsync(string node, params string[] args)
    {
        using var p = SentinelProcess.Start(Path.Combine(_dir, node), new Dictionary<string, string> { ["NODE"] = node, ["COLUMNS"] = "250" },
            [.. args, "--config", Path.Combine(_dir, node, "sentinel.yaml")]);
        await p.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return p.Stdout;
    }

    private async Task<(int Exit, string Output)> CommandAsync(string node, params string[] args)
    {
        using var p = SentinelProcess.Start(Path.Combine(_dir, node), new Dictionary<string, string> { ["NODE"] = node },
            [.. args, "--config", Path.Combine(_dir, node, "sentinel.yaml")]);
        var exit = await p.WaitForExitAsync(TimeSpan.FromSeconds(60));
        return (exit, p.Stdout + p.Stderr);
    }

    private async Task<System.Text.Json.JsonElement> StatusAsync(string node)
        => System.Text.Json.JsonDocument.Parse(await CliAsync(node, "status", "--json")).RootElement.Clone();

    private async Task<System.Net.HttpStatusCode> PingAsync(string node, string path, string body)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(_dir, node, "state", "status.json")));
        using var http = new HttpClient();
        using var response = await http.PostAsync(doc.RootElement.GetProperty("http").GetString() + path, new StringContent(body));
        return response.StatusCode;
    }

    private static Dictionary<string, string> Members(System.Text.Json.JsonElement status)
        => status.TryGetProperty("cluster", out var c)
            ? c.GetProperty("members").EnumerateArray().ToDictionary(m => m.GetProperty("node").GetString()!, m => m.GetProperty("state").GetString()!)
            : [];

    private sealed record RuleRow(string Status, string? Node, string? Unknown, string? LastCheck);

    private static RuleRow? Rule(System.Text.Json.JsonElement status, string name)
        => status.GetProperty("rules").EnumerateArray().Where(r => r.GetProperty("name").GetString() == name).Select(r => new RuleRow(r.GetProperty("status").GetString()!,
            r.TryGetProperty("node", out var n) ? n.GetString() : null, r.TryGetProperty("unknown", out var u) ? u.GetString() : null,
            r.TryGetProperty("lastCheck", out var l) && l.TryGetProperty("description", out var d) ? d.GetString() : null)).FirstOrDefault();

    private async Task<long> PendingAsync(string database)
    {
        await using var connection = new NpgsqlConnection(_postgres!.ConnectionString(database));
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT COUNT(*) FROM sentinel_outbox WHERE status = 'pending'", connection);
        return (long)(await cmd.ExecuteScalarAsync())!;
    }

    // The supervised `sleep` outlives its killed node (as a service does): ended here.
    private static void KillService(string services)
    {
        using var pkill = System.Diagnostics.Process.Start("pkill", ["-f", $"echo \"$NODE\" >> \"{services}\""]);
        pkill.WaitForExit();
    }

    /// <summary>An HTTP server that records each check (the rule from the path, the node from X-Node) and fails what it is told.</summary>
    private sealed class HitServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly ConcurrentQueue<(string Rule, string Node, DateTimeOffset At)> _hits = new();
        private readonly ConcurrentDictionary<string, bool> _failing = new();

        private HitServer(WebApplication app) => _app = app;

        public string Url { get; private set; } = "";

        public static async Task<HitServer> StartAsync()
        {
            var builder = WebApplication.CreateSlimBuilder();
            builder.Logging.ClearProviders();
            builder.WebHost.UseUrls("http://127.0.0.1:0");
            var app = builder.Build();
            var server = new HitServer(app);
            app.MapGet("/r/{rule}", (string rule, HttpRequest request) =>
            {
                server._hits.Enqueue((rule, request.Headers["X-Node"].ToString(), DateTimeOffset.UtcNow));
                return server._failing.ContainsKey(rule) ? Results.StatusCode(500) : Results.Ok();
            });
            await app.StartAsync();
            server.Url = app.Urls.Single();
            return server;
        }

        public void Fail(string rule) => _failing[rule] = true;
        public void Recover(string rule) => _failing.TryRemove(rule, out _);
        public int Count(string rule) => _hits.Count(h => h.Rule == rule);
        public int Count(string rule, DateTimeOffset from, DateTimeOffset to) => Hits(rule, from, to).Count;

        public List<(string Node, DateTimeOffset At)> Hits(string rule, DateTimeOffset from, DateTimeOffset to)
            => [.. _hits.Where(h => h.Rule == rule && h.At >= from && h.At < to).Select(h => (h.Node, h.At))];

        public List<string> Nodes(string rule) => [.. _hits.Where(h => h.Rule == rule).Select(h => h.Node).Distinct().Order()];

        public async ValueTask DisposeAsync() => await _app.DisposeAsync();
    }
}
