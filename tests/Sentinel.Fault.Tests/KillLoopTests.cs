using System.Text.Json;
using Microsoft.Data.Sqlite;
using Sentinel.Host.Tests;
using Xunit.Abstractions;

namespace Sentinel.Fault.Tests;

/// <summary>
/// `sentinel run` killed with SIGKILL at random moments, again and again, while the service it watches goes down
/// and up and its channels are slow (one answers after up to 1.2 s) or failing (one refuses every third message).
/// What the receiving servers logged must show: every incident told on every channel, every DOWN paired with a
/// RESOLVED, and no more duplicates than kills (only a message in flight may arrive twice).
/// </summary>
public sealed class KillLoopTests(ITestOutputHelper output) : IDisposable
{
    private const int Kills = 20;
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "sentinel-killloop", Guid.NewGuid().ToString("N")[..12]);

    private string Config(TestTarget target)
    {
        Directory.CreateDirectory(_dir);
        return SentinelProcess.WriteConfig(_dir, target.RuleAndChannels("slow", "flaky"));
    }

    private sealed record Delivery(string Channel, long Incident, string Kind);

    [Fact]
    public async Task KilledTwentyTimes_EveryIncidentIsTold_EveryDownIsResolved_AndDuplicatesAreAtMostTheKills()
    {
        var random = new Random(20261201); // fixed: a failure can be run again
        await using var target = await TestTarget.StartAsync();
        var delays = new Random(7);
        target.Behaviour = (hook, n) => hook == "slow"
            ? (TimeSpan.FromMilliseconds(delays.Next(300, 1200)), false)
            : (TimeSpan.FromMilliseconds(50), n % 3 == 0);
        var config = Config(target);

        for (var kill = 0; kill < Kills; kill++)
        {
            using var sentinel = SentinelProcess.Start(_dir, null, "run", "--config", config);
            await Eventually.Until(() => sentinel.Stdout.Contains(" started: 1 rules"), context: sentinel.Output);
            // The service flips once or twice while this Sentinel runs; the kill lands anywhere: mid-check, mid-send,
            // between a state write and its incident.
            var life = TimeSpan.FromMilliseconds(random.Next(200, 2200));
            var flip = TimeSpan.FromMilliseconds(random.Next(0, (int)life.TotalMilliseconds));
            await Task.Delay(flip);
            target.Status = target.Status == 200 ? 503 : 200;
            if (random.Next(2) == 0) { await Task.Delay(TimeSpan.FromMilliseconds(random.Next(0, 400))); target.Status = target.Status == 200 ? 503 : 200; }
            await Task.Delay(life - flip);
            sentinel.Signal("KILL");
            (await sentinel.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(137, "killed by SIGKILL");
        }

        // The service recovers; the last Sentinel runs until everything it owes is sent.
        target.Status = 200;
        using (var last = SentinelProcess.Start(_dir, null, "run", "--config", config))
        {
            await Eventually.Until(() => Settled(), TimeSpan.FromSeconds(90), context: () => last.Output() + Received(target));
            last.Signal("TERM");
            (await last.WaitForExitAsync(TimeSpan.FromSeconds(30))).Should().Be(0, last.Output());
        }

        var incidents = Incidents();
        var delivered = new[] { "slow", "flaky" }.SelectMany(c => target.Of(c).SelectMany(body => JsonDocument.Parse(body).RootElement.GetProperty("items").EnumerateArray()
            .Select(i => new Delivery(c, i.GetProperty("incident").GetInt64(), i.GetProperty("kind").GetString()!)))).ToList();
        output.WriteLine($"{Kills} kills, {incidents.Count} incidents, {delivered.Count} deliveries");
        incidents.Count.Should().BeGreaterThan(3, "the service went down and up several times");
        foreach (var channel in new[] { "slow", "flaky" })
            foreach (var incident in incidents)
            {
                var kinds = delivered.Where(d => d.Channel == channel && d.Incident == incident).Select(d => d.Kind).ToList();
                kinds.Should().Contain(k => k == "down" || k == "briefly-down", $"incident #{incident} is told on {channel}{Received(target)}");
                // BRIEFLY DOWN says both: it was down, and is resolved.
                if (kinds.Contains("down")) kinds.Should().Contain(k => k == "resolved" || k == "briefly-down", $"incident #{incident}'s DOWN on {channel} is paired with a RESOLVED{Received(target)}");
            }
        // A request (one message: a batch of items) that brought nothing new is a duplicate; one at most per kill, the
        // request that was in flight (Sentinel sends one at a time).
        var seen = new HashSet<Delivery>();
        var duplicates = new[] { "slow", "flaky" }.SelectMany(c => target.Of(c).Select(body => (c, body)))
            .Count(r => !JsonDocument.Parse(r.body).RootElement.GetProperty("items").EnumerateArray()
                .Select(i => seen.Add(new Delivery(r.c, i.GetProperty("incident").GetInt64(), i.GetProperty("kind").GetString()!))).ToList().Contains(true));
        output.WriteLine($"duplicates: {duplicates} messages");
        duplicates.Should().BeLessThanOrEqualTo(Kills, "only the message in flight at a kill may arrive twice");
    }

    private static string Received(TestTarget target) => "\nreceived:\n" + string.Join("\n", new[] { "slow", "flaky" }.SelectMany(c => target.Of(c).Select(b =>
        c + ": " + string.Join(", ", JsonDocument.Parse(b).RootElement.GetProperty("items").EnumerateArray().Select(i => $"#{i.GetProperty("incident")} {i.GetProperty("kind")}")))));

    // Nothing pending, no incident open, the rule healthy: what status.json says.
    private bool Settled()
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(_dir, "state", "status.json")));
            var n = doc.RootElement.GetProperty("notifications");
            return n.GetProperty("pending").GetInt64() == 0 && n.GetProperty("openIncidents").GetArrayLength() == 0
                && doc.RootElement.GetProperty("rules")[0].GetProperty("status").GetString() == "healthy";
        }
        catch (Exception e) when (e is IOException or JsonException or KeyNotFoundException or InvalidOperationException or IndexOutOfRangeException) { return false; }
    }

    private List<long> Incidents()
    {
        using var db = new SqliteConnection($"Data Source={Path.Combine(_dir, "state", "sentinel.db")};Mode=ReadOnly;Pooling=False");
        db.Open();
        using var cmd = db.CreateCommand();
        cmd.CommandText = "SELECT id FROM incidents ORDER BY id";
        using var r = cmd.ExecuteReader();
        var ids = new List<long>();
        while (r.Read()) ids.Add(r.GetInt64(0));
        return ids;
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }
}
