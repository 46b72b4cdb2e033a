using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using Sentinel.Abstractions;
using Sentinel.Engine.History;
using Sentinel.Engine.Rules;
using Sentinel.Engine.Tests.Support;

namespace Sentinel.Engine.Tests.History;

/// <summary>
/// The SQLite history's journal: a flush appends the open chunks' new checks as one row, a chunk is written once when
/// closed; after a SIGKILL every check flushed is read back, none twice.
/// </summary>
public sealed class HistoryJournalTests : IDisposable
{
    private readonly TempDir _dir = new();
    private readonly FakeTimeProvider _time = new(DateTimeOffset.Parse("2026-11-20T12:00:00Z"));
    private string Path => System.IO.Path.Combine(_dir.Path, "history.db");

    public void Dispose() => _dir.Dispose();

    private HistoryRecorder Recorder(IHistoryStore store)
        => new(store, new HistorySettings(true, TimeSpan.FromDays(30), TimeSpan.FromDays(400), TimeSpan.FromSeconds(30)), _time, NullLogger.Instance);

    private void Check(HistoryRecorder r, string rule, int i)
        => r.Record(rule, new CheckRecord(i % 5 == 0 ? ProbeStatus.Unhealthy : ProbeStatus.Healthy, $"check {i}", _time.GetUtcNow(), TimeSpan.FromMilliseconds(i)),
            i % 5 == 0 ? RuleStatus.Down : RuleStatus.Healthy);

    private long Rows(string table)
    {
        using var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT count(*) FROM {table}";
        return (long)cmd.ExecuteScalar()!;
    }

    [Fact]
    public async Task AfterAKill_EveryFlushedCheckIsReadBack_NoneTwice_AndTheJournalIsEmptied()
    {
        // "a" is checked 100 times, flushed every 10: its first chunk (64 checks) closes and is written while "b", checked
        // once at the start, keeps the journal rows that also hold a's first checks. Then the process dies: no final flush.
        var store = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        var recorder = Recorder(store);
        Check(recorder, "b", 1);
        for (var i = 0; i < 100; i++)
        {
            Check(recorder, "a", i);
            _time.Advance(TimeSpan.FromSeconds(10));
            if (i % 10 == 9) await recorder.FlushAsync();
        }
        Check(recorder, "a", 100); // never flushed: lost with the process, as the docs say
        Rows("chunks").Should().Be(1, "a's first chunk, closed; the open ones are in the journal");
        Rows("journal").Should().Be(10, "b's open chunk still needs the first row, and so every row after it");
        await store.DisposeAsync(); // the kill: the recorder never flushes again

        await using var store2 = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        Rows("journal").Should().Be(0);
        await using var recorder2 = Recorder(store2);
        await recorder2.LoadAsync(CancellationToken.None);
        var checks = await recorder2.ChecksAsync("a", _time.GetUtcNow() - TimeSpan.FromHours(1), _time.GetUtcNow(), 1000, CancellationToken.None);
        checks.Select(c => c.Duration.TotalMilliseconds).Should().Equal(Enumerable.Range(0, 100).Select(i => (double)i), "every check flushed, in order, once");
        checks.Where(c => c.Status == ProbeStatus.Unhealthy).Select(c => c.Description).Should().Equal(Enumerable.Range(0, 20).Select(i => $"check {i * 5}"));
        (await recorder2.ChecksAsync("b", _time.GetUtcNow() - TimeSpan.FromHours(1), _time.GetUtcNow(), 1000, CancellationToken.None)).Should().ContainSingle();
        var hours = await recorder2.HourlyAsync("a", _time.GetUtcNow() - TimeSpan.FromHours(2), _time.GetUtcNow(), CancellationToken.None);
        hours.Sum(h => h.Checks).Should().Be(100);
        hours.Sum(h => h.Down).Should().Be(20);
        recorder2.Uptime("a").Day.Should().BeApproximately(0.8, 1e-9);
    }

    [Fact]
    public async Task ADamagedJournalRow_IsLeftOut_TheRestIsReadBack_AndTheFileKept()
    {
        var store = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        var recorder = Recorder(store);
        for (var i = 0; i < 3; i++) { Check(recorder, "a", i); _time.Advance(TimeSpan.FromSeconds(10)); }
        await recorder.FlushAsync();
        await store.DisposeAsync();
        using (var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path, Pooling = false }.ToString()))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            // A slice of rule 1 whose bytes are no checks, and one that claims more bytes than the row holds.
            cmd.CommandText = "INSERT INTO journal(data) VALUES (x'01C0B4F2A8D06500050104FFFFFFFF'), (x'01FFFFFFFFFFFFFFFFFFFF')";
            cmd.ExecuteNonQuery();
        }

        await using var store2 = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        (await store2.ChecksAsync("a", _time.GetUtcNow() - TimeSpan.FromHours(1), _time.GetUtcNow(), 100, CancellationToken.None)).Should().HaveCount(3);
        Rows("journal").Should().Be(0);
        Directory.GetFiles(_dir.Path, "history.db.corrupt-*").Should().BeEmpty("a damaged journal row is not a damaged file");
    }

    [Fact]
    public async Task AReaderBesideAKilledEngine_SeesTheJournaledChecks()
    {
        var store = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        var recorder = Recorder(store);
        for (var i = 0; i < 7; i++) { Check(recorder, "a", i); _time.Advance(TimeSpan.FromSeconds(10)); }
        await recorder.FlushAsync();
        await store.DisposeAsync();

        // `sentinel history` while the engine is down: read-only, so the journal is read, not made rows.
        await using var reader = SqliteHistoryStore.OpenReadOnly(Path);
        (await reader.ChecksAsync("a", _time.GetUtcNow() - TimeSpan.FromHours(1), _time.GetUtcNow(), 5, CancellationToken.None))
            .Select(c => c.Duration.TotalMilliseconds).Should().Equal(2, 3, 4, 5, 6);
        Rows("journal").Should().Be(1);
    }

    [Fact]
    public async Task TheJournal_HoldsOnlyOpenChunks_AChunkOfAPastHourIsClosed_AndAStopEmptiesIt()
    {
        var store = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        await using (store)
        {
            var recorder = Recorder(store);
            await using (recorder)
            {
                Check(recorder, "stopped", 0); // a rule checked once, then never again (removed, paused)
                Check(recorder, "a", 0);
                await recorder.FlushAsync();
                _time.Advance(TimeSpan.FromMinutes(30));
                Check(recorder, "a", 1);
                await recorder.FlushAsync();
                Rows("journal").Should().Be(2);
                _time.Advance(TimeSpan.FromMinutes(31)); // the hour turned
                Check(recorder, "a", 2);
                await recorder.FlushAsync();
                Rows("chunks").Should().Be(2, "both chunks of the past hour are closed and written");
                Rows("journal").Should().Be(1, "only the new hour's open chunk");
                (await recorder.HourlyAsync("stopped", _time.GetUtcNow() - TimeSpan.FromHours(2), _time.GetUtcNow(), CancellationToken.None)).Single().Checks.Should().Be(1);
            }
            Rows("journal").Should().Be(0, "a stop writes every open chunk whole");
            Rows("chunks").Should().Be(3);
        }
        await using var reopened = SqliteHistoryStore.Open(Path, NullLogger.Instance);
        (await reopened.HourlyAsync("a", _time.GetUtcNow() - TimeSpan.FromHours(2), _time.GetUtcNow(), CancellationToken.None)).Sum(h => h.Counts.Checks).Should().Be(3);
    }
}
