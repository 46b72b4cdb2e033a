using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.History;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.History;

public sealed class CheckChunkTests
{
    // History written before ProbeStatus put Unhealthy first (0.1: Healthy = 0) reads the same, and is written the
    // same: the stored codes do not follow the enum's order. The bytes are what 0.1 wrote for these three checks.
    [Fact]
    public void StoredStatusCodes_AreFixed_WhateverTheEnumsOrder()
    {
        const string WrittenBy01 = "AAS4F6CcASWgHwRzbG93AC6IJwdyZWZ1c2Vk";
        var start = DateTimeOffset.Parse("2026-11-20T10:00:00Z");
        var chunk = new CheckChunk(start.ToUnixTimeMilliseconds());
        chunk.Append(new CheckPoint(start, ProbeStatus.Healthy, RuleStatus.Healthy, TimeSpan.FromMilliseconds(3)));
        chunk.Append(new CheckPoint(start.AddSeconds(10), ProbeStatus.Degraded, RuleStatus.Healthy, TimeSpan.FromMilliseconds(4), "slow"));
        chunk.Append(new CheckPoint(start.AddSeconds(20), ProbeStatus.Unhealthy, RuleStatus.Down, TimeSpan.FromMilliseconds(5), "refused"));

        Convert.ToBase64String(chunk.ToArray()).Should().Be(WrittenBy01);
        CheckChunk.Decode(chunk.StartMs, Convert.FromBase64String(WrittenBy01)).Select(p => (p.Status, p.Description)).Should()
            .Equal((ProbeStatus.Healthy, null), (ProbeStatus.Degraded, "slow"), (ProbeStatus.Unhealthy, "refused"));
    }

    [Fact]
    public void Decode_ReturnsEveryCheckAsAppended_ThroughJitterAndPauses()
    {
        var start = DateTimeOffset.Parse("2026-11-20T10:00:00Z");
        var offsets = new long[] { 0, 60_000, 120_003, 179_990, 240_000, 240_000, 900_000, 900_001 };
        var chunk = new CheckChunk(start.ToUnixTimeMilliseconds());
        var points = offsets.Select((o, i) => new CheckPoint(start.AddMilliseconds(o), (ProbeStatus)(i % 3), (RuleStatus)(i % 5),
            TimeSpan.FromTicks(12_340 * (i + 1)), $"d{i % 3}", Stuck: i == 7)).ToList();
        foreach (var p in points) chunk.Append(p);

        var decoded = CheckChunk.Decode(chunk.StartMs, chunk.ToArray());

        decoded.Select(p => p.At).Should().Equal(points.Select(p => p.At));
        decoded.Select(p => p.Status).Should().Equal(points.Select(p => p.Status));
        decoded.Select(p => p.State).Should().Equal(points.Select(p => p.State));
        decoded.Select(p => p.Duration).Should().Equal(points.Select(p => TimeSpan.FromTicks(p.Duration.Ticks / 10 * 10)));
        decoded.Select(p => p.Stuck).Should().Equal(points.Select(p => p.Stuck));
        chunk.Count.Should().Be(8);
    }

    [Fact]
    public void Descriptions_AreKeptForFailuresAndChanges_NotForEveryHealthyCheck()
    {
        var t = DateTimeOffset.Parse("2026-11-20T10:00:00Z");
        var chunk = new CheckChunk(t.ToUnixTimeMilliseconds());
        string?[] said = ["200 OK in 5ms", "200 OK in 6ms", "503 Service Unavailable", "503 Service Unavailable", "timed out", "200 OK in 4ms", "200 OK in 7ms"];
        ProbeStatus[] status = [ProbeStatus.Healthy, ProbeStatus.Healthy, ProbeStatus.Unhealthy, ProbeStatus.Unhealthy, ProbeStatus.Unhealthy, ProbeStatus.Healthy, ProbeStatus.Healthy];
        for (var i = 0; i < said.Length; i++) chunk.Append(new CheckPoint(t.AddSeconds(i * 10), status[i], RuleStatus.Healthy, TimeSpan.FromMilliseconds(5), said[i]));

        CheckChunk.Decode(chunk.StartMs, chunk.ToArray()).Select(p => p.Description).Should()
            .Equal("200 OK in 5ms", null, "503 Service Unavailable", "503 Service Unavailable", "timed out", "200 OK in 4ms", null);
    }

