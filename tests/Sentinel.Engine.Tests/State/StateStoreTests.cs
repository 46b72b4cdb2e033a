using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.Rules;
using Sentinel.Engine.State;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.State;

public sealed class StateStoreTests : IDisposable
{
    private readonly TempDir _dir = new();
    private string DbPath => Path.Combine(_dir.Path, "state", "sentinel.db");

    [Fact]
    public async Task SaveAndLoad_RoundTripsStateAndLastCheck()
    {
        var at = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
        var check = new CheckRecord(ProbeStatus.Unhealthy, "503", at, TimeSpan.FromMilliseconds(12),
            new Dictionary<string, object> { ["status"] = 503, ["response-time"] = TimeSpan.FromMilliseconds(12), ["rss"] = new ByteSize(1024) });
        await using (var store = SqliteStateStore.Open(DbPath, NullLogger.Instance))
        {
            await store.SaveAsync([new RuleState("a", RuleStatus.Down, at, 4, 0, 10, 4, check), new RuleState("b", RuleStatus.Healthy, at)], [], default);
            await store.SaveAsync([], ["b"], default);
        }
        await using var reopened = SqliteStateStore.Open(DbPath, NullLogger.Instance);
        var states = await reopened.LoadAsync(default);

        states.Keys.Should().Equal("a");
        var a = states["a"];
        a.Should().BeEquivalentTo(new RuleState("a", RuleStatus.Down, at, 4, 0, 10, 4, null), o => o.Excluding(s => s.LastCheck));
        a.LastCheck!.Description.Should().Be("503");
        a.LastCheck.Duration.Should().Be(TimeSpan.FromMilliseconds(12));
        a.LastCheck.Data!["status"].ToString().Should().Be("503");
        a.LastCheck.Data["response-time"].ToString().Should().Be("12ms");
    }

