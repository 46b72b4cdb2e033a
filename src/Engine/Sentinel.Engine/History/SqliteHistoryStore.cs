using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Sentinel.Engine.State;

namespace Sentinel.Engine.History;

/// <summary>
/// History on one box, in its own SQLite file (state/history.db), apart from the state and the outbox so that its volume never
/// slows them: <c>chunks</c> holds every check packed per rule and hour (<see cref="CheckChunk"/>), kept for the
/// retention; <c>hourly</c> holds per rule and hour the counts and durations, kept far longer (the downsampled history).
/// </summary>
internal sealed partial class SqliteHistoryStore : IJournaledHistoryStore
{
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly Dictionary<string, long> _ids = new(StringComparer.Ordinal);

    private SqliteHistoryStore(SqliteConnection connection, string path)
    {
        _connection = connection;
        Path = path;
    }

    public string Path { get; }

    public static SqliteHistoryStore Open(string path, ILogger logger, TimeProvider? time = null)
    {
        // Inside the open: a recovery that cannot write (a full disk) is retried, then reported, like the file itself.
        var recovered = 0;
        var connection = SqliteFile.Open(path, c => { Prepare(c); recovered = RecoverJournal(c); }, logger, time, out _);
        if (recovered > 0) LogRecovered(logger, recovered);
        return new(connection, path);
    }