    [Fact]
    public void RegularChecks_CostAboutFiveBytesEach()
    {
        var t = DateTimeOffset.Parse("2026-11-20T10:00:00Z");
        var chunk = new CheckChunk(t.ToUnixTimeMilliseconds());
        for (var i = 0; i < 60; i++)
            chunk.Append(new CheckPoint(t.AddMinutes(i).AddMilliseconds(i % 7), ProbeStatus.Healthy, RuleStatus.Healthy, TimeSpan.FromMilliseconds(20 + i % 30), "pid 42 up"));
        chunk.ToArray().Length.Should().BeLessThan(60 * 6);
    }

    [Fact]
    public void Decode_OfATornTail_KeepsTheWholeChecksBeforeIt()
    {
        var t = DateTimeOffset.Parse("2026-11-20T10:00:00Z");
        var chunk = new CheckChunk(t.ToUnixTimeMilliseconds());
        for (var i = 0; i < 3; i++) chunk.Append(new CheckPoint(t.AddSeconds(i), ProbeStatus.Unhealthy, RuleStatus.Down, TimeSpan.FromMilliseconds(1), "a long description of the failure"));
        var bytes = chunk.ToArray();
        CheckChunk.Decode(chunk.StartMs, bytes[..^2]).Should().HaveCount(2);
    }
}

/// <summary>
/// What the history does, whichever store keeps it: the SQLite file of one box and the PostgreSQL database of a
/// cluster run this same suite (one subclass each).
/// </summary>
public abstract class HistoryRecorderContract
{
    private protected readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-20T12:00:00Z"));

    /// <summary>The store, over the same database each time (as the node <paramref name="node"/>, in a cluster).</summary>
    private protected abstract IHistoryStore OpenStore(string node = "a");

    private protected (IHistoryStore Store, HistoryRecorder Recorder) Open(TimeSpan? retention = null, TimeSpan? downsampled = null, string node = "a")
    {
        var store = OpenStore(node);
        var settings = new HistorySettings(true, retention ?? TimeSpan.FromDays(30), downsampled ?? TimeSpan.FromDays(400), TimeSpan.FromSeconds(5));
        return (store, new HistoryRecorder(store, settings, _time, NullLogger.Instance));
    }

    private protected void Check(HistoryRecorder r, string rule, bool ok, RuleStatus state, int ms = 10)
        => r.Record(rule, new CheckRecord(ok ? ProbeStatus.Healthy : ProbeStatus.Unhealthy, ok ? "ok" : "refused", _time.GetUtcNow(), TimeSpan.FromMilliseconds(ms)), state);

    [Fact]
    public async Task Uptime_IsTheShareOfChecksNotDown_OverDayWeekAndMonth()
    {
        var (store, recorder) = Open();
        await using (store)
        await using (recorder)
        {
            // 20 days ago: 10 checks, all down. 3 days ago: 10 checks, 5 down. Now: 10 checks, 1 down (a failure before
            // the threshold does not count as downtime).
            for (var i = 0; i < 10; i++) { Check(recorder, "api", false, RuleStatus.Down); _time.Advance(TimeSpan.FromMinutes(1)); }
            _time.Advance(TimeSpan.FromDays(17) - TimeSpan.FromMinutes(10));
            for (var i = 0; i < 10; i++) { Check(recorder, "api", i % 2 == 0, i % 2 == 0 ? RuleStatus.Healthy : RuleStatus.Down); _time.Advance(TimeSpan.FromMinutes(1)); }
            _time.Advance(TimeSpan.FromDays(3) - TimeSpan.FromMinutes(10));
            for (var i = 0; i < 10; i++) { Check(recorder, "api", i < 8, i == 9 ? RuleStatus.Down : i == 8 ? RuleStatus.Failing : RuleStatus.Healthy); _time.Advance(TimeSpan.FromSeconds(10)); }

            var uptime = recorder.Uptime("api");
            uptime.Day.Should().BeApproximately(0.9, 1e-9);
            uptime.Week.Should().BeApproximately(14.0 / 20, 1e-9);
            uptime.Month.Should().BeApproximately(14.0 / 30, 1e-9);
            recorder.Uptime("never-checked").Should().Be(new UptimeView(null, null, null));
        }
    }

