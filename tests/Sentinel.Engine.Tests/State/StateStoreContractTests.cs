using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Sentinel.Engine.Rules;
using Sentinel.Engine.State;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.State;

/// <summary>
/// What every state store does, whichever database it keeps: the embedded SQLite file and the PostgreSQL database
/// of cluster mode run this same suite (one subclass each), so the engine cannot tell them apart.
/// </summary>
public abstract class StateStoreContract
{
    private static readonly DateTimeOffset At = new(2026, 12, 2, 8, 0, 0, TimeSpan.Zero);

    /// <summary>Opens the store over the same database each time it is called (a reopen sees what was written).</summary>
    private protected abstract Task<IEngineStore> OpenAsync();

    [Fact]
    public async Task States_RoundTrip_WithTheirLastCheck_ProbeState_Remediation_AndConfigPause()
    {
        var check = new CheckRecord(ProbeStatus.Unhealthy, "GET / → 503", At, TimeSpan.FromMilliseconds(12),
            new Dictionary<string, object> { ["status"] = 503, ["response-time"] = TimeSpan.FromMilliseconds(12), ["rss"] = new ByteSize(1024) });
        var remediation = new RemediationState { Attempts = [At.AddMinutes(-2), At.AddMinutes(-1)], Streak = 2 };
        var down = new RuleState("api", RuleStatus.Down, At.AddMilliseconds(123.456), 4, 0, 10, 4, check,
            new Dictionary<string, string> { ["offset"] = "1234" }, remediation) { ConfigPaused = false };
        await using (var store = await OpenAsync())
            await store.SaveAsync([down, RuleState.New("quiet", At, paused: true) with { ConfigPaused = true }], [], default);

        await using var reopened = await OpenAsync();
        var states = await reopened.LoadAsync(default);

        states.Keys.Should().BeEquivalentTo(["api", "quiet"]);
        var api = states["api"];
        api.Should().BeEquivalentTo(down, o => o.Excluding(s => s.LastCheck).Excluding(s => s.Remediation));
        api.Since.Should().Be(At.AddMilliseconds(123.456), "times are kept to the microsecond at least");
        api.LastCheck!.Description.Should().Be("GET / → 503");
        api.LastCheck.Status.Should().Be(ProbeStatus.Unhealthy);
        api.LastCheck.Duration.Should().Be(TimeSpan.FromMilliseconds(12));
        api.LastCheck.Data!["status"].ToString().Should().Be("503");
        api.LastCheck.Data["response-time"].ToString().Should().Be("12ms");
        api.Remediation!.Attempts.Should().Equal(At.AddMinutes(-2), At.AddMinutes(-1));
        api.Remediation.Streak.Should().Be(2);
        states["quiet"].Status.Should().Be(RuleStatus.Paused);
        states["quiet"].ConfigPaused.Should().BeTrue();
        states["quiet"].LastCheck.Should().BeNull();
    }

    [Fact]
    public async Task Save_UpdatesInPlace_AndRemovesTheRemovedRules_InOneWrite()
    {
        await using var store = await OpenAsync();
        await store.SaveAsync([new RuleState("a", RuleStatus.Healthy, At, Checks: 1), new RuleState("b", RuleStatus.Healthy, At)], [], default);

        await store.SaveAsync([new RuleState("a", RuleStatus.Failing, At.AddSeconds(10), 1, 0, 2, 1)], ["b", "never-saved"], default);

        var states = await store.LoadAsync(default);
        states.Keys.Should().Equal("a");
        states["a"].Status.Should().Be(RuleStatus.Failing);
        states["a"].Checks.Should().Be(2);
        states["a"].Since.Should().Be(At.AddSeconds(10));
    }

    [Fact]
    public async Task AFlushOfThousandsOfRules_IsKept_WholeAndExact()
    {
        var many = Enumerable.Range(0, 3000).Select(i => new RuleState($"rule-{i}", i % 3 == 0 ? RuleStatus.Down : RuleStatus.Healthy, At.AddSeconds(i), i % 5, 0, i, i / 2,
            new CheckRecord(ProbeStatus.Healthy, $"check {i}", At.AddSeconds(i), TimeSpan.FromMilliseconds(i % 100)))).ToList();
        await using var store = await OpenAsync();

        await store.SaveAsync(many, [], default);

        var states = await store.LoadAsync(default);
        states.Should().HaveCount(3000);
        states["rule-2999"].Checks.Should().Be(2999);
        states["rule-2999"].Failures.Should().Be(1499);
        states["rule-2999"].ConsecutiveFailures.Should().Be(4);
        states["rule-2999"].LastCheck!.Description.Should().Be("check 2999");
        states.Values.Count(s => s.Status == RuleStatus.Down).Should().Be(1000);
    }

