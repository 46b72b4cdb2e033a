using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace Sentinel.Host.Tests;

/// <summary>Supervision end to end: the real `sentinel` supervising the real test service.</summary>
public sealed class SupervisionTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-supervise-tests", Guid.NewGuid().ToString("N")[..12]);
    private static readonly string Plugins = Path.Combine(SentinelProcess.RepoRoot, "plugins");
    private static readonly string Service = Path.Combine(SentinelProcess.RepoRoot, "tests", "services", "testservice.py");

    public SupervisionTests() => Directory.CreateDirectory(_dir);

    // The test service as rule "svc", supervised with the defaults, checked every 200ms.
    private string SvcRule => $"""
          - name: svc
            every: 200ms
            supervise: {"{"} command: [/usr/bin/python3, "{Service}", --port-file, "{PortFile}"] {"}"}
        """;

    private string Pidfile => Path.Combine(_dir, "state", "supervise", "svc.pid");
    private string PortFile => Path.Combine(_dir, "port");

    private string Config(string rule)
    {
        var path = Path.Combine(_dir, "sentinel.yaml");
        File.WriteAllText(path, $"""
            engine:
              http: {"{"} listen: "127.0.0.1:0" {"}"}
              plugins: "{Plugins}"
              state: state
              log: {"{"} directory: logs {"}"}
              state-flush-interval: 100ms
            rules:
            {rule}
            """);
        return path;
    }

    [Fact]
    public async Task ASecondSentinelOnTheSameState_ExitsAtOnce_AndTouchesNothing_UntilTheFirstIsGone()
    {
        var config = Config($"""
              - name: svc
                every: 200ms
                supervise: {"{"} command: [/usr/bin/python3, "{Service}", --port-file, "{PortFile}"], stop-on-exit: true {"}"}
            """);
        using var first = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(first));
        var pid = int.Parse(File.ReadAllText(Pidfile));

        using (var second = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            (await second.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(1, second.Output());
            second.Stderr.Should().Contain($"another Sentinel (pid {first.Id}) uses").And.Contain("only one Sentinel may run on a state folder");
            second.Stdout.Should().NotContain("adopted", "the second one never looked at the services");
        }
        ServiceLog().Split('\n').Count(l => l.StartsWith("started pid")).Should().Be(1);
        int.Parse(File.ReadAllText(Pidfile)).Should().Be(pid);
        (await Health()).Should().Be("ok", "the first one's service was not stopped by the second's exit");
        var (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "status", "--config", config);
        exit.Should().Be(0, "read-only commands work beside the running one");
        stdout.Should().Contain("svc");

        // The kernel releases the lock of a killed Sentinel: the next one starts (and adopts the service).
        first.Signal("KILL");
        (await first.WaitForExitAsync(TimeSpan.FromSeconds(10))).Should().Be(137);
        using var third = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => third.Stdout.Contains($"Rule svc: adopted pid {pid}"), context: () => Diagnostics(third));
    }

    [Fact]
    public async Task AServiceKilledWithSigkill_IsMailedAsOneCrash_WithItsRestart_WhenAlertOnExited()
    {
        using var smtp = await Sentinel.Plugins.Tests.Support.SmtpServer.StartAsync();
        var config = Config($"""
              - name: svc
                every: 200ms
                supervise: {"{"} command: [/usr/bin/python3, "{Service}", --port-file, "{PortFile}"], start-period: 0s {"}"}
                notify: [{"{"} channel: ops-mail {"}"}]
                alert-on: [exited]
            notifications: {"{"} group-wait: 1s {"}"}
            channels:
              - name: ops-mail
                type: email
                with: {"{"} host: 127.0.0.1, port: {smtp.Port}, tls: none, from: alerts@example.test, to: [ops@example.test] {"}"}
            """);
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(sentinel));
        var pid = int.Parse(File.ReadAllText(Pidfile));
        File.Delete(PortFile);
        using (var kill = System.Diagnostics.Process.Start("kill", ["-9", pid.ToString()])) await kill.WaitForExitAsync();
        await Eventually.Until(() => File.Exists(PortFile), context: () => Diagnostics(sentinel));
        await Eventually.Until(() => smtp.Messages().Count >= 1, context: () => Diagnostics(sentinel));
        var mail = smtp.Messages().Single();
        mail.Subject.Should().Be("[Sentinel] CRASHED: svc");
        mail.TextBody.Should().Contain($"svc (pid {pid}) was killed by signal 9").And.MatchRegex(@"restarted in [\d.]+(ms|s): ");
    }

    [Fact]
    public async Task RestartingOften_IsToldOncePerWindow_EvenWhenSentinelIsRestartedInside()
    {
        using var smtp = await Sentinel.Plugins.Tests.Support.SmtpServer.StartAsync();
        var config = Config($"""
              - name: svc
                every: 200ms
                supervise: {"{"} command: [/usr/bin/python3, "{Service}", --port-file, "{PortFile}"], start-period: 0s {"}"}
                backoff: {"{"} initial: 100ms, max: 100ms, jitter: 0 {"}"}
                notify: [{"{"} channel: ops-mail {"}"}]
                alert-on: [restart-rate]
                restart-rate: {"{"} max: 1, within: 1h {"}"}
            notifications: {"{"} group-wait: 0s {"}"}
            channels:
              - name: ops-mail
                type: email
                with: {"{"} host: 127.0.0.1, port: {smtp.Port}, tls: none, from: alerts@example.test, to: [ops@example.test] {"}"}
            """);
        using (var first = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => RecordedPid() is not null, context: () => Diagnostics(first));
            await KillAndAwaitRestartAsync(first);
            await KillAndAwaitRestartAsync(first);
            await Eventually.Until(() => smtp.Messages().Count >= 1, context: () => Diagnostics(first));
            smtp.Messages().Single().Subject.Should().Be("[Sentinel] RESTARTING OFTEN: svc");
            first.Signal("TERM");
            await first.ExpectExitAsync(0, TimeSpan.FromSeconds(30));
        }
        using (var second = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => second.Stdout.Contains("Rule svc: adopted pid"), context: () => Diagnostics(second));
            await KillAndAwaitRestartAsync(second);
            await KillAndAwaitRestartAsync(second);
            await Eventually.Until(() => Status()?.GetProperty("remediation").GetProperty("total").GetInt64() == 4, context: () => Diagnostics(second));
            // A graceful stop writes every message decided up to then: the outbox holds what this Sentinel would send.
            second.Signal("TERM");
            await second.ExpectExitAsync(0, TimeSpan.FromSeconds(30));
        }
        (await OutboxKinds()).Should().Equal(["restart-rate"], "four restarts in one hour exceed a limit of one once per window, restart or not");
        smtp.Messages().Should().ContainSingle();
    }

    [Fact]
    public async Task StopHoldsTheServiceStopped_AcrossARestartOfSentinel_StartAndRestartBringItBack_StatusRuleTellsItAll()
    {
        var config = Config($"""
            {SvcRule}
            """);
        var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        try
        {
            await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(sentinel));
            var pid = RecordedPid()!.Value;

            var stop = await SentinelProcess.RunAsync(_dir, "stop", "svc", "--config", config);
            stop.Exit.Should().Be(0, stop.Stderr);
            stop.Stdout.Should().Contain($"svc: stopped pid {pid}; held stopped");
            NativeAlive(pid).Should().BeFalse("the service was stopped");
            await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "paused"
                && ServiceSummary(s)?.StartsWith("stopped by the operator") == true, context: () => Diagnostics(sentinel));
            var whole = await SentinelProcess.RunAsync(_dir, "status", "svc", "--config", config);
            whole.Exit.Should().Be(0, whole.Stderr);
            whole.Stdout.Should().Contain("svc: paused since").And.Contain("stopped by the operator (sentinel start svc)").And.Contain("incident").And.Contain("Last checks");

            // Held across a restart of Sentinel: not started, not alerted for.
            sentinel.Signal("TERM");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(0, sentinel.Output());
            sentinel.Dispose();
            File.Delete(PortFile);
            var restartedAt = DateTimeOffset.UtcNow.AddSeconds(-1);
            sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
            await Eventually.Until(() => sentinel.Stdout.Contains(" started: 1 rules"), context: () => Diagnostics(sentinel));
            // The status the new Sentinel wrote (its address in it: the commands reach it) shows the state it read: paused, held.
            await Eventually.Until(() => Engine() is { } e && e.TryGetProperty("startedAt", out var at) && at.GetDateTimeOffset() > restartedAt && e.TryGetProperty("http", out var http) && http.ValueKind == JsonValueKind.String
                && Status() is { } s && ServiceSummary(s)?.StartsWith("stopped by the operator") == true, context: () => Diagnostics(sentinel));
            File.Exists(PortFile).Should().BeFalse("nothing started it before `sentinel start`");
            ServiceLog().Split('\n').Count(l => l.StartsWith("started pid")).Should().Be(1);
            var start = await SentinelProcess.RunAsync(_dir, "start", "svc", "--config", config);
            start.Exit.Should().Be(0, start.Stderr);
            start.Stdout.Should().Contain("svc: started pid");
            await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy" && File.Exists(PortFile), context: () => Diagnostics(sentinel));
            (await Health()).Should().Be("ok");

            var before = RecordedPid()!.Value;
            var restart = await SentinelProcess.RunAsync(_dir, "restart", "svc", "--config", config);
            restart.Exit.Should().Be(0, restart.Stderr);
            await Eventually.Until(() => RecordedPid() is { } now && now != before, context: () => Diagnostics(sentinel));
            NativeAlive(before).Should().BeFalse();
            Status()!.Value.GetProperty("remediation").GetProperty("total").GetInt64().Should().Be(0, "an operator's start or restart is not a remediation");
            sentinel.Stdout.Should().NotContain("-> Down", "nothing the operator did is an outage").And.NotContain("exited (", "nor a crash");

            // Checks come every 200ms: enough lines to reach back past the resume however slowly this test ran.
            var story = await SentinelProcess.RunAsync(_dir, "logs", "svc", "--checks", "-n", "1000", "--since", "10m", "--config", config);
            story.Exit.Should().Be(0, story.Stderr);
            story.Stdout.Should().Contain("  check  healthy").And.Contain("transition  paused", "its checks and events: the resume by `sentinel start` among them");

            var unknown = await SentinelProcess.RunAsync(_dir, "status", "svx", "--config", config);
            unknown.Exit.Should().Be(2);
            unknown.Stderr.Should().Contain("there is no rule 'svx'");
        }
        finally { sentinel.Dispose(); }
    }

    [Fact]
    public async Task Logs_TailsTheServiceOutput_IntoItsRotatedFiles_AndFollowsItAcrossARotation()
    {
        var output = Path.Combine(_dir, "out", "svc.log");
        var config = Config($"""
              - name: svc
                every: 200ms
                supervise: {"{"} command: [/usr/bin/python3, "{Service}"], stdout: out/svc.log {"}"}
            """);
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        await File.WriteAllTextAsync(output + ".2", "oldest-1\noldest-2\n");
        await File.WriteAllTextAsync(output + ".1", "old-1\nold-2\nold-3\n");
        await File.WriteAllTextAsync(output, "new-1\n");

        var tail = await SentinelProcess.RunAsync(_dir, "logs", "svc", "-n", "5", "--config", config);
        tail.Exit.Should().Be(0, tail.Stderr);
        tail.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Should().Equal("oldest-2", "old-1", "old-2", "old-3", "new-1");

        using var follow = SentinelProcess.Start(_dir, null, "logs", "svc", "-f", "-n", "1", "--config", config);
        await Eventually.Until(() => follow.Stdout.Contains("new-1"), context: follow.Output);
        await File.AppendAllTextAsync(output, "new-2\n");
        await Eventually.Until(() => follow.Stdout.Contains("new-2"), context: follow.Output);
        // Rotated as Sentinel rotates it: copied away, truncated, written again.
        File.Copy(output, output + ".1", overwrite: true);
        await File.WriteAllTextAsync(output, "");
        await File.AppendAllTextAsync(output, "after\n");
        await Eventually.Until(() => follow.Stdout.Contains("after"), context: follow.Output);
        follow.Stdout.Split('\n').Count(l => l == "new-2").Should().Be(1, "what was printed is not printed again");
    }

    private static bool NativeAlive(int pid)
    {
        try { using var p = System.Diagnostics.Process.GetProcessById(pid); return !p.HasExited; }
        catch (ArgumentException) { return false; }
    }

    private async Task KillAndAwaitRestartAsync(SentinelProcess sentinel)
    {
        var pid = RecordedPid()!.Value;
        using (var kill = System.Diagnostics.Process.Start("kill", ["-9", pid.ToString()])) await kill.WaitForExitAsync();
        await Eventually.Until(() => RecordedPid() is { } now && now != pid, context: () => Diagnostics(sentinel));
    }

    private async Task<List<string>> OutboxKinds()
    {
        await using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_dir, "state", "sentinel.db")};Pooling=false");
        await db.OpenAsync();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT body FROM outbox ORDER BY id";
        var kinds = new List<string>();
        using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync())
            kinds.Add(JsonDocument.Parse(r.GetString(0)).RootElement.GetProperty("item").GetProperty("kind").GetString()!);
        return kinds;
    }

    [Fact]
    public async Task AProcessProbeOnASupervisedRule_CountsItsOwnService_NotASecondCopyOnTheBox()
    {
        // Another copy of the same service, started outside this Sentinel (another checkout, a staging copy).
        var otherPort = Path.Combine(_dir, "other-port");
        using var other = System.Diagnostics.Process.Start(new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { ArgumentList = { Service, "--port-file", otherPort } })!;
        try
        {
            await Eventually.Until(() => File.Exists(otherPort));
            var match = System.Text.RegularExpressions.Regex.Escape(Service);
            var config = Config($"""
                  - name: svc
                    every: 200ms
                    failure-threshold: 1
                    supervise: {"{"} command: [/usr/bin/python3, "{Service}", --port-file, "{PortFile}"], start-period: 0s {"}"}
                    probe: {"{"} type: process, with: {"{"} match: '{match}', max: 1 {"}"} {"}"}
                  - name: box-wide
                    every: 200ms
                    failure-threshold: 1
                    probe: {"{"} type: process, with: {"{"} match: '{match} --port-file {System.Text.RegularExpressions.Regex.Escape(_dir)}', max: 1 {"}"} {"}"}
                """);
            using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
            await Eventually.Until(() => RecordedPid() is not null && Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(sentinel));
            var pid = RecordedPid()!.Value;
            Status()!.Value.GetProperty("lastCheck").GetProperty("description").GetString().Should().StartWith($"pid {pid} up", "it counts the service it runs");
            await Eventually.Until(() => sentinel.Stdout.Contains("Rule box-wide: Pending -> Down"), context: () => Diagnostics(sentinel));
            sentinel.Stdout.Should().Contain("2 processes match match", "counted system-wide, both copies are seen");
            sentinel.Stdout.Should().NotContain("Rule svc: remediation attempt", "the other copy never made it restart its own");
        }
        finally { other.Kill(); }
    }

    [Fact]
    public async Task Status_ShowsEachServicesPidUptimeAndRestarts_AndAGaveUpWithItsNextAttempt()
    {
        var config = Config($"""
            {SvcRule}
              - name: broken
                every: 200ms
                supervise: {"{"} shell: true, command: "echo 'cannot connect to the gateway'; exit 3", start-period: 0s {"}"}
                backoff: {"{"} initial: 100ms, max: 100ms, jitter: 0 {"}"}
                restart-budget: {"{"} max: 2, within: 10m, retry-after: 1h {"}"}
            """);
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => RecordedPid() is not null && Rule("broken") is { } b && b.GetProperty("service").GetProperty("state").GetString() == "gaveUp",
            context: () => Diagnostics(sentinel));
        var pid = RecordedPid()!.Value;

        var (_, json, _) = await SentinelProcess.RunAsync(_dir, "status", "--json", "--config", config);
        var rules = JsonDocument.Parse(json).RootElement.GetProperty("rules").EnumerateArray().ToDictionary(r => r.GetProperty("name").GetString()!, r => r.GetProperty("service"));
        rules["svc"].GetProperty("state").GetString().Should().Be("running");
        rules["svc"].GetProperty("pid").GetInt32().Should().Be(pid);
        rules["svc"].GetProperty("restarts").GetInt64().Should().Be(0);
        rules["svc"].TryGetProperty("uptime", out _).Should().BeTrue();
        var broken = rules["broken"];
        broken.GetProperty("restarts").GetInt64().Should().Be(2);
        broken.GetProperty("restartsInWindow").GetInt32().Should().Be(2);
        var next = broken.GetProperty("nextAttemptAt").GetDateTimeOffset();
        next.Should().BeCloseTo(DateTimeOffset.UtcNow + TimeSpan.FromHours(1), TimeSpan.FromMinutes(1), "retry-after: 1h after giving up");

        using var statusCommand = SentinelProcess.Start(_dir, new Dictionary<string, string> { ["COLUMNS"] = "250" }, "status", "--config", config);
        var exit = await statusCommand.WaitForExitAsync(TimeSpan.FromSeconds(60));
        var table = statusCommand.Stdout;
        exit.Should().Be(1, "broken is down");
        table.Should().Contain($"pid {pid}, up ").And.Contain("0 restarts (0 in the last 10m)")
            .And.MatchRegex(@"gave up — next attempt \d\d:\d\d:\d\d \(in (1h|59m\d+s)\) · 2 restarts \(2 in the last 10m\)");
    }

    // Read while status.json is being rewritten by a new Sentinel: a key not there yet is "not yet", not an error.
    private static string? ServiceSummary(JsonElement rule)
        => rule.TryGetProperty("service", out var service) && service.ValueKind == JsonValueKind.Object && service.TryGetProperty("summary", out var summary) ? summary.GetString() : null;

    private JsonElement? Engine()
    {
        try { return JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json"))).RootElement.Clone(); }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    private JsonElement? Rule(string name)
    {
        try
        {
            var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            return doc.RootElement.GetProperty("rules").EnumerateArray().Single(r => r.GetProperty("name").GetString() == name).Clone();
        }
        catch (Exception e) when (e is IOException or JsonException or InvalidOperationException or KeyNotFoundException) { return null; }
    }

    [Fact]
    public async Task SentinelKilledWithSigkill_TheNextSentinelAdoptsTheServiceWithoutRestartingIt()
    {
        var config = Config($"""
            {SvcRule}
            """);
        int pid;
        using (var first = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => File.Exists(PortFile) && File.Exists(Pidfile), context: () => Diagnostics(first));
            pid = int.Parse(File.ReadAllText(Pidfile));
            // Killed once status.json shows the process (the database may or may not have it yet: the pidfile covers that).
            await Eventually.Until(() => RecordedPid() == pid, context: () => Diagnostics(first));
            first.Signal("KILL");
            (await first.WaitForExitAsync(TimeSpan.FromSeconds(10))).Should().Be(137);
        }
        (await Health()).Should().Be("ok", "the service outlives a killed Sentinel");

        using var second = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => second.Stdout.Contains($"Rule svc: adopted pid {pid}"), context: () => Diagnostics(second));
        await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(second));
        int.Parse(File.ReadAllText(Pidfile)).Should().Be(pid);
        (await Health()).Should().Be("ok");
        ServiceLog().Split('\n').Count(l => l.StartsWith("started pid")).Should().Be(1, "the service was never restarted");

        // The adopted service is watched: its crash is seen at once and it is restarted.
        var port = File.ReadAllText(PortFile);
        File.Delete(PortFile);
        await Tell(port, "crash");
        await Eventually.Until(() => File.Exists(PortFile), context: () => Diagnostics(second));
        int.Parse(File.ReadAllText(Pidfile)).Should().NotBe(pid);
        (await Health()).Should().Be("ok");
        second.Stdout.Should().Contain($"Rule svc: pid {pid} exited (status unknown: it was adopted from an earlier Sentinel)")
            .And.Contain("Rule svc: remediation attempt 1: the service exited");
    }

    [Fact]
    public async Task HungService_FoundByItsProbe_IsStoppedBySignal_AndStartedAgain()
    {
        var port = FreePort();
        var config = Config($"""
              - name: svc
                every: 200ms
                timeout: 500ms
                failure-threshold: 2
                supervise: {"{"} command: [/usr/bin/python3, "{Service}", --port, "{port}", --port-file, "{PortFile}"] {"}"}
                probe: {"{"} type: http, with: {"{"} url: "http://127.0.0.1:{port}/health" {"}"} {"}"}
                remediate:
                  - {"{"} type: signal, with: {"{"} pidfile: state/supervise/svc.pid, grace: 1s {"}"} {"}"}
            """);
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(sentinel));
        var pid = int.Parse(File.ReadAllText(Pidfile));

        await Tell(port.ToString(), "hang");
        await Eventually.Until(() => File.Exists(Pidfile) && int.Parse(File.ReadAllText(Pidfile)) != pid, context: () => Diagnostics(sentinel));
        await Eventually.Until(() => Status() is { } s && s.GetProperty("status").GetString() == "healthy", context: () => Diagnostics(sentinel));
        (await Health()).Should().Be("ok");
        await Eventually.Until(() => sentinel.Stdout.Contains("Rule svc: attempt 1 done: ran signal; started pid"), context: () => Diagnostics(sentinel));
        sentinel.Stdout.Should().Contain("Rule svc: Healthy -> Failing").And.Contain("Rule svc: remediation attempt 1: timed out after 500ms");
        File.Exists($"/proc/{pid}").Should().BeFalse("the hung process was stopped");
    }

    private int? RecordedPid()
        => Status() is { } s && s.TryGetProperty("remediation", out var r) && r.TryGetProperty("process", out var p) && p.ValueKind == JsonValueKind.Object
            ? p.GetProperty("pid").GetInt32() : null;

    private JsonElement? Status() => Rule("svc");

    private string ServiceLog() => File.ReadAllText(Path.Combine(_dir, "logs", "svc.log"));

    private async Task<string> Health()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        return await http.GetStringAsync($"http://127.0.0.1:{File.ReadAllText(PortFile)}/health");
    }

    private static async Task Tell(string port, string command)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try { await http.PostAsync($"http://127.0.0.1:{port}/{command}", null); }
        catch (HttpRequestException) { }
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private string Diagnostics(SentinelProcess process) => process.Output()
        + $"\nport file: {File.Exists(PortFile)}, pidfile: {(File.Exists(Pidfile) ? File.ReadAllText(Pidfile).Trim() : "none")}"
        + $"\nstatus.json rule: {Status()?.ToString() ?? "(none)"}";

    public void Dispose()
    {
        // Supervised services run in sessions of their own, outside Sentinel's process tree: stop them here.
        try
        {
            if (File.Exists(Pidfile) && int.TryParse(File.ReadAllText(Pidfile).Trim(), out var pid))
                using (var kill = System.Diagnostics.Process.Start("kill", ["-9", pid.ToString()])) kill.WaitForExit();
        }
        catch (Exception e) when (e is IOException or System.ComponentModel.Win32Exception) { }
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