    /// <summary>For readers beside a running engine (the CLI): no schema change, no moving aside, no writes.</summary>
    public static SqliteHistoryStore OpenReadOnly(string path)
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
        connection.Open();
        return new SqliteHistoryStore(connection, path, readOnly: true);
    }

    private static void Prepare(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            CREATE TABLE IF NOT EXISTS rules (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
            CREATE TABLE IF NOT EXISTS chunks (
                rule_id INTEGER NOT NULL, start_ms INTEGER NOT NULL, end_ms INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL,
                PRIMARY KEY (rule_id, start_ms)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS hourly (
                rule_id INTEGER NOT NULL, hour INTEGER NOT NULL, checks INTEGER NOT NULL, failures INTEGER NOT NULL, degraded INTEGER NOT NULL,
                down INTEGER NOT NULL, duration_sum_us INTEGER NOT NULL, duration_max_us INTEGER NOT NULL,
                PRIMARY KEY (rule_id, hour)) WITHOUT ROWID;
            CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
            """;
        cmd.ExecuteNonQuery();
    }

    public string Where => Path;

    public async Task WriteAsync(IReadOnlyCollection<ChunkWrite> chunks, IReadOnlyCollection<BucketWrite> buckets, CancellationToken cancellationToken)
    {
        if (chunks.Count == 0 && buckets.Count == 0) return;
        await WriteAsync(chunks, buckets, add: false, [], dropJournalBefore: 0, cancellationToken);
    }

    public async Task<long> WriteAsync(IReadOnlyCollection<ChunkWrite> closed, IReadOnlyCollection<BucketWrite> added, IReadOnlyCollection<JournalSlice> journal,
        long dropJournalBefore, CancellationToken cancellationToken)
        => await WriteAsync(closed, added, add: true, journal, dropJournalBefore, cancellationToken);

    private async Task<long> WriteAsync(IReadOnlyCollection<ChunkWrite> chunks, IReadOnlyCollection<BucketWrite> buckets, bool add,
        IReadOnlyCollection<JournalSlice> journal, long dropJournalBefore, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var tx = _connection.BeginTransaction();
            WriteChunks(_connection, tx, chunks.Select(c => (RuleId(c.Rule, tx), c)));
            WriteHours(_connection, tx, buckets.Select(b => (RuleId(b.Rule, tx), b.Hour, b.Counts)), add);
            var id = WriteJournal(tx, journal, dropJournalBefore);
            await tx.CommitAsync(cancellationToken);
            return id;
        }
        catch
        {
            _ids.Clear(); // ids assigned inside the rolled-back transaction are void
            throw;
        }
        finally { _gate.Release(); }
    }

    private static void WriteChunks(SqliteConnection connection, SqliteTransaction tx, IEnumerable<(long RuleId, ChunkWrite Chunk)> chunks)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = """
            INSERT INTO chunks(rule_id, start_ms, end_ms, count, data) VALUES ($rule, $start, $end, $count, $data)
            ON CONFLICT(rule_id, start_ms) DO UPDATE SET end_ms = excluded.end_ms, count = excluded.count, data = excluded.data
            """;
        var p = new[] { "$rule", "$start", "$end", "$count", "$data" }.Select(n => cmd.Parameters.Add(n, SqliteType.Integer)).ToArray();
        p[4].SqliteType = SqliteType.Blob;
        foreach (var (id, c) in chunks)
        {
            p[0].Value = id;
            p[1].Value = c.StartMs;
            p[2].Value = c.EndMs;
            p[3].Value = c.Count;
            p[4].Value = c.Data;
            cmd.ExecuteNonQuery();
        }
    }

    // Replaced (an hour's counts so far), or added to (a closed chunk's counts, with a journal).
    private static void WriteHours(SqliteConnection connection, SqliteTransaction tx, IEnumerable<(long RuleId, long Hour, HourCounts Counts)> hours, bool add)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = $"""
            INSERT INTO hourly(rule_id, hour, checks, failures, degraded, down, duration_sum_us, duration_max_us)
            VALUES ($rule, $hour, $checks, $failures, $degraded, $down, $sum, $max)
            ON CONFLICT(rule_id, hour) DO UPDATE SET {(add
                ? "checks = checks + excluded.checks, failures = failures + excluded.failures, degraded = degraded + excluded.degraded, down = down + excluded.down, "
                    + "duration_sum_us = duration_sum_us + excluded.duration_sum_us, duration_max_us = max(duration_max_us, excluded.duration_max_us)"
                : "checks = excluded.checks, failures = excluded.failures, degraded = excluded.degraded, down = excluded.down, "
                    + "duration_sum_us = excluded.duration_sum_us, duration_max_us = excluded.duration_max_us")}
            """;
        var p = new[] { "$rule", "$hour", "$checks", "$failures", "$degraded", "$down", "$sum", "$max" }.Select(n => cmd.Parameters.Add(n, SqliteType.Integer)).ToArray();
        foreach (var (id, hour, c) in hours)
        {
            p[0].Value = id;
            p[1].Value = hour;
            p[2].Value = c.Checks;
            p[3].Value = c.Failures;
            p[4].Value = c.Degraded;
            p[5].Value = c.Down;
            p[6].Value = c.DurationSumUs;
            p[7].Value = c.DurationMaxUs;
            cmd.ExecuteNonQuery();
        }
    }

    private long RuleId(string rule, SqliteTransaction tx)
    {
        if (_ids.TryGetValue(rule, out var id)) return id;
        using var cmd = _connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO rules(name) VALUES ($name) ON CONFLICT(name) DO NOTHING; SELECT id FROM rules WHERE name = $name";
        cmd.Parameters.AddWithValue("$name", rule);
        return _ids[rule] = (long)cmd.ExecuteScalar()!;
    }

    public async Task<List<BucketWrite>> LoadHourlyAsync(long fromHour, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var list = new List<BucketWrite>();
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = """
                SELECT r.name, h.hour, h.checks, h.failures, h.degraded, h.down, h.duration_sum_us, h.duration_max_us
                FROM hourly h JOIN rules r ON r.id = h.rule_id WHERE h.hour >= $from
                """;
            cmd.Parameters.AddWithValue("$from", fromHour);
            using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
                list.Add(new BucketWrite(r.GetString(0), r.GetInt64(1), new HourCounts(r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6), r.GetInt64(7))));
            return list;
        }
        finally { _gate.Release(); }
    }

    // One box: there are no other nodes.
    public Task<(DateTimeOffset Now, List<(string Node, BucketWrite Bucket)> Hours)> OthersHourlyAsync(long fromHour, DateTimeOffset? since, CancellationToken cancellationToken)
        => Task.FromResult((DateTimeOffset.UtcNow, new List<(string, BucketWrite)>()));

    // One seek per rule.
    public async Task<Dictionary<string, List<CheckPoint>>> LatestAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var rules = new List<(long Id, string Name)>();
            using (var list = _connection.CreateCommand())
            {
                list.CommandText = "SELECT id, name FROM rules";
                using var r = await list.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) rules.Add((r.GetInt64(0), r.GetString(1)));
            }
            var result = new Dictionary<string, List<CheckPoint>>(StringComparer.Ordinal);
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = "SELECT start_ms, data FROM chunks WHERE rule_id = $rule ORDER BY start_ms DESC LIMIT 2";
            var p = cmd.Parameters.Add("$rule", SqliteType.Integer);
            cmd.Prepare();
            foreach (var (id, name) in rules)
            {
                p.Value = id;
                var chunks = new List<List<CheckPoint>>();
                using (var r = await cmd.ExecuteReaderAsync(cancellationToken))
                    while (await r.ReadAsync(cancellationToken)) chunks.Add(CheckChunk.Decode(r.GetInt64(0), (byte[])r.GetValue(1)));
                if (chunks.Count > 0) result[name] = [.. chunks.AsEnumerable().Reverse().SelectMany(c => c)];
            }
            return result;
        }
        finally { _gate.Release(); }
    }

    public async Task<List<StoredHour>> HourlyAsync(string rule, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var list = new List<StoredHour>();
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = """
                SELECT h.hour, h.checks, h.failures, h.degraded, h.down, h.duration_sum_us, h.duration_max_us
                FROM hourly h JOIN rules r ON r.id = h.rule_id WHERE r.name = $rule AND h.hour BETWEEN $from AND $to ORDER BY h.hour
                """;
            cmd.Parameters.AddWithValue("$rule", rule);
            cmd.Parameters.AddWithValue("$from", from.ToUnixTimeMilliseconds() / HistoryMath.HourMs);
            cmd.Parameters.AddWithValue("$to", to.ToUnixTimeMilliseconds() / HistoryMath.HourMs);
            using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
                list.Add(new StoredHour(r.GetInt64(0), true, new HourCounts(r.GetInt64(1), r.GetInt64(2), r.GetInt64(3), r.GetInt64(4), r.GetInt64(5), r.GetInt64(6))));
            return list;
        }
        finally { _gate.Release(); }
    }

    public async Task<List<CheckPoint>> ChecksAsync(string rule, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken,
        long? beforeStartMs = null)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var fromMs = from.ToUnixTimeMilliseconds();
            var toMs = to.ToUnixTimeMilliseconds();
            var result = new List<CheckPoint>();
            using var cmd = _connection.CreateCommand();
            // Newest chunks first, so a limit stops the reading early.
            cmd.CommandText = """
                SELECT c.start_ms, c.data FROM chunks c JOIN rules r ON r.id = c.rule_id
                WHERE r.name = $rule AND c.end_ms >= $from AND c.start_ms <= $to AND c.start_ms < $before ORDER BY c.start_ms DESC
                """;
            cmd.Parameters.AddWithValue("$rule", rule);
            cmd.Parameters.AddWithValue("$from", fromMs);
            cmd.Parameters.AddWithValue("$to", toMs);
            cmd.Parameters.AddWithValue("$before", beforeStartMs ?? long.MaxValue);
            using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (result.Count < limit && await r.ReadAsync(cancellationToken))
            {
                var points = CheckChunk.Decode(r.GetInt64(0), (byte[])r.GetValue(1));
                for (var i = points.Count - 1; i >= 0 && result.Count < limit; i--)
                    if (points[i].At.ToUnixTimeMilliseconds() is var ms && ms >= fromMs && ms <= toMs) result.Add(points[i]);
            }
            if (beforeStartMs is null && JournaledChecks(rule, fromMs, toMs) is { Count: > 0 } journaled)
            {
                result.AddRange(journaled);
                result.Sort((a, b) => b.At.CompareTo(a.At));
                if (result.Count > limit) result.RemoveRange(limit, result.Count - limit);
            }
            result.Reverse();
            return result;
        }
        finally { _gate.Release(); }
    }

    public async Task<(int Chunks, int Hours)> PruneAsync(DateTimeOffset checksBefore, DateTimeOffset hourlyBefore, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = "DELETE FROM chunks WHERE end_ms < $checks";
            cmd.Parameters.AddWithValue("$checks", checksBefore.ToUnixTimeMilliseconds());
            var chunks = await cmd.ExecuteNonQueryAsync(cancellationToken);
            cmd.CommandText = "DELETE FROM hourly WHERE hour < $hour";
            cmd.Parameters.AddWithValue("$hour", hourlyBefore.ToUnixTimeMilliseconds() / HistoryMath.HourMs);
            var hours = await cmd.ExecuteNonQueryAsync(cancellationToken);
            return (chunks, hours);
        }
        finally { _gate.Release(); }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try { await _connection.DisposeAsync(); }
        finally { _gate.Release(); }
    }
}