    [Fact]
    public async Task ACommit_WritesTheStateItsIncidentsAndItsMessages_Together()
    {
        await using (var store = await OpenAsync())
        {
            var opened = Incident(1, "api");
            await store.CommitAsync(new RuleState("api", RuleStatus.Down, At, 3), [opened], [Message(1, 1, "mail"), Message(2, 1, "sms")], default);
            await store.CommitAsync(null, [Incident(2, "db")], [Message(3, 2, "mail")], default);
            // The first incident closes; one message went out, one is still to send, and the resolved message is new.
            opened.ClosedAt = At.AddMinutes(5);
            opened.Notified = ["mail"];
            var sent = Message(1, 1, "mail");
            sent.Status = OutboxStatus.Sent;
            sent.SentAt = At.AddSeconds(1);
            await store.CommitAsync(new RuleState("api", RuleStatus.Healthy, At.AddMinutes(5)), [opened], [sent, Message(4, 1, "mail")], default);
        }

        await using var reopened = await OpenAsync();
        (await reopened.LoadAsync(default))["api"].Status.Should().Be(RuleStatus.Healthy);
        var snapshot = await reopened.LoadNotificationsAsync(default);
        snapshot.Open.Select(i => (i.Id, i.Rule)).Should().Equal((2L, "db"));
        snapshot.Pending.Select(m => m.Id).Should().BeEquivalentTo([2L, 3L, 4L]);
        snapshot.Pending.Single(m => m.Id == 2).Channel.Should().Be("sms");
        snapshot.Pending.Single(m => m.Id == 2).Item.Description.Should().Be("GET / → 503");
        snapshot.Counts.Should().BeEquivalentTo(new Dictionary<OutboxStatus, long> { [OutboxStatus.Pending] = 3, [OutboxStatus.Sent] = 1 });
        snapshot.MaxIncidentId.Should().Be(2);
        snapshot.MaxMessageId.Should().Be(4);

        var ofFirst = await reopened.MessagesForAsync([1], default);
        ofFirst.Select(m => m.Id).Should().Equal(1, 2, 4);
        ofFirst[0].Status.Should().Be(OutboxStatus.Sent);
        ofFirst[0].SentAt.Should().Be(At.AddSeconds(1));
        (await reopened.MessagesForAsync([], default)).Should().BeEmpty();

        var recent = await reopened.RecentIncidentsAsync(10, default);
        recent.Select(i => i.Id).Should().Equal(2, 1);
        recent[1].ClosedAt.Should().Be(At.AddMinutes(5));
        recent[1].Notified.Should().Equal("mail");
        (await reopened.RecentIncidentsAsync(1, default)).Select(i => i.Id).Should().Equal(2);
    }

    [Fact]
    public async Task AnEmptyStore_HasNothing()
    {
        await using var store = await OpenAsync();

        (await store.LoadAsync(default)).Should().BeEmpty();
        var snapshot = await store.LoadNotificationsAsync(default);
        snapshot.Open.Should().BeEmpty();
        snapshot.Pending.Should().BeEmpty();
        snapshot.Counts.Should().BeEmpty();
        (snapshot.MaxIncidentId, snapshot.MaxMessageId).Should().Be((0L, 0L));
        (await store.RecentIncidentsAsync(5, default)).Should().BeEmpty();
        (await store.LoadPingsAsync(default)).Should().BeEmpty();
    }

    [Fact]
    public async Task APing_IsKept_WithTheRunItStarted_AndAReopenedStoreHasIt()
    {
        await using (var store = await OpenAsync())
        {
            await store.RecordPingAsync("backup", r => r.After("success", null, "", At), default);
            var started = await store.RecordPingAsync("backup", r => r.After("start", "run-7", "", At.AddMinutes(1)), default);
            started.Should().Be(new PingRecord(LastSuccess: At, LastStart: At.AddMinutes(1), StartRid: "run-7", LastExitCode: 0, Pings: 2));
        }

        await using var reopened = await OpenAsync();
        var pings = await reopened.LoadPingsAsync(default);
        pings.Keys.Should().Equal("backup");
        pings["backup"].LastStart.Should().Be(At.AddMinutes(1), "a run that started before a restart and never finishes is still told");
        var finished = await reopened.RecordPingAsync("backup", r => r.After("3", "run-7", "tar: disk full", At.AddMinutes(4)), default);
        finished.Should().Be(new PingRecord(LastSuccess: At, StartRid: "run-7", LastFail: At.AddMinutes(4), LastExitCode: 3, LastBody: "tar: disk full",
            LastDuration: TimeSpan.FromMinutes(3), Pings: 3));
    }

