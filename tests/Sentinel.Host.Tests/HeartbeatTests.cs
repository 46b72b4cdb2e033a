using System.Net.Sockets;
using System.Text;

namespace Sentinel.Host.Tests;

/// <summary>The engine's dead-man's switch and the systemd watchdog, on the real `sentinel`.</summary>
public sealed class HeartbeatTests : IDisposable
{
    private const string Uuid = "5bf66975-d4c7-4bf5-bcc8-b8d8a82ea278";
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-heartbeat-tests", Guid.NewGuid().ToString("N")[..12]);

    public HeartbeatTests() => Directory.CreateDirectory(_dir);

    // The file that makes the running Sentinel's scheduler hang (SENTINEL_TEST_HANG_SCHEDULER_WHEN).
    private string HangTrigger => Path.Combine(_dir, "hang");

    private async Task HangAsync(SentinelProcess sentinel)
    {
        await File.WriteAllTextAsync(HangTrigger, "");
        await Eventually.Until(() => sentinel.Stdout.Contains("TEST HOOK"), context: sentinel.Output);
    }

    private string Config(string pingBase, string rules = "rules:\n  - { name: self, every: 200ms, probe: { type: http, with: { url: \"http://127.0.0.1:1/\" } } }")
    {
        var path = SentinelProcess.WriteConfig(_dir, rules);
        // The heartbeat belongs in the engine section: insert it there.
        var text = File.ReadAllText(path).Replace("engine:\n", $"engine:\n  heartbeat:\n    every: 1s\n    to: [{{ type: healthchecks, with: {{ base: \"{pingBase}\", uuid: {Uuid} }} }}]\n");
        File.WriteAllText(path, text);
        return path;
    }

    [Fact]
    public async Task Engine_PingsStartThenSuccess_PairedByRid_RetriesA5xx_HonoursTheBodyLimit_AndFallsSilentWhenTheSchedulerHangs()
    {
        await using var hc = await PingServer.StartAsync(Uuid);
        hc.FailNext(2); // the start ping meets two 503s first
        hc.BodyLimit = 20;
        using var sentinel = SentinelProcess.Start(_dir, new Dictionary<string, string> { ["SENTINEL_TEST_HANG_SCHEDULER_WHEN"] = HangTrigger }, "run", "--config", Config(hc.Url));
        // The start ping (after its two retries) and success pings after it, then the hang.
        await Eventually.Until(() => hc.Pings.Count(p => p.Kind == "success") >= 2, context: sentinel.Output);
        await HangAsync(sentinel);
        var hungAt = DateTimeOffset.UtcNow;
        var pings = hc.Pings.ToList();
        pings[0].Kind.Should().Be("start", "start comes first, after its retries");
        hc.Requests.Should().BeGreaterThan(pings.Count, "the 503s were retried");
        pings[0].Body.Should().StartWith("Sentinel ").And.Contain("starting");
        pings.Skip(1).Should().NotBeEmpty().And.OnlyContain(p => p.Kind == "success" && p.Rid == pings[0].Rid, "success pings pair with the start");
        pings[0].Rid.Should().NotBeNullOrEmpty();
        pings.Skip(1).Should().OnlyContain(p => Encoding.UTF8.GetByteCount(p.Body) <= 20, "bodies are cut to the server's Ping-Body-Limit");

        // Hung: the scheduler's last tick ages past 5s, then no more success pings, while the process stays up.
        await Eventually.Until(() => sentinel.Stdout.Contains("Heartbeat withheld"), context: sentinel.Output);
        var silentFrom = DateTimeOffset.UtcNow;
        var before = hc.Pings.Count;
        await Eventually.Until(() => sentinel.Stdout.Split("Heartbeat withheld").Length > 3, context: sentinel.Output); // two more intervals pass
        hc.Pings.Count.Should().Be(before, "a hung engine falls silent");
        (silentFrom - hungAt).Should().BeLessThan(TimeSpan.FromSeconds(8), "silence within the 5s staleness plus one interval");
        File.Exists($"/proc/{sentinel.Id}/stat").Should().BeTrue("the process is still up: only the outside switch can tell");
    }