    [Fact]
    public async Task AVersion1Database_IsMigrated_KeepingItsRows()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DbPath)!);
        await using (var v1 = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DbPath};Pooling=false"))
        {
            await v1.OpenAsync();
            await using var cmd = v1.CreateCommand();
            cmd.CommandText = """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta VALUES ('schema_version', '1');
                CREATE TABLE rule_state (rule TEXT PRIMARY KEY, status TEXT NOT NULL, since TEXT NOT NULL, consecutive_failures INTEGER NOT NULL,
                    consecutive_successes INTEGER NOT NULL, checks INTEGER NOT NULL, failures INTEGER NOT NULL, last_check TEXT NULL);
                INSERT INTO rule_state VALUES ('old', 'down', '2026-11-01T00:00:00.0000000+00:00', 5, 0, 50, 5, NULL);
                """;
            await cmd.ExecuteNonQueryAsync();
        }

        await using (var store = SqliteStateStore.Open(DbPath, NullLogger.Instance))
        {
            var old = (await store.LoadAsync(default))["old"];
            old.Status.Should().Be(RuleStatus.Down);
            old.Checks.Should().Be(50);
            old.ProbeState.Should().BeNull();
            await store.SaveAsync([old with { ProbeState = new Dictionary<string, string> { ["offset"] = "1234" } }], [], default);
        }
        await using var reopened = SqliteStateStore.Open(DbPath, NullLogger.Instance);
        (await reopened.LoadAsync(default))["old"].ProbeState!["offset"].Should().Be("1234");
    }

    [Fact]
    public async Task CorruptStateFile_IsMovedAside_WithAWarning_AndAFreshStateStarts()
    {
        Directory.CreateDirectory(Path.GetDirectoryName(DbPath)!);
        await File.WriteAllTextAsync(DbPath, "this is not a database, it was overwritten by accident");
        var logger = new ListLogger();
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 22, 9, 30, 0, TimeSpan.Zero));

        await using var store = SqliteStateStore.Open(DbPath, logger, time);

        store.MovedAside.Should().Be(DbPath + ".corrupt-20261122-093000");
        (await File.ReadAllTextAsync(store.MovedAside!)).Should().StartWith("this is not a database");
        (await store.LoadAsync(default)).Should().BeEmpty();
        await store.SaveAsync([new RuleState("a", RuleStatus.Healthy, time.GetUtcNow())], [], default);
        logger.Lines.Should().ContainSingle(l => l.StartsWith("Warning: The state file") && l.Contains("moved aside"));
    }

    [Fact]
    public async Task AGoodStateFileThatCannotBeOpenedNow_IsLeftAsItIs_AndReported_NotMovedAside()
    {
        var at = new DateTimeOffset(2026, 11, 22, 10, 0, 0, TimeSpan.Zero);
        await using (var store = SqliteStateStore.Open(DbPath, NullLogger.Instance))
            await store.SaveAsync([new RuleState("api", RuleStatus.Down, at, 3, 0, 10, 3)], [], default);

        // Another program holds the file locked (what a full disk or an I/O error also look like to SQLite: an error
        // that says nothing about the file's contents).
        await using (var holder = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={DbPath};Pooling=false"))
        {
            await holder.OpenAsync();
            await using (var lockIt = holder.CreateCommand())
            {
                lockIt.CommandText = "PRAGMA locking_mode=EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE rule_state SET checks = checks;";
                await lockIt.ExecuteNonQueryAsync();
            }
            var logger = new ListLogger();
            var open = () => SqliteStateStore.Open(DbPath, logger);
            open.Should().Throw<StateFileUnavailableException>().Which.Message.Should().Contain("locked").And.Contain("nothing was moved aside");
            Directory.GetFiles(Path.GetDirectoryName(DbPath)!, "*.corrupt-*").Should().BeEmpty("a good file is never moved aside");
            logger.Lines.Should().Contain(l => l.Contains("is left as it is and tried again"));
        }

        await using var reopened = SqliteStateStore.Open(DbPath, NullLogger.Instance);
        reopened.MovedAside.Should().BeNull();
        (await reopened.LoadAsync(default))["api"].Status.Should().Be(RuleStatus.Down, "the state (an open outage) is intact");
    }

    [Fact]
    public async Task Persister_CoalescesChanges_AndWritesStatusAtomically()
    {
        await using var store = SqliteStateStore.Open(DbPath, NullLogger.Instance);
        var statusPath = Path.Combine(_dir.Path, "state", "status.json");
        var writes = 0;
        var persister = new StatePersister(store, statusPath, s => { writes++; s.Write("{\"ok\":true}"u8); }, TimeSpan.FromHours(1), NullLogger.Instance);
        for (var i = 0; i < 1000; i++) persister.MarkDirty(new RuleState("a", RuleStatus.Healthy, DateTimeOffset.UnixEpoch, Checks: i));

        await persister.FlushAsync();
        await persister.FlushAsync();

        writes.Should().Be(1, "nothing changed after the first flush");
        (await store.LoadAsync(default))["a"].Checks.Should().Be(999);
        (await File.ReadAllTextAsync(statusPath)).Should().Be("{\"ok\":true}");
        await persister.DisposeAsync();
    }

    [Fact]
    public async Task Persister_WithManyRules_RewritesStatusForCheckTimesEveryFewFlushes_ButATransitionAtOnce()
    {
        await using var store = SqliteStateStore.Open(DbPath, NullLogger.Instance);
        var statusPath = Path.Combine(_dir.Path, "state", "status.json");
        var writes = 0;
        var persister = new StatePersister(store, statusPath, s => { writes++; s.Write("{}"u8); }, TimeSpan.FromHours(1), NullLogger.Instance)
        {
            RuleCount = () => 3 * StatePersister.RulesPerStatusFlush, // a rewrite for check times every 3rd flush
        };
        var checks = 0;
        async Task CheckAndFlush(bool transition = false)
        {
            persister.MarkDirty(new RuleState("a", RuleStatus.Healthy, DateTimeOffset.UnixEpoch, Checks: ++checks));
            if (transition) persister.FlushSoon();
            await persister.FlushAsync();
        }

        await CheckAndFlush();
        writes.Should().Be(1, "the first flush writes it");
        await CheckAndFlush();
        await CheckAndFlush();
        writes.Should().Be(1, "check times alone wait");
        (await store.LoadAsync(default))["a"].Checks.Should().Be(3, "the state rows are written at every flush all the same");
        await CheckAndFlush();
        writes.Should().Be(2, "the third flush since the last write");
        await CheckAndFlush(transition: true);
        writes.Should().Be(3, "a transition is written at once");
        await persister.FlushAsync();
        await persister.FlushAsync();
        writes.Should().Be(3, "nothing new: the pending check times are not there (the transition wrote them)");
        await CheckAndFlush();
        await persister.DisposeAsync();
        writes.Should().Be(4, "stopping writes the last check times");
    }

    [Fact]
    public async Task Persister_WithManyRules_WritesCheckTimesAloneEveryFewFlushes_AndAnythingElseAtTheNext()
    {
        await using var store = SqliteStateStore.Open(DbPath, NullLogger.Instance);
        var persister = new StatePersister(store, null, _ => { }, TimeSpan.FromHours(1), NullLogger.Instance)
        {
            RuleCount = () => 3 * StatePersister.RulesPerStatusFlush, // check times alone every 3rd flush
        };
        var states = new Sentinel.Engine.Runtime.RuleStates(TimeProvider.System) { Persister = persister };
        var at = DateTimeOffset.UnixEpoch;
        var check = new CheckRecord(ProbeStatus.Healthy, "ok", at, TimeSpan.Zero);
        RuleState Count(RuleState s) => s with { Checks = s.Checks + 1, ConsecutiveSuccesses = s.ConsecutiveSuccesses + 1, LastCheck = check };
        async Task<RuleState> Stored(string rule) => (await store.LoadAsync(default))[rule];

        states.Update("a", s => (new RuleState("a", RuleStatus.Healthy, at), 0));
        states.Update("b", s => (new RuleState("b", RuleStatus.Healthy, at), 0));
        await persister.FlushAsync();
        (await Stored("a")).Checks.Should().Be(0, "a new rule's state is written at the next flush");

        states.Update("a", s => (Count(s), 0)); // check times alone
        states.Update("b", s => (Count(s) with { Status = RuleStatus.Failing, ConsecutiveFailures = 1, Failures = 1 }, 0));
        await persister.FlushAsync();
        (await Stored("a")).Checks.Should().Be(0, "a healthy rule's check count waits for the routine flush");
        (await Stored("b")).Should().Match<RuleState>(b => b.Status == RuleStatus.Failing && b.ConsecutiveFailures == 1, "a failure towards the threshold is written at once");

        states.Update("a", s => (Count(s), 0));
        states.Update("a", s => (s with { ProbeState = new Dictionary<string, string> { ["offset"] = "42" } }, 0));
        await persister.FlushAsync();
        (await Stored("a")).Should().Match<RuleState>(a => a.Checks == 2 && a.ProbeState!["offset"] == "42",
            "a probe's state is written at the next flush, with the check times that waited");

        states.Update("a", s => (Count(s), 0));
        await persister.FlushAsync();
        (await Stored("a")).Checks.Should().Be(3, "the third flush since the last routine one writes check times");

        states.Update("a", s => (Count(s), 0));
        await persister.FlushAsync();
        (await Stored("a")).Checks.Should().Be(3, "the next routine flush is three flushes on");
        await persister.DisposeAsync();
        (await Stored("a")).Checks.Should().Be(4, "a stop writes everything");
    }

    public void Dispose() => _dir.Dispose();
}
