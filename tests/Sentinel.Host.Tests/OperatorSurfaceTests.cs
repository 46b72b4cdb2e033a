using System.Diagnostics;
using System.Text.Json;

namespace Sentinel.Host.Tests;

/// <summary>The status page in a real browser, and the operator commands, against the real `sentinel`.</summary>
public sealed class OperatorSurfaceTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-operator-tests", Guid.NewGuid().ToString("N")[..12]);

    public OperatorSurfaceTests() => Directory.CreateDirectory(_dir);

    /// <summary>Screenshots land here (under the repository's artifacts folder, kept after the run).</summary>
    public static string ArtifactsDir { get; } = Path.Combine(SentinelProcess.RepoRoot, "artifacts", "test-screenshots");

    private string StatusFile => Path.Combine(_dir, "state", "status.json");

    private string? Address()
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(StatusFile));
            return doc.RootElement.TryGetProperty("http", out var h) && h.ValueKind == JsonValueKind.String ? h.GetString() : null;
        }
        catch (Exception e) when (e is IOException or JsonException) { return null; }
    }

    // A rule's status as status.json shows it (rewritten whole at each transition), without starting a CLI process to ask.
    private string? StatusInFile(string rule)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(StatusFile));
            return doc.RootElement.GetProperty("rules").EnumerateArray().Where(r => r.GetProperty("name").GetString() == rule)
                .Select(r => r.GetProperty("status").GetString()).FirstOrDefault();
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException) { return null; }
    }

    private static string Rules(string url) => $"""
        rules:
          - name: bot-api
            every: 200ms
            timeout: 2s
            failure-threshold: 2
            success-threshold: 1
            probe: {"{"} type: http, with: {"{"} url: "{url}/health" {"}"} {"}"}
          - name: nightly
            cron: "0 0 1 1 *"    # never during a test: only run-now checks it
            probe: {"{"} type: http, with: {"{"} url: "{url}/health" {"}"} {"}"}
        """;

    [Fact]
    public async Task StatusPage_InARealBrowser_ShowsTheRuleGoingDownAndBackUp_LiveAndWithoutErrors()
    {
        await using var service = await TestServer.StartAsync();
        using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", SentinelProcess.WriteConfig(_dir, Rules(service.Url)));
        var address = await Eventually.Value(Address, context: sentinel.Output);
        await using var browser = await HeadlessChromium.StartAsync();

        await browser.SendAsync("Page.navigate", new { url = address + "/" });
        async Task<string?> State() => (await browser.EvalAsync("document.querySelector('[data-rule=\"bot-api\"]')?.dataset.status ?? null"))?.GetValue<string>();
        await Eventually.Until(async () => await State() == "healthy", what: "the page shows bot-api healthy", context: sentinel.Output);
        await browser.EvalAsync("window.__sameDocument = 42");
        await Eventually.Until(async () => (await browser.EvalAsync("document.getElementById('live').className"))!.GetValue<string>() == "on", context: sentinel.Output, what:
            "the page's event stream is connected");
        await browser.ScreenshotAsync(Path.Combine(ArtifactsDir, "status-page-healthy.png"));

        service.Status = 503;
        var failedAt = Stopwatch.StartNew();
        await Eventually.Until(async () => await State() == "down", what: "the page shows bot-api down", context: sentinel.Output);
        // Within seconds (the event stream, at worst the page's own 5 s refresh), not at a reload: the bound leaves room
        // for a loaded machine (a CI run took 5.7 s with every test project running beside Chromium).
        failedAt.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(15), "the page follows the engine within seconds");
        // The incident (opened by the notification side, a moment later) and the event (from the stream) follow without a reload.
        await Eventually.Until(async () => !(await browser.EvalAsync("document.getElementById('incidents-section').hidden"))!.GetValue<bool>(), what: "the open incident is listed", context: sentinel.Output);
        await Eventually.Until(async () => (await browser.EvalAsync("document.getElementById('events').textContent"))!.GetValue<string>().Contains("failing → down"), context: sentinel.Output, what:
            "the transition is in the last events");
        (await browser.EvalAsync("document.title"))!.GetValue<string>().Should().Be("(1 down) Sentinel");
        await browser.ScreenshotAsync(Path.Combine(ArtifactsDir, "status-page-down.png"));

        // A rule's own view: its definition, the last 24 hours, its last checks with what they saw.
        await browser.EvalAsync("document.querySelector('[data-open=\"bot-api\"]').click()");
        await Eventually.Until(async () => (await browser.EvalAsync("document.querySelector('#detail table.checks')?.textContent ?? ''"))!.GetValue<string>().Contains("503 Service Unavailable"),
            what: "the rule's view lists the failed checks", context: sentinel.Output);
        (await browser.EvalAsync("document.getElementById('detail').open"))!.GetValue<bool>().Should().BeTrue();
        (await browser.EvalAsync("document.getElementById('detail-body').textContent"))!.GetValue<string>()
            .Should().Contain("down after 2 failures").And.Contain("http · every 200ms").And.Contain("sentinel.yaml:");
        (await browser.EvalAsync("document.querySelectorAll('#detail .hours span').length"))!.GetValue<int>().Should().Be(24);
        await browser.ScreenshotAsync(Path.Combine(ArtifactsDir, "status-page-rule.png"));
        await browser.EvalAsync("document.querySelector('#detail .close').click()");
        (await browser.EvalAsync("document.getElementById('detail').open"))!.GetValue<bool>().Should().BeFalse();

        service.Status = 200;
        await Eventually.Until(async () => await State() == "healthy", what: "the page shows bot-api healthy again", context: sentinel.Output);
        (await browser.EvalAsync("window.__sameDocument"))!.GetValue<int>().Should().Be(42, "the page updated live, without a reload");
        var row = (await browser.EvalAsync("document.querySelector('[data-rule=\"bot-api\"]').textContent"))!.GetValue<string>();
        row.Should().Contain("24h").And.Contain("7d").And.Contain("30d").And.Contain("since");
        (await browser.EvalAsync("document.querySelectorAll('[data-rule=\"bot-api\"] svg.spark polyline').length"))!.GetValue<int>().Should().Be(1, "a response-time sparkline");

        // Readable on a phone: nothing wider than the screen.
        await browser.SendAsync("Emulation.setDeviceMetricsOverride", new { width = 390, height = 844, deviceScaleFactor = 2, mobile = true });
        await browser.EvalAsync("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))");
        (await browser.EvalAsync("document.documentElement.scrollWidth <= window.innerWidth"))!.GetValue<bool>().Should().BeTrue("no sideways scrolling on a phone");
        await browser.ScreenshotAsync(Path.Combine(ArtifactsDir, "status-page-phone.png"));

        browser.Errors.Should().BeEmpty("the page logs no console error");
        browser.Requests.Should().NotBeEmpty().And.OnlyContain(u => u.StartsWith(address, StringComparison.Ordinal), "the page loads nothing from elsewhere (no CDN)");
        File.Exists(Path.Combine(ArtifactsDir, "status-page-down.png")).Should().BeTrue();
    }

    [Fact]
    public async Task Commands_Status_History_Pause_Resume_RunNow_WorkThroughTheApi_AndStatusFallsBackToStatusJson()
    {
        await using var service = await TestServer.StartAsync();
        var config = SentinelProcess.WriteConfig(_dir, Rules(service.Url));
        int exit;
        string stdout, stderr;
        using (var sentinel = SentinelProcess.Start(_dir, new Dictionary<string, string> { ["COLUMNS"] = "200" }, "run", "--config", config))
        {
            await Eventually.Value(Address, context: sentinel.Output);
            var tokenFile = Path.Combine(_dir, "state", "api-token");
            if (!OperatingSystem.IsWindows()) File.GetUnixFileMode(tokenFile).Should().Be(UnixFileMode.UserRead | UnixFileMode.UserWrite, "only its owner may read the generated token");
            await Eventually.Until(() => StatusInFile("bot-api") == "healthy", what: "bot-api healthy", context: sentinel.Output);

            (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "status", "--config", config);
            exit.Should().Be(0);
            stdout.Should().Contain("running").And.Contain("bot-api").And.Contain("100%").And.Contain("→ 200 OK");

            (exit, stdout, stderr) = await SentinelProcess.RunAsync(_dir, "pause", "--config", config, "nightly");
            (exit, stderr).Should().Be((0, ""));
            stdout.Should().Contain("nightly: paused");
            (await SentinelProcess.RunAsync(_dir, "status", "--config", config)).Stdout.Should().MatchRegex(@"nightly\s*│\s*paused");
            (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "run-now", "--config", config, "nightly");
            exit.Should().Be(1);
            stderr.Should().Contain("paused: resume it first");
            (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "resume", "--config", config, "nightly");
            (exit, stdout.Trim()).Should().Be((0, "nightly: resumed"));
            (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "run-now", "--config", config, "nightly");
            exit.Should().Be(0);
            stdout.Should().StartWith("nightly: healthy in ").And.Contain("200 OK");
            (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "pause", "--config", config, "nightlly");
            exit.Should().Be(1);
            stderr.Should().Contain("did you mean 'nightly'");

            service.Status = 503;
            await Eventually.Until(() => StatusInFile("bot-api") == "down", what: "bot-api down", context: sentinel.Output);
            (await SentinelProcess.RunAsync(_dir, "status", "--config", config)).Exit.Should().Be(1, "status exits 1 while a rule is down");
            (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "history", "--config", config, "bot-api", "-n", "5");
            exit.Should().Be(0);
            stdout.Should().Contain("503").And.Contain("down").And.Contain("checks in the last 1d");
            (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "history", "--config", config, "bot-api", "--hourly");
            exit.Should().Be(0);
            stdout.Should().Contain(":00").And.Contain("Uptime");

            // An open page (its event stream) must not hold up a shutdown (Kestrel would wait 30 s for it).
            using var http = new HttpClient();
            using var request = new HttpRequestMessage(HttpMethod.Get, Address() + "/api/events");
            request.Headers.Accept.ParseAdd("text/event-stream");
            using var stream = await http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead);
            stream.Content.Headers.ContentType!.MediaType.Should().Be("text/event-stream");
            var stopping = Stopwatch.StartNew();
            sentinel.Signal("TERM");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(20))).Should().Be(0);
            stopping.Elapsed.Should().BeLessThan(TimeSpan.FromSeconds(10));
        }

        // Sentinel is down: status reads what it last wrote, history reads the database.
        (exit, stdout, _) = await SentinelProcess.RunAsync(_dir, "status", "--config", config);
        exit.Should().Be(1, "the engine is not running");
        stdout.Should().Contain("Sentinel is not answering").And.Contain("status.json").And.Contain("bot-api");
        (exit, stdout, stderr) = await SentinelProcess.RunAsync(_dir, "history", "--config", config, "bot-api", "-n", "3");
        exit.Should().Be(0);
        stderr.Should().Contain("reading").And.Contain("history.db");
        stdout.Should().Contain("503");
        (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "pause", "--config", config, "nightly");
        exit.Should().Be(1);
        stderr.Should().Contain("did not answer");
    }

    [Fact]
    public async Task APauseThroughTheApi_OutlivesARestart_WhileAPausedAddedToTheConfigStillApplies()
    {
        await using var service = await TestServer.StartAsync();
        var config = SentinelProcess.WriteConfig(_dir, Rules(service.Url));
        // Runs Sentinel until it answers (and has checked bot-api), does what is asked, stops it; answers nightly's state.
        async Task<string> Run(string? pause = null)
        {
            if (File.Exists(StatusFile)) File.Delete(StatusFile);
            using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
            await Eventually.Until(() => StatusInFile("bot-api") == "healthy" && Address() is not null, what: "bot-api checked, the API listening", context: sentinel.Output);
            var (_, json, _) = await SentinelProcess.RunAsync(_dir, "status", "--json", "--config", config);
            if (pause is not null) (await SentinelProcess.RunAsync(_dir, "pause", "--config", config, pause)).Exit.Should().Be(0);
            sentinel.Signal("TERM");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(20))).Should().Be(0);
            return System.Text.Json.JsonDocument.Parse(json).RootElement.GetProperty("rules").EnumerateArray()
                .Single(r => r.GetProperty("name").GetString() == "nightly").GetProperty("status").GetString()!;
        }

        (await Run(pause: "nightly")).Should().Be("pending");
        (await Run()).Should().Be("paused", "the API's pause is kept across a restart (the config's paused: false did not change)");
        (await Run()).Should().Be("paused", "and the next");

        // The config changes while Sentinel is stopped: paused: true, then back to false. Each change applies.
        File.WriteAllText(config, File.ReadAllText(config).Replace("cron: \"0 0 1 1 *\"", "cron: \"0 0 1 1 *\"\n    paused: true"));
        (await Run()).Should().Be("paused");
        File.WriteAllText(config, File.ReadAllText(config).Replace("\n    paused: true", ""));
        (await Run()).Should().Be("pending", "removing paused: true from the config resumes it");
    }

    [Fact]
    public async Task Run_StoppedBySigtermWhileStillStarting_ExitsCleanly_WithItsStateFlushed()
    {
        // The signal lands while the host still starts (the engine runs, the listener binds): a clean stop (exit 0),
        // as an init system expects of a service stopped during its start-up, not a fatal error (it was exit 1).
        var config = SentinelProcess.WriteConfig(_dir, """
            rules:
              - { name: quick, every: 1h, probe: { type: process, with: { pidfile: /nonexistent.pid } } }
            """);
        for (var attempt = 0; attempt < 3; attempt++)
        {
            using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
            await Eventually.Until(() => sentinel.Stdout.Contains("Configuration applied"), context: sentinel.Output);
            sentinel.Signal("TERM");
            await sentinel.ExpectExitAsync(0, TimeSpan.FromSeconds(30));
            sentinel.Stdout.Should().NotContain("fatal error");
        }
        File.Exists(Path.Combine(_dir, "state", "sentinel.db")).Should().BeTrue();
    }

    [Fact]
    public async Task Run_ListeningBeyondLoopbackWithoutAToken_IsRefusedAtStart()
    {
        var config = SentinelProcess.WriteConfig(_dir, "rules: []");
        File.WriteAllText(config, File.ReadAllText(config).Replace("listen: \"127.0.0.1:0\"", "listen: \"0.0.0.0:0\""));
        var (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "run", "--config", config);
        exit.Should().Be(2);
        stderr.Should().Contain("engine.http.listen is 0.0.0.0:0").And.Contain("no API token").And.Contain("engine.http.token");
        File.Exists(StatusFile).Should().BeFalse("it never started");
        (exit, _, stderr) = await SentinelProcess.RunAsync(_dir, "validate", "--config", config);
        exit.Should().Be(2, "validate reports what run would refuse");
        stderr.Should().Contain("valid, but `sentinel run` would refuse it").And.Contain("no API token");
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