    [Fact]
    public async Task Uptime_AskedAgainAndAgain_FollowsEveryNewCheck_TheHourTurning_AndAPastHourChanging()
    {
        // Uptime keeps the sums of past hours between calls: each answer must still be what a fresh count gives.
        var (store, recorder) = Open();
        await using (store)
        await using (recorder)
        {
            Check(recorder, "api", false, RuleStatus.Down);
            recorder.Uptime("api").Day.Should().Be(0);
            _time.Advance(TimeSpan.FromMinutes(1));
            Check(recorder, "api", true, RuleStatus.Healthy);
            recorder.Uptime("api").Day.Should().BeApproximately(0.5, 1e-9, "a check in the current hour counts at once");
            _time.Advance(TimeSpan.FromHours(2));
            Check(recorder, "api", true, RuleStatus.Healthy);
            Check(recorder, "api", true, RuleStatus.Healthy);
            recorder.Uptime("api").Day.Should().BeApproximately(0.75, 1e-9, "the hour turned: the past hours are summed again");
            // A check stamped an hour ago (a clock step back, a late record) changes a past hour.
            recorder.Record("api", new CheckRecord(ProbeStatus.Unhealthy, "refused", _time.GetUtcNow() - TimeSpan.FromHours(1), TimeSpan.Zero), RuleStatus.Down);
            recorder.Uptime("api").Day.Should().BeApproximately(0.6, 1e-9);
            _time.Advance(TimeSpan.FromDays(1));
            recorder.Uptime("api").Day.Should().BeNull("a day later none of them is within the day");
            recorder.Uptime("api").Week.Should().BeApproximately(0.6, 1e-9);
        }
    }

    [Fact]
    public async Task AMonthOfWrittenHours_LeavesMemory_AndUptimeAndTheHourlyHistory_StillCountEveryCheck()
    {
        // 35 days of a check an hour (every seventh down), written every 6 hours as the flush loop would: once written,
        // past hours leave memory but for what uptime needs of them (30 days of whole counts were 65 KB a rule), and
        // uptime and the hourly history still answer as a count of every check does.
        var (store, recorder) = Open(retention: TimeSpan.FromDays(40));
        var made = new List<(long Hour, bool Down)>();
        long HourOf(DateTimeOffset t) => t.ToUnixTimeMilliseconds() / 3_600_000;
        UptimeView Expected()
        {
            var now = HourOf(_time.GetUtcNow());
            double? Share(int hours)
            {
                var within = made.Where(c => now - c.Hour < hours).ToList();
                return within.Count == 0 ? null : (double)within.Count(c => !c.Down) / within.Count;
            }
            return new UptimeView(Share(24), Share(7 * 24), Share(30 * 24));
        }
        await using (store)
        await using (recorder)
        {
            for (var i = 0; i < 35 * 24; i++)
            {
                var down = i % 7 == 0;
                Check(recorder, "api", !down, down ? RuleStatus.Down : RuleStatus.Healthy);
                made.Add((HourOf(_time.GetUtcNow()), down));
                if (i % 6 == 5) await recorder.FlushAsync();
                if (i % 31 == 0) recorder.Uptime("api").Should().Be(Expected(), $"after {i + 1} checks");
                _time.Advance(TimeSpan.FromHours(1));
            }
            await recorder.FlushAsync();
            recorder.HoursHeld("api").Should().BeLessThanOrEqualTo(2, "the hours written and past are in the store");
            recorder.Uptime("api").Should().Be(Expected());

            // A check stamped three hours back (a clock set back) is still counted: in the oldest hour still held.
            recorder.Record("api", new CheckRecord(ProbeStatus.Unhealthy, "refused", _time.GetUtcNow() - TimeSpan.FromHours(3), TimeSpan.Zero), RuleStatus.Down);
            made.Add((HourOf(_time.GetUtcNow()) - 1, true));
            recorder.Uptime("api").Should().Be(Expected());
            await recorder.FlushAsync();
            var hours = await recorder.HourlyAsync("api", _time.GetUtcNow() - TimeSpan.FromDays(36), _time.GetUtcNow(), CancellationToken.None);
            hours.Select(h => (HourOf(h.Hour), h.Checks, h.Down)).Should().Equal(made.GroupBy(c => c.Hour).Select(g => (g.Key, (long)g.Count(), (long)g.Count(c => c.Down))));
        }
    }

