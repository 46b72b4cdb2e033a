using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Sentinel.Host.Tests;

namespace Sentinel.Fault.Tests;

/// <summary>
/// `sentinel run` with its state and logs on a small tmpfs that the test fills up: the full disk is a health failure
/// and an alert, the outage that starts meanwhile is alerted, and nothing is lost once space returns.
/// </summary>
public sealed partial class DiskFullTests : IAsyncDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-diskfull", Guid.NewGuid().ToString("N")[..12]);
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public DiskFullTests() => Directory.CreateDirectory(_dir);

    private string Config(string disk, TestTarget target) => WriteConfig($$"""
        engine:
          http: { listen: "127.0.0.1:0" }
          plugins: "{{Path.Combine(SentinelProcess.RepoRoot, "plugins")}}"
          state: "{{disk}}/state"
          log: { directory: "{{disk}}/logs" }
          state-flush-interval: 100ms
        """ + "\n" + target.RuleAndChannels("ops"));

    private string WriteConfig(string text)
    {
        var path = Path.Combine(_dir, "sentinel.yaml");
        File.WriteAllText(path, text);
        return path;
    }

    private static IEnumerable<JsonElement> Items(IEnumerable<string> bodies)
        => bodies.SelectMany(b => JsonDocument.Parse(b).RootElement.GetProperty("items").EnumerateArray().ToList());

    private static string Page(SentinelProcess sentinel) => StatusPage().Match(sentinel.Stdout) is { Success: true } m ? m.Groups[1].Value : "";

    private async Task<(HttpStatusCode Code, string Body)> Health(SentinelProcess sentinel)
    {
        using var r = await _http.GetAsync(Page(sentinel) + "health");
        return (r.StatusCode, await r.Content.ReadAsStringAsync());
    }

    [TmpfsFact]
    public async Task AFullStateDisk_IsA503AndAnAlert_TheOutageMeanwhileIsAlerted_AndNothingIsLost()
    {
        using var disk = Tmpfs.Mount("8m");
        await using var target = await TestTarget.StartAsync();
        var config = Config(disk.Path, target);
        var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
        try
        {
            await Eventually.Until(() => Page(sentinel).Length > 0 && File.Exists(Path.Combine(disk.Path, "state", "status.json")), context: sentinel.Output);
            await Eventually.Until(async () => (await Health(sentinel)).Code == HttpStatusCode.OK, context: sentinel.Output);

            var filler = disk.Fill();
            target.Status = 503;
            await Eventually.Until(async () => await Health(sentinel) is { Code: HttpStatusCode.ServiceUnavailable } h && h.Body.Contains("not writable: disk full"),
                TimeSpan.FromSeconds(30), context: sentinel.Output);
            // Both reach the channel while nothing can be written: Sentinel's own trouble, and the outage it watches.
            await Eventually.Until(() => Items(target.Of("ops")).Any(i => i.GetProperty("rule").GetString() == "(sentinel)" && i.GetProperty("kind").GetString() == "down")
                && Items(target.Of("ops")).Any(i => i.GetProperty("rule").GetString() == "api" && i.GetProperty("kind").GetString() == "down"),
                TimeSpan.FromSeconds(30), context: () => sentinel.Output() + "\nreceived:\n" + string.Join("\n", target.Of("ops")));
            Items(target.Of("ops")).First(i => i.GetProperty("rule").GetString() == "(sentinel)").GetProperty("description").GetString()
                .Should().Contain("not writable: disk full");

            File.Delete(filler);
            await Eventually.Until(async () => (await Health(sentinel)).Code == HttpStatusCode.OK, TimeSpan.FromSeconds(30), context: sentinel.Output);
            await Eventually.Until(() => Items(target.Of("ops")).Any(i => i.GetProperty("rule").GetString() == "(sentinel)" && i.GetProperty("kind").GetString() == "resolved"),
                TimeSpan.FromSeconds(30), context: sentinel.Output);
            sentinel.Signal("TERM");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(0, sentinel.Output());
            sentinel.Stdout.Should().NotContain("   at ", "a full disk is one clear line per writer, not a stack trace a second");
            Regex.Matches(sentinel.Stdout, "Cannot write the state: disk full").Count.Should().Be(1, sentinel.Output());
        }
        finally { sentinel.Dispose(); }

        // What happened while the disk was full was written once it was not: the next Sentinel knows the outage was
        // told (no second DOWN), and tells its end.
        var downs = Items(target.Of("ops")).Count(i => i.GetProperty("rule").GetString() == "api" && i.GetProperty("kind").GetString() == "down");
        using var second = SentinelProcess.Start(_dir, null, "run", "--config", config);
        await Eventually.Until(() => second.Stdout.Contains("Sentinel 0") && second.Stdout.Contains("started"), context: second.Output);
        target.Status = 200;
        await Eventually.Until(() => Items(target.Of("ops")).Any(i => i.GetProperty("rule").GetString() == "api" && i.GetProperty("kind").GetString() == "resolved"),
            TimeSpan.FromSeconds(30), context: () => second.Output() + "\nreceived:\n" + string.Join("\n", target.Of("ops")));
        Items(target.Of("ops")).Count(i => i.GetProperty("rule").GetString() == "api" && i.GetProperty("kind").GetString() == "down")
            .Should().Be(downs, "the incident opened on the full disk was written later: it is not opened and told again");
        second.Stdout.Should().NotContain("stopped between writing its state and its incident");
    }

    [GeneratedRegex(@"Status page: (http://127\.0\.0\.1:\d+/)")]
    private static partial Regex StatusPage();

    public ValueTask DisposeAsync()
    {
        _http.Dispose();
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
        return ValueTask.CompletedTask;
    }
}
