using System.Net.Http.Json;
using System.Text.Json;
using Microsoft.Data.Sqlite;

namespace Sentinel.Host.Tests;

/// <summary>`sentinel` as users and scripts run it: a real process, real plugins, real files and sockets.</summary>
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-cli-tests", Guid.NewGuid().ToString("N")[..12]);
    private static readonly string Plugins = Path.Combine(SentinelProcess.RepoRoot, "plugins");

    public CliTests() => Directory.CreateDirectory(_dir);

    private string Config(string rules, string listen = "127.0.0.1:0") => WriteFile("sentinel.yaml", $"""
        engine:
          http: {"{"} listen: "{listen}" {"}"}
          plugins: "{Plugins}"
          state: state
          log: {"{"} directory: logs {"}"}
          state-flush-interval: 100ms
        {rules}
        """);

    private string WriteFile(string name, string content)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, content);
        return path;
    }

    private static string HttpRule(string name, string url) => $"""
          - name: {name}
            every: 200ms
            failure-threshold: 1
            probe: {"{"} type: http, with: {"{"} url: "{url}" {"}"} {"}"}
            conditions: ["status == 200", "body.status == ok"]
        """;

    [Fact]
    public async Task ASecretAProbeEchoes_IsInNoFileAndNoOutput_OfARunningOrStoppedSentinel()
    {
        const string Secret = "sk-live-5f0c2a9e7b3d41c8";
        var config = Config("""
            rules:
              - name: billing-api
                every: 200ms
                failure-threshold: 1
                probe:
                  type: nagios
                  with:
                    command: [/bin/sh, -c, 'echo "CRITICAL - login with key $API_TOKEN refused"; echo "$API_TOKEN" >&2; exit 2']
                    env: { API_TOKEN: "sk-live-5f0c2a9e7b3d41c8" }
            """);
        string running;
        using (var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => sentinel.Stdout.Contains("Rule billing-api: Pending -> Down"), context: sentinel.Output);
            await Eventually.Until(() => File.Exists(Path.Combine(_dir, "state", "status.json"))
                && File.ReadAllText(Path.Combine(_dir, "state", "status.json")).Contains("login with key ***"), context: sentinel.Output);
            running = (await SentinelProcess.RunAsync(_dir, "status", "--json", "--config", config)).Stdout;
            sentinel.Signal("TERM");
            await sentinel.ExpectExitAsync(0, TimeSpan.FromSeconds(30));
            running += sentinel.Output();
        }
        var stopped = (await SentinelProcess.RunAsync(_dir, "status", "--json", "--config", config)).Stdout
            + (await SentinelProcess.RunAsync(_dir, "history", "--config", config, "billing-api", "-n", "5")).Stdout;
        stopped.Should().Contain("login with key ***", "the check is still told, masked");
        (running + stopped).Should().NotContain(Secret);
        // Every file Sentinel wrote: the state and history databases (with their WAL), status.json, the logs.
        foreach (var file in Directory.GetFiles(Path.Combine(_dir, "state"), "*", SearchOption.AllDirectories)
                     .Concat(Directory.GetFiles(Path.Combine(_dir, "logs"), "*", SearchOption.AllDirectories)))
            System.Text.Encoding.UTF8.GetString(await File.ReadAllBytesAsync(file)).Should().NotContain(Secret, file);
        // And nobody else on the box reads them: the folders Sentinel created are 0700, its own files 0600.
        if (OperatingSystem.IsWindows()) return;
        const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        foreach (var folder in new[] { "state", "logs" })
            File.GetUnixFileMode(Path.Combine(_dir, folder)).Should().Be(Private | UnixFileMode.UserExecute, folder);
        foreach (var file in new[] { "sentinel.db", "sentinel.db-wal", "history.db", "status.json", "api-token" })
            if (File.Exists(Path.Combine(_dir, "state", file))) File.GetUnixFileMode(Path.Combine(_dir, "state", file)).Should().Be(Private, file);
        File.GetUnixFileMode(Path.Combine(_dir, "state", "status.json")).Should().Be(Private);
        Directory.GetFiles(Path.Combine(_dir, "logs"), "sentinel-*.log").Should().NotBeEmpty()
            .And.OnlyContain(f => !OperatingSystem.IsWindows() && File.GetUnixFileMode(f) == Private, "the log holds what probes saw");
    }

    [Fact]
    public async Task Validate_ValidConfig_ExitsZero()
    {
        var config = Config("rules:\n" + HttpRule("api", "http://127.0.0.1:1/health"));
        var (exit, stdout, stderr) = await SentinelProcess.RunAsync(_dir, "validate", "--config", config);
        exit.Should().Be(0, stderr);
        stdout.Should().Contain("valid: 1 rule(s)");
    }

    [Fact]
    public async Task Validate_InvalidConfig_ExitsTwo_WithEveryErrorAsFileLineColumn_AndNoStackTrace()
    {
        var config = Config("""
            rules:
              - name: api
                every: 5 minutes
                probe: { type: htpp, with: { url: "http://127.0.0.1:1/" } }
              - name: web
                probe: { type: http, with: { url: "http://127.0.0.1:1/", methd: POST } }
                conditions: ["status >> 2"]
            """);
        var (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "validate", "--config", config);

        exit.Should().Be(2);
        var errors = stderr.Split('\n').Where(l => l.StartsWith("error: ")).ToList();
        errors.Should().HaveCount(4, stderr);
        errors[0].Should().StartWith($"error: sentinel.yaml:9:12: rules[0] (api).every: '5 minutes' is not a duration");
        errors[1].Should().StartWith($"error: sentinel.yaml:10:20: rules[0] (api).probe: unknown probe type 'htpp' (did you mean 'http'?)");
        errors[2].Should().StartWith($"error: sentinel.yaml:12:62: rules[1] (web).probe.with (http): unknown key 'methd' (did you mean 'method'?)");
        errors[3].Should().StartWith($"error: sentinel.yaml:13:27: rules[1] (web).conditions: invalid condition 'status >> 2'");
        stderr.Should().Contain("4 errors: the configuration was not loaded.");
        stderr.Should().NotContain("   at ");
    }

    [Fact]
    public async Task Validate_MissingConfigFile_ExitsTwo()
    {
        var (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "validate", "--config", Path.Combine(_dir, "absent.yaml"));
        exit.Should().Be(2);
        stderr.Should().Contain("the file does not exist");
    }

    [Fact]
    public async Task Validate_TheShippedExampleConfig_IsValid()
    {
        var (exit, stdout, stderr) = await SentinelProcess.RunAsync(SentinelProcess.RepoRoot, "validate");
        exit.Should().Be(0, stderr);
        stdout.Should().Contain("valid: 4 rule(s) in 3 file(s)");
    }

    [Fact]
    public async Task Check_ExitsZeroWhenAllHealthy_OneWhenAnyIsNot_TwoForAnUnknownRule()
    {
        await using var up = await TestServer.StartAsync();
        await using var down = await TestServer.StartAsync();
        down.Status = 503;
        var config = Config("rules:\n" + HttpRule("up", up.Url + "/health") + "\n" + HttpRule("down", down.Url + "/health"));

        var healthy = await SentinelProcess.RunAsync(_dir, "check", "up", "--config", config);
        healthy.Exit.Should().Be(0, healthy.Stdout + healthy.Stderr);
        healthy.Stdout.Should().Contain("up").And.Contain("healthy").And.Contain("all 1 healthy");

        var all = await SentinelProcess.RunAsync(_dir, "check", "--config", config);
        all.Exit.Should().Be(1);
        all.Stdout.Should().Contain("unhealthy").And.Contain("503").And.Contain("1 of 2 unhealthy");

        var unknown = await SentinelProcess.RunAsync(_dir, "check", "nope", "--config", config);
        unknown.Exit.Should().Be(2);
        unknown.Stderr.Should().Contain("no rule named 'nope' (rules: up, down)");
        Directory.Exists(Path.Combine(_dir, "state")).Should().BeFalse("check never touches the state");
    }

    [Fact]
    public async Task Check_ReadsALogFromWhereTheEngineStopped_AndWritesNothing()
    {
        var log = WriteFile("bot.log", "INFO started\n");
        var config = Config($$"""
            rules:
              - name: bot-errors
                every: 200ms
                failure-threshold: 1
                probe: { type: log-regex, with: { path: "{{log}}", pattern: ERROR } }
            """);
        using (var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => sentinel.Stdout.Contains("Rule bot-errors: Pending -> Healthy"), context: sentinel.Output);
            sentinel.Signal("TERM");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(0, sentinel.Output());
        }
        File.AppendAllText(log, "ERROR database is locked\n");
        var db = Path.Combine(_dir, "state", "sentinel.db");
        var before = File.GetLastWriteTimeUtc(db);

        // Written after the engine's last read: `check` reads from the saved offset, as the engine will, not from the end.
        var check = await SentinelProcess.RunAsync(_dir, "check", "--config", config);
        check.Exit.Should().Be(1, check.Stdout + check.Stderr);
        check.Stdout.Should().Contain("1 line(s) matching 'ERROR'");
        var again = await SentinelProcess.RunAsync(_dir, "check", "--config", config);
        again.Exit.Should().Be(1, "check saved no offset: the line is still news to the engine");
        File.GetLastWriteTimeUtc(db).Should().Be(before);
    }

    [Fact]
    public async Task Run_ServesHealthAndStatus_TracksARuleGoingDown_AndStopsCleanlyOnSigterm()
    {
        await using var target = await TestServer.StartAsync();
        var config = Config("rules:\n" + HttpRule("api", target.Url + "/health"));
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        var statusFile = Path.Combine(_dir, "state", "status.json");
        using var http = new HttpClient();

        var address = await Eventually.Value(() => ReadStatus(statusFile) is { } s && s.TryGetProperty("http", out var h) ? h.GetString() : null, context: sentinel.Output);
        address.Should().StartWith("http://127.0.0.1:");
        var health = await http.GetAsync(address + "/health");
        health.StatusCode.Should().Be(System.Net.HttpStatusCode.OK);
        (await health.Content.ReadAsStringAsync()).Should().Contain("\"status\":\"ok\"");

        await Eventually.Until(async () => await RuleStatus(http, address!) == "healthy", context: sentinel.Output);
        target.Status = 503;
        await Eventually.Until(async () => await RuleStatus(http, address!) == "down", context: sentinel.Output);

        sentinel.Signal("TERM");
        var exit = await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30));
        exit.Should().Be(0, sentinel.Stdout + sentinel.Stderr);
        sentinel.Stdout.Should().Contain("Rule api: Healthy -> Down").And.Contain("state flushed");

        await using var db = new SqliteConnection($"Data Source={Path.Combine(_dir, "state", "sentinel.db")};Pooling=false");
        await db.OpenAsync();
        await using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT status FROM rule_state WHERE rule = 'api'";
        (await cmd.ExecuteScalarAsync()).Should().Be("down");
        Directory.GetFiles(Path.Combine(_dir, "logs"), "sentinel-*.log").Should().ContainSingle()
            .Which.Should().Match(f => File.ReadAllText(f).Contains("\"Rule\":\"api\""), "file logs are structured JSON");
    }

    [Fact]
    public async Task Run_InvalidConfig_ExitsTwoWithTheErrors()
    {
        var config = Config("rules:\n  - name: a\n    every: 10ms\n    probe: { type: nope }\n");
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(2);
        sentinel.Stderr.Should().Contain("error: sentinel.yaml:9:12: rules[0] (a).every: 10ms is too short")
            .And.Contain("error: sentinel.yaml:10:20: rules[0] (a).probe: unknown probe type 'nope'");
    }

    // The plugin is all the rule lacks: `run` starts, says so, shows it waiting; `validate` refuses it unless told.
    [Fact]
    public async Task Run_ARuleWhosePluginIsNotInstalled_StartsWaitingForIt_AndStatusSaysSo()
    {
        var config = Config("""
            rules:
              - name: ok
                every: 200ms
                probe: { type: timer }
              - name: later
                every: 1s
                probe: { type: file-threshold, with: { path: /tmp } }
            """);
        var strict = await SentinelProcess.RunAsync(_dir, "validate", "--config", config);
        strict.Exit.Should().Be(2);
        strict.Stderr.Should().Contain("rules[1] (later).probe: unknown probe type 'file-threshold'").And.Contain("`validate --allow-missing-plugins` accepts it");
        var check = await SentinelProcess.RunAsync(_dir, "check", "--config", config);
        check.Exit.Should().Be(1, "a rule that cannot be checked is not healthy");
        check.Stdout.Should().MatchRegex(@"later\s+│\s+not checked\s+│").And.Contain("0 of 2 unhealthy, 1 not checked (waiting for a plugin)");
        var lenient = await SentinelProcess.RunAsync(_dir, "validate", "--allow-missing-plugins", "--config", config);
        lenient.Exit.Should().Be(0, lenient.Stderr);
        lenient.Stderr.Should().Contain("warning: sentinel.yaml:13:20: rule 'later' is waiting for a plugin that provides probe type 'file-threshold'");
        lenient.Stdout.Should().Contain("valid: 2 rule(s) in 1 file(s), 1 waiting for a plugin");

        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => sentinel.Stdout.Contains("Rule ok: Pending -> Healthy"), context: sentinel.Output);
        sentinel.Stdout.Should().Contain("Rule later is not checked: ").And.Contain("waiting for a plugin that provides probe type 'file-threshold'");
        // Port 0: the CLI finds the bound address in status.json, written at the first state flush.
        await Eventually.Until(() => File.Exists(Path.Combine(_dir, "state", "status.json")), context: sentinel.Output);
        var table = await SentinelProcess.RunAsync(_dir, "status", "--config", config);
        table.Exit.Should().Be(0, table.Stderr);
        table.Stdout.Should().MatchRegex(@"later\s+│\s+waiting\s+│").And.Contain("waiting for a plugin that provides probe type 'file-threshold'");
        var rule = await SentinelProcess.RunAsync(_dir, "status", "later", "--config", config);
        rule.Exit.Should().Be(0, rule.Stderr);
        rule.Stdout.Should().Contain("later: waiting since").And.Contain("not checked").And.Contain("it starts when the plugin is dropped into a plugins folder");
        var run = await SentinelProcess.RunAsync(_dir, "run-now", "later", "--config", config);
        run.Exit.Should().NotBe(0);
        (run.Stdout + run.Stderr).Should().Contain("rule 'later' is waiting for a plugin that provides probe type 'file-threshold'");
    }

    [Fact]
    public async Task Run_PortInUse_ExitsWithAClearError()
    {
        using var blocker = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        blocker.Start();
        var port = ((System.Net.IPEndPoint)blocker.LocalEndpoint).Port;
        var config = Config("rules: []", listen: $"127.0.0.1:{port}");
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(1);
        sentinel.Stdout.Should().Contain($"Cannot listen on 127.0.0.1:{port}").And.Contain("Set engine.http.listen to a free port");
        sentinel.Stdout.Should().NotContain("   at ", "a clear error, not a stack trace");
    }

    [Fact]
    public async Task Plugins_ListsTypesWithTheirOptionsDefaultsAndDocs()
    {
        var config = Config("rules: []");
        var (exit, stdout, stderr) = await SentinelProcess.RunAsync(_dir, "plugins", "--config", config);
        exit.Should().Be(0, stderr);
        stdout.Should().Contain("Sentinel.Plugins.Http").And.Contain("probe http");
        stdout.Should().MatchRegex(@"url\s+.*URL\s+.*required\s+.*The URL to request");
        stdout.Should().MatchRegex(@"method\s+.*string\s+.*GET");
        stdout.Should().MatchRegex(@"verify-tls\s+.*boolean.*true");
    }

    [Fact]
    public async Task HelpAndVersion_Work()
    {
        var help = await SentinelProcess.RunAsync(_dir, "--help");
        help.Exit.Should().Be(0);
        help.Stdout.Should().Contain("run").And.Contain("validate").And.Contain("check").And.Contain("plugins").And.Contain("--config");
        var version = await SentinelProcess.RunAsync(_dir, "--version");
        version.Exit.Should().Be(0);
        version.Stdout.Trim().Should().MatchRegex(@"^\d+\.\d+\.\d+");
    }

    [Fact]
    public async Task Schema_PrintsTheShippedSchema()
    {
        var schema = await SentinelProcess.RunAsync(_dir, "schema", "--config", Path.Combine(SentinelProcess.RepoRoot, "config", "sentinel.yaml"));
        schema.Exit.Should().Be(0, schema.Stderr);
        schema.Stdout.Should().Be(File.ReadAllText(Path.Combine(SentinelProcess.RepoRoot, "config", "sentinel.schema.json")));
        JsonDocument.Parse(schema.Stdout).RootElement.GetProperty("$schema").GetString().Should().Be("https://json-schema.org/draft/2020-12/schema");
    }

    // The script is run by a real bash, with `sentinel` on PATH as the .deb puts it, the way a Tab runs it.
    [Fact]
    public async Task BashCompletion_OffersCommands_Options_AndTheConfigsRuleAndChannelNames()
    {
        var bin = Path.Combine(_dir, "bin");
        Directory.CreateDirectory(bin);
        var wrapper = Path.Combine(bin, "sentinel");
        File.WriteAllText(wrapper, $"#!/bin/sh\nexec dotnet \"{SentinelProcess.Dll}\" \"$@\"\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        File.WriteAllText(Path.Combine(_dir, "more.yaml"), "rules:\n  - { name: worker-b, probe: { type: scripted } }\n");
        var config = Config("""
            include: [more.yaml]
            channels: [{ name: ops-mail, type: console }]
            rules:
              - { name: worker-a, probe: { type: http, with: { url: "http://127.0.0.1:1/" } } }
              - { name: api, probe: { type: http, with: { url: "http://127.0.0.1:1/" } } }
            """);
        var script = (await SentinelProcess.RunAsync(_dir, "completion", "bash")).Stdout;
        File.WriteAllText(Path.Combine(_dir, "completion.bash"), script);
        async Task<string[]> Complete(params string[] words)
        {
            var psi = new System.Diagnostics.ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = _dir };
            psi.Environment["PATH"] = bin + ":" + Environment.GetEnvironmentVariable("PATH");
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add($"source completion.bash; COMP_WORDS=({string.Join(' ', words.Select(w => $"'{w}'"))}); COMP_CWORD={words.Length - 1}; _sentinel; printf '%s\\n' \"${{COMPREPLY[@]}}\"");
            using var p = System.Diagnostics.Process.Start(psi)!;
            var output = await p.StandardOutput.ReadToEndAsync();
            await p.WaitForExitAsync();
            return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        }
        (await Complete("sentinel", "sta")).Should().BeEquivalentTo(["status", "start"]);
        (await Complete("sentinel", "--config", config, "logs", "wor")).Should().BeEquivalentTo(["worker-a", "worker-b"], "names from the config and its includes");
        (await Complete("sentinel", "--config", config, "notify-test", "")).Should().Equal(["ops-mail", "--help", "--config"]);
        (await Complete("sentinel", "logs", "-")).Should().Contain(["--follow", "-f", "--lines", "--since", "--checks"]);
        (await Complete("sentinel", "completion", "")).Should().Contain(["bash", "zsh"]);
    }

    [Fact]
    public async Task ManPage_ListsEveryCommandAndItsOptions()
    {
        var man = await SentinelProcess.RunAsync(_dir, "man");
        man.Exit.Should().Be(0, man.Stderr);
        man.Stdout.Should().StartWith(".TH SENTINEL 1 ").And.Contain(".SH EXIT STATUS").And.Contain(".SH FILES");
        var help = (await SentinelProcess.RunAsync(_dir, "--help")).Stdout;
        foreach (var command in new[] { "run", "validate", "check", "status", "logs", "stop", "start", "restart", "ack", "schema", "completion" })
        {
            help.Should().Contain(command);
            man.Stdout.Should().MatchRegex($@"\n\.B {command.Replace("-", @"\\-")}( |\n)", $"the man page has `{command}`, as --help has");
        }
        man.Stdout.Should().Contain(@".B \-f, \-\-follow");
    }

    // 1 is "a rule is down" to status and check: a mistyped command line must not look like an outage.
    [Fact]
    public async Task UsageErrors_Exit2_AndSayWhatWasExpected()
    {
        var ack = await SentinelProcess.RunAsync(_dir, "ack", "abc");
        ack.Exit.Should().Be(2);
        ack.Stderr.Should().Contain("'abc' is not an incident number: give the number from the message (12 or #12)").And.NotContain("System.Int64");
        var unknown = await SentinelProcess.RunAsync(_dir, "stauts");
        unknown.Exit.Should().Be(2);
        unknown.Stderr.Should().Contain("stauts").And.MatchRegex(@"commands: run, validate, check, .*status.*stop, start, restart");
        var missing = await SentinelProcess.RunAsync(_dir, "pause");
        missing.Exit.Should().Be(2);
        missing.Stderr.Should().Contain("Run 'sentinel pause --help' for usage.");
    }

    private static JsonElement? ReadStatus(string path)
    {
        try { return JsonDocument.Parse(File.ReadAllText(path)).RootElement; }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    private static async Task<string?> RuleStatus(HttpClient http, string address)
    {
        var status = await http.GetFromJsonAsync<JsonElement>(address + "/api/status");
        return status.GetProperty("rules").EnumerateArray().Single(r => r.GetProperty("name").GetString() == "api").GetProperty("status").GetString();
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