    [Fact]
    public async Task Flushed_History_IsReadBack_ByANewRecorder_WithUptimeAndRecentChecks()
    {
        var (store, recorder) = Open();
        await using (store)
        {
            await using (recorder)
            {
                for (var i = 0; i < 70; i++) { Check(recorder, "bot", i % 10 != 0, i % 10 == 0 ? RuleStatus.Down : RuleStatus.Healthy, ms: i); _time.Advance(TimeSpan.FromSeconds(30)); }
                await recorder.FlushAsync();
            }
        }
        var (store2, recorder2) = Open();
        await using (store2)
        await using (recorder2)
        {
            await recorder2.LoadAsync(CancellationToken.None);
            recorder2.Uptime("bot").Day.Should().BeApproximately(63.0 / 70, 1e-9);
            // The sparkline: the last 60 of the 70 checks (the ring wrapped), the unhealthy ones (every tenth) marked.
            var recent = recorder2.Recent("bot");
            recent.Ms.Should().Equal(Enumerable.Range(10, HistoryRecorder.RecentSize).Select(i => (double)i));
            recent.Failed.Should().Equal([0, 10, 20, 30, 40, 50], "checks 10, 20, ... 60 failed");
            recorder2.Recent("bot", 11).Should().BeEquivalentTo(new { Ms = Enumerable.Range(59, 11).Select(i => (double)i), Failed = new[] { 1 } }, "the last 11: check 60 failed");
            recorder2.Recent("bot", 5).Failed.Should().BeEmpty();
            recorder2.Recent("nobody").Ms.Should().BeEmpty();
            var all = await recorder2.ChecksAsync("bot", _time.GetUtcNow() - TimeSpan.FromHours(2), _time.GetUtcNow(), 1000, CancellationToken.None);
            all.Should().HaveCount(70);
            all.Count(c => c.State == RuleStatus.Down).Should().Be(7);
            all.Where(c => c.Status == ProbeStatus.Unhealthy).Should().OnlyContain(c => c.Description == "refused");
        }
    }

    [Fact]
    public async Task Checks_NotYetWritten_AreReturnedWithTheStoredOnes_InOrder_AndLimitedToTheNewest()
    {
        var (store, recorder) = Open();
        await using (store)
        await using (recorder)
        {
            for (var i = 0; i < 30; i++) { Check(recorder, "w", true, RuleStatus.Healthy, ms: i); _time.Advance(TimeSpan.FromMinutes(5)); }
            await recorder.FlushAsync();
            for (var i = 30; i < 40; i++) { Check(recorder, "w", true, RuleStatus.Healthy, ms: i); _time.Advance(TimeSpan.FromMinutes(5)); }

            var all = await recorder.ChecksAsync("w", _time.GetUtcNow() - TimeSpan.FromDays(1), _time.GetUtcNow(), 1000, CancellationToken.None);
            all.Select(c => (int)c.Duration.TotalMilliseconds).Should().Equal(Enumerable.Range(0, 40));
            var newest = await recorder.ChecksAsync("w", _time.GetUtcNow() - TimeSpan.FromDays(1), _time.GetUtcNow(), 15, CancellationToken.None);
            newest.Select(c => (int)c.Duration.TotalMilliseconds).Should().Equal(Enumerable.Range(25, 15));
            var hours = await recorder.HourlyAsync("w", _time.GetUtcNow() - TimeSpan.FromDays(1), _time.GetUtcNow(), CancellationToken.None);
            hours.Sum(h => h.Checks).Should().Be(40);
            hours.Should().OnlyContain(h => h.Hour.Minute == 0 && h.Down == 0);
            hours.Max(h => h.DurationMax).Should().Be(TimeSpan.FromMilliseconds(39));
        }
    }

    [Fact]
    public async Task Prune_DeletesChecksPastTheRetention_AndKeepsTheirHourlyCounts_UntilTheDownsampledRetention()
    {
        var (store, recorder) = Open(TimeSpan.FromDays(2), TimeSpan.FromDays(10));
        await using (store)
        await using (recorder)
        {
            var firstDay = _time.GetUtcNow();
            for (var day = 0; day < 12; day++)
            {
                for (var i = 0; i < 6; i++) { Check(recorder, "db", i != 0, i == 0 ? RuleStatus.Down : RuleStatus.Healthy); _time.Advance(TimeSpan.FromMinutes(10)); }
                _time.Advance(TimeSpan.FromDays(1) - TimeSpan.FromHours(1));
            }
            await recorder.FlushAsync();
            await recorder.PruneAsync();

            var now = _time.GetUtcNow();
            var checks = await store.ChecksAsync("db", firstDay, now, 10_000, CancellationToken.None);
            checks.Should().HaveCount(12).And.OnlyContain(c => c.At >= now - TimeSpan.FromDays(2) - TimeSpan.FromHours(1));
            var hours = await store.HourlyAsync("db", firstDay, now, CancellationToken.None);
            hours.Should().HaveCount(10, "the hourly counts of the last 10 days stay after their checks are gone");
            hours.Summed().Should().OnlyContain(h => h.Checks == 6 && h.Down == 1 && h.Failures == 1);
        }
    }

}