    [Fact]
    public async Task PingsAtTheSameMoment_AreEachApplied_NoneLost()
    {
        await using var store = await OpenAsync();

        await Task.WhenAll(Enumerable.Range(0, 40).Select(i => Task.Run(() => store.RecordPingAsync("job", r => r.After("log", null, $"line {i}", At), default))));

        (await store.LoadPingsAsync(default))["job"].Pings.Should().Be(40);
    }

    private static Incident Incident(long id, string rule) => new() { Id = id, Rule = rule, OpenedAt = At, Description = "GET / → 503" };

    private static OutboxMessage Message(long id, long incident, string channel) => new()
    {
        Id = id,
        IncidentId = incident,
        Rule = "api",
        Channel = channel,
        Item = new NotificationItem("api", "down", "down", At, "GET / → 503", incident),
        CreatedAt = At,
        DueAt = At,
    };
}

public sealed class SqliteStateStoreContractTests : StateStoreContract, IDisposable
{
    private readonly TempDir _dir = new();

    private protected override Task<IEngineStore> OpenAsync()
        => Task.FromResult<IEngineStore>(SqliteStateStore.Open(Path.Combine(_dir.Path, "state", "sentinel.db"), NullLogger.Instance));

    public void Dispose() => _dir.Dispose();
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresStateStoreContractTests(PostgresFixture postgres) : StateStoreContract, IAsyncLifetime
{
    private string _database = "";

    public async Task InitializeAsync() => _database = await postgres.Server.CreateDatabaseAsync();

    public Task DisposeAsync() => Task.CompletedTask;

    private protected override async Task<IEngineStore> OpenAsync() => await PostgresStateStore.OpenAsync(_database, default);

    [Fact]
    public async Task ANewDatabase_GetsTheSchema_AndAReopenFindsItCurrent()
    {
        await using (var first = await PostgresStateStore.OpenAsync(_database, default))
            first.FoundSchemaVersion.Should().Be(0);
        await using var second = await PostgresStateStore.OpenAsync(_database, default);

        second.FoundSchemaVersion.Should().Be(PostgresSchema.Version);
        (await Versions()).Should().Equal(Enumerable.Range(1, PostgresSchema.Version));
    }

    [Fact]
    public async Task NodesStartedTogether_MigrateOnce()
    {
        var stores = await Task.WhenAll(Enumerable.Range(0, 5).Select(_ => PostgresStateStore.OpenAsync(_database, default)));
        try
        {
            stores.Count(s => s.FoundSchemaVersion == 0).Should().Be(1, "one node creates the tables, the others wait for it and find them");
            (await Versions()).Should().Equal(Enumerable.Range(1, PostgresSchema.Version));
        }
        finally
        {
            foreach (var s in stores) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task ADatabaseANewerSentinelUpgraded_IsRefused_AndLeftAsItIs()
    {
        await using (var store = await PostgresStateStore.OpenAsync(_database, default))
            await store.SaveAsync([new RuleState("api", RuleStatus.Down, new DateTimeOffset(2026, 12, 2, 8, 0, 0, TimeSpan.Zero))], [], default);
        var newer = PostgresSchema.Version + 1;
        await Execute($"INSERT INTO sentinel_schema (version, applied_by) VALUES ({newer}, 'sentinel 9.9.9 on db2')");

        var open = () => PostgresStateStore.OpenAsync(_database, default);

        var refused = (await open.Should().ThrowAsync<SchemaTooNewException>()).Which;
        refused.Message.Should().Contain($"schema version {newer}").And.Contain("Upgrade Sentinel on this node");
        (refused.Found, refused.Known).Should().Be((newer, PostgresSchema.Version));
        (await Versions()).Should().Equal(Enumerable.Range(1, newer), "nothing was changed");
        await Execute($"DELETE FROM sentinel_schema WHERE version = {newer}");
        await using var again = await PostgresStateStore.OpenAsync(_database, default);
        (await again.LoadAsync(default))["api"].Status.Should().Be(RuleStatus.Down, "the rows are intact");
    }

    private async Task<List<int>> Versions()
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand("SELECT version FROM sentinel_schema ORDER BY version", connection);
        var versions = new List<int>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) versions.Add(r.GetInt32(0));
        return versions;
    }

    private async Task Execute(string sql)
    {
        await using var connection = new NpgsqlConnection(_database);
        await connection.OpenAsync();
        await using var cmd = new NpgsqlCommand(sql, connection);
        await cmd.ExecuteNonQueryAsync();
    }
}