    [Fact]
    public async Task InvalidConfigAtStart_SendsFailWithTheErrors()
    {
        await using var hc = await PingServer.StartAsync(Uuid);
        var config = Config(hc.Url, "rules:\n  - { name: broken, every: 10ms, probe: { type: htp } }");
        var (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "run", "--config", config);
        exit.Should().Be(2, stderr);
        var fail = hc.Pings.Should().ContainSingle().Subject;
        fail.Kind.Should().Be("fail");
        fail.Body.Should().Contain("the configuration is invalid").And.Contain("10ms is too short").And.Contain("unknown probe type 'htp' (did you mean 'http'?)");
    }

    [Fact]
    public async Task Systemd_GetsReadyAndWatchdogKeepAlives_WhichStopWhenTheSchedulerHangs()
    {
        var socketPath = Path.Combine(_dir, "notify.sock");
        using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(socketPath));
        var received = new System.Collections.Concurrent.ConcurrentQueue<(string Text, DateTimeOffset At)>();
        using var cts = new CancellationTokenSource();
        var reader = Task.Run(async () =>
        {
            var buffer = new byte[4096];
            while (!cts.IsCancellationRequested)
            {
                try { var n = await socket.ReceiveAsync(buffer, cts.Token); received.Enqueue((Encoding.UTF8.GetString(buffer, 0, n), DateTimeOffset.UtcNow)); }
                catch (OperationCanceledException) { break; }
            }
        });
        var env = new Dictionary<string, string>
        {
            ["NOTIFY_SOCKET"] = socketPath, ["WATCHDOG_USEC"] = "1000000", ["SENTINEL_TEST_HANG_SCHEDULER_WHEN"] = HangTrigger,
        };
        using var sentinel = SentinelProcess.Start(_dir, env, "run", "--config", SentinelProcess.WriteConfig(_dir, "rules: []"));
        await Eventually.Until(() => received.Any(r => r.Text.StartsWith("READY=1")), context: sentinel.Output);
        await Eventually.Until(() => received.Count(r => r.Text == "WATCHDOG=1") >= 3, context: sentinel.Output);
        await HangAsync(sentinel);
        await Eventually.Until(() => sentinel.Stdout.Contains("watchdog keep-alive is withheld"), context: sentinel.Output);
        var count = received.Count(r => r.Text == "WATCHDOG=1");
        await Eventually.Until(() => sentinel.Stdout.Split("watchdog keep-alive is withheld").Length > 3, context: sentinel.Output);
        received.Count(r => r.Text == "WATCHDOG=1").Should().Be(count, "no keep-alive while the scheduler is hung: systemd will restart Sentinel");
        sentinel.Signal("TERM");
        await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30));
        await Eventually.Until(() => received.Any(r => r.Text.StartsWith("STOPPING=1")), context: sentinel.Output);
        await cts.CancelAsync();
        await reader;
    }

    [Fact]
    public async Task RulePing_MirrorsTheRule_SuccessRateLimited_FailWhenDown_LogOnRemediation()
    {
        await using var hc = await PingServer.StartAsync(Uuid);
        await using var target = await TestServer.StartAsync();
        var config = SentinelProcess.WriteConfig(_dir, $$"""
            rules:
              - name: api
                every: 100ms
                failure-threshold: 1
                probe: { type: http, with: { url: "{{target.Url}}/health" } }
                conditions: ["status == 200"]
                ping: { type: healthchecks, with: { base: "{{hc.Url}}", uuid: {{Uuid}} } }
                ping-every: 1s
                remediate: [{ type: exec, with: { command: [/bin/true] } }]
                grace: 1h
            """);
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => hc.Pings.Count(p => p.Kind == "success") >= 5, context: sentinel.Output);
        // (The first ping's arrival is late by the client's first connection; the gaps after it are the rate.)
        var successes = hc.Pings.Where(p => p.Kind == "success").Select(p => p.At).Skip(1).ToList();
        // Measured at arrival, the gaps average 1s: one may be short, when a ping made on time waited for a late one
        // before it (a target's pings go out in order); a rule that pinged at every check would average 100ms.
        var gap = (successes[^1] - successes[0]) / (successes.Count - 1);
        gap.Should().BeGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(600), "a 100ms rule pings at most every ping-every (1s)");

        target.Status = 503;
        await Eventually.Until(() => hc.Pings.Any(p => p.Kind == "fail") && hc.Pings.Any(p => p.Kind == "log"), context: sentinel.Output);
        hc.Pings.First(p => p.Kind == "fail").Body.Should().Contain("503");
        hc.Pings.Where(p => p.Kind == "log").Select(p => p.Body).Should().Contain(b => b.StartsWith("remediating (attempt 1)"));
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