public sealed class SqliteHistoryRecorderTests : HistoryRecorderContract, IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private protected override IHistoryStore OpenStore(string node = "a") => SqliteHistoryStore.Open(Path.Combine(_dir.Path, "history.db"), NullLogger.Instance);

    [Fact]
    public async Task ReadOnly_Store_ReadsWhatTheEngineWrote()
    {
        var (store, recorder) = Open();
        await using (store)
        await using (recorder)
        {
            for (var i = 0; i < 5; i++) { Check(recorder, "r", false, RuleStatus.Down); _time.Advance(TimeSpan.FromMinutes(1)); }
            await recorder.FlushAsync();
            await using var reader = SqliteHistoryStore.OpenReadOnly(store.Where);
            (await reader.ChecksAsync("r", _time.GetUtcNow() - TimeSpan.FromHours(1), _time.GetUtcNow(), 100, CancellationToken.None)).Should().HaveCount(5);
        }
    }
}

/// <summary>The same suite over a real PostgreSQL database; and what two nodes over it see.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresHistoryRecorderTests(PostgresFixture postgres) : HistoryRecorderContract, IAsyncLifetime
{
    private string _database = "";

    public async Task InitializeAsync()
    {
        _database = await postgres.Server.CreateDatabaseAsync();
        await (await Sentinel.Engine.State.PostgresStateStore.OpenAsync(_database, default)).DisposeAsync(); // the schema
    }

    public Task DisposeAsync() => Task.CompletedTask;

    private protected override IHistoryStore OpenStore(string node = "a") => PostgresHistoryStore.Open(_database, node);

    [Fact]
    public async Task ARuleThatMovedBetweenNodes_HasOneHistory_AndOneUptime_OnEitherNode()
    {
        var (storeA, a) = Open(node: "a");
        var (storeB, b) = Open(node: "b");
        await using (storeA)
        await using (storeB)
        await using (a)
        await using (b)
        {
            // Node a checks the rule for 20 minutes (4 down of 20), dies mid-hour; node b takes it over (10 checks, all healthy).
            var start = _time.GetUtcNow();
            for (var i = 0; i < 20; i++) { Check(a, "api", i >= 4, i < 4 ? RuleStatus.Down : RuleStatus.Healthy, ms: i); _time.Advance(TimeSpan.FromMinutes(1)); }
            await a.FlushAsync();
            for (var i = 20; i < 30; i++) { Check(b, "api", true, RuleStatus.Healthy, ms: i); _time.Advance(TimeSpan.FromMinutes(1)); }
            await b.FlushAsync();
            await a.RefreshOthersAsync(CancellationToken.None);
            await b.RefreshOthersAsync(CancellationToken.None);

            a.Uptime("api").Day.Should().BeApproximately(26.0 / 30, 1e-9, "node a counts b's checks too");
            b.Uptime("api").Day.Should().BeApproximately(26.0 / 30, 1e-9, "node b counts the checks a made before it died");
            var hours = await b.HourlyAsync("api", start, _time.GetUtcNow(), CancellationToken.None);
            hours.Sum(h => h.Checks).Should().Be(30);
            hours.Sum(h => h.Down).Should().Be(4);
            var checks = await b.ChecksAsync("api", start, _time.GetUtcNow(), 1000, CancellationToken.None);
            checks.Select(c => (int)c.Duration.TotalMilliseconds).Should().Equal(Enumerable.Range(0, 30), "both nodes' checks, in time order");
            (await a.ChecksAsync("api", start, _time.GetUtcNow(), 5, CancellationToken.None)).Select(c => (int)c.Duration.TotalMilliseconds)
                .Should().Equal(Enumerable.Range(25, 5), "the newest, wherever they were made");

            // Node b goes on counting: a's next read of the others follows it.
            for (var i = 30; i < 40; i++) { Check(b, "api", false, RuleStatus.Down, ms: i); _time.Advance(TimeSpan.FromSeconds(10)); }
            await b.FlushAsync();
            await a.RefreshOthersAsync(CancellationToken.None);
            a.Uptime("api").Day.Should().BeApproximately(26.0 / 40, 1e-9);

            // A node restarted reads back its own counts to go on with, and the others' to count.
            await using var storeA2 = OpenStore("a");
            await using var a2 = new HistoryRecorder(storeA2, a.Settings, _time, NullLogger.Instance);
            await a2.LoadAsync(CancellationToken.None);
            a2.Uptime("api").Day.Should().BeApproximately(26.0 / 40, 1e-9);
            a2.Recent("api").Ms.Select(m => (int)m).Should().EndWith([38, 39], "the sparkline ends with the newest checks, b's");
        }
    }
}
