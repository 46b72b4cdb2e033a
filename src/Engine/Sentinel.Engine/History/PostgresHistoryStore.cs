using Npgsql;
using NpgsqlTypes;

namespace Sentinel.Engine.History;

/// <summary>
/// The check history of a cluster, in the PostgreSQL database its nodes share (tables made by
/// <see cref="State.PostgresSchema"/>): each node writes the chunks and hourly counts of the checks it made, under its
/// name, and every read is of the whole cluster. A rule that moves from one node to another mid-hour has a row of
/// counts from each for that hour, summed when read: its uptime and history stay whole.
/// </summary>
internal sealed class PostgresHistoryStore : IHistoryStore
{
    private readonly NpgsqlDataSource _source;
    private readonly string _node;

    private PostgresHistoryStore(NpgsqlDataSource source, string node)
    {
        _source = source;
        _node = node;
    }

    /// <summary>Over the database the cluster's state store opened (and migrated), as the node <paramref name="node"/>.</summary>
    public static PostgresHistoryStore Open(string connectionString, string node) => new(NpgsqlDataSource.Create(connectionString), node);

    public string Where => "the cluster's PostgreSQL database";

    public async Task WriteAsync(IReadOnlyCollection<ChunkWrite> chunks, IReadOnlyCollection<BucketWrite> buckets, CancellationToken cancellationToken)
    {
        if (chunks.Count == 0 && buckets.Count == 0) return;
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        // Each kind in one statement (arrays unnested): a flush of 10,000 rules is two round trips.
        if (chunks.Count > 0)
        {
            var rows = chunks.GroupBy(c => (c.Rule, c.StartMs)).Select(g => g.Last()).ToList();
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO sentinel_history_chunks (rule, node, start_ms, end_ms, count, data)
                SELECT rule, $6, start_ms, end_ms, count, data FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::int[], $5::bytea[]) AS u(rule, start_ms, end_ms, count, data)
                ON CONFLICT (rule, start_ms, node) DO UPDATE SET end_ms = excluded.end_ms, count = excluded.count, data = excluded.data
                """, connection, tx);
            Add(cmd, rows.Select(c => c.Rule).ToArray());
            Add(cmd, rows.Select(c => c.StartMs).ToArray());
            Add(cmd, rows.Select(c => c.EndMs).ToArray());
            Add(cmd, rows.Select(c => c.Count).ToArray());
            Add(cmd, rows.Select(c => c.Data).ToArray());
            cmd.Parameters.Add(new NpgsqlParameter { Value = _node });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        if (buckets.Count > 0)
        {
            var rows = buckets.GroupBy(b => (b.Rule, b.Hour)).Select(g => g.Last()).ToList();
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO sentinel_history_hourly (rule, node, hour, checks, failures, degraded, down, duration_sum_us, duration_max_us, updated_at)
                SELECT rule, $9, hour, checks, failures, degraded, down, sum_us, max_us, now()
                FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[], $8::bigint[])
                     AS u(rule, hour, checks, failures, degraded, down, sum_us, max_us)
                ON CONFLICT (rule, hour, node) DO UPDATE SET checks = excluded.checks, failures = excluded.failures, degraded = excluded.degraded,
                    down = excluded.down, duration_sum_us = excluded.duration_sum_us, duration_max_us = excluded.duration_max_us, updated_at = excluded.updated_at
                """, connection, tx);
            Add(cmd, rows.Select(b => b.Rule).ToArray());
            Add(cmd, rows.Select(b => b.Hour).ToArray());
            Add(cmd, rows.Select(b => b.Counts.Checks).ToArray());
            Add(cmd, rows.Select(b => b.Counts.Failures).ToArray());
            Add(cmd, rows.Select(b => b.Counts.Degraded).ToArray());
            Add(cmd, rows.Select(b => b.Counts.Down).ToArray());
            Add(cmd, rows.Select(b => b.Counts.DurationSumUs).ToArray());
            Add(cmd, rows.Select(b => b.Counts.DurationMaxUs).ToArray());
            cmd.Parameters.Add(new NpgsqlParameter { Value = _node });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
        await tx.CommitAsync(cancellationToken);
    }

    private static void Add<T>(NpgsqlCommand cmd, T[] values) => cmd.Parameters.Add(new NpgsqlParameter<T[]> { TypedValue = values });

    private const string CountColumns = "checks, failures, degraded, down, duration_sum_us, duration_max_us";

    private static HourCounts Counts(NpgsqlDataReader r, int first)
        => new(r.GetInt64(first), r.GetInt64(first + 1), r.GetInt64(first + 2), r.GetInt64(first + 3), r.GetInt64(first + 4), r.GetInt64(first + 5));

    public async Task<List<BucketWrite>> LoadHourlyAsync(long fromHour, CancellationToken cancellationToken)
    {
        await using var cmd = _source.CreateCommand($"SELECT rule, hour, {CountColumns} FROM sentinel_history_hourly WHERE node = $1 AND hour >= $2");
        cmd.Parameters.Add(new NpgsqlParameter { Value = _node });
        cmd.Parameters.Add(new NpgsqlParameter { Value = fromHour });
        var list = new List<BucketWrite>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken)) list.Add(new BucketWrite(r.GetString(0), r.GetInt64(1), Counts(r, 2)));
        return list;
    }

    public async Task<(DateTimeOffset Now, List<(string Node, BucketWrite Bucket)> Hours)> OthersHourlyAsync(long fromHour, DateTimeOffset? since,
        CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("SELECT now()"),
                new NpgsqlBatchCommand($"""
                    SELECT node, rule, hour, {CountColumns} FROM sentinel_history_hourly
                    WHERE node <> $1 AND hour >= $2 AND ($3::timestamptz IS NULL OR updated_at > $3)
                    """),
            },
        };
        var p = batch.BatchCommands[1].Parameters;
        p.Add(new NpgsqlParameter { Value = _node });
        p.Add(new NpgsqlParameter { Value = fromHour });
        p.Add(new NpgsqlParameter<DateTimeOffset?> { TypedValue = since?.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        await using var r = await batch.ExecuteReaderAsync(cancellationToken);
        await r.ReadAsync(cancellationToken);
        var now = r.GetFieldValue<DateTimeOffset>(0);
        await r.NextResultAsync(cancellationToken);
        var list = new List<(string, BucketWrite)>();
        while (await r.ReadAsync(cancellationToken)) list.Add((r.GetString(0), new BucketWrite(r.GetString(1), r.GetInt64(2), Counts(r, 3))));
        return (now, list);
    }

    public async Task<Dictionary<string, List<CheckPoint>>> LatestAsync(CancellationToken cancellationToken)
    {
        // Each rule's two newest chunks, whichever node wrote them.
        await using var cmd = _source.CreateCommand("""
            SELECT rule, start_ms, data FROM (
                SELECT rule, start_ms, data, row_number() OVER (PARTITION BY rule ORDER BY start_ms DESC) AS n FROM sentinel_history_chunks) c
            WHERE n <= 2
            """);
        var result = new Dictionary<string, List<CheckPoint>>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            var rule = r.GetString(0);
            if (!result.TryGetValue(rule, out var points)) result[rule] = points = [];
            points.AddRange(CheckChunk.Decode(r.GetInt64(1), r.GetFieldValue<byte[]>(2)));
        }
        foreach (var points in result.Values) points.Sort((a, b) => a.At.CompareTo(b.At));
        return result;
    }

    public async Task<List<StoredHour>> HourlyAsync(string rule, DateTimeOffset from, DateTimeOffset to, CancellationToken cancellationToken)
    {
        await using var cmd = _source.CreateCommand($"SELECT hour, node = $4, {CountColumns} FROM sentinel_history_hourly WHERE rule = $1 AND hour BETWEEN $2 AND $3 ORDER BY hour");
        cmd.Parameters.Add(new NpgsqlParameter { Value = rule });
        cmd.Parameters.Add(new NpgsqlParameter { Value = from.ToUnixTimeMilliseconds() / HistoryMath.HourMs });
        cmd.Parameters.Add(new NpgsqlParameter { Value = to.ToUnixTimeMilliseconds() / HistoryMath.HourMs });
        cmd.Parameters.Add(new NpgsqlParameter { Value = _node });
        var list = new List<StoredHour>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken)) list.Add(new StoredHour(r.GetInt64(0), r.GetBoolean(1), Counts(r, 2)));
        return list;
    }

    public async Task<List<CheckPoint>> ChecksAsync(string rule, DateTimeOffset from, DateTimeOffset to, int limit, CancellationToken cancellationToken,
        long? beforeStartMs = null)
    {
        var fromMs = from.ToUnixTimeMilliseconds();
        var toMs = to.ToUnixTimeMilliseconds();
        // Newest chunks first. Two nodes' chunks may overlap in time (a rule moved mid-chunk), so reading stops only
        // once the limit is reached and the next chunk starts over an hour before the oldest check kept: a chunk ends
        // within its hour, so none after it reaches that check.
        await using var cmd = _source.CreateCommand("""
            SELECT start_ms, end_ms, data FROM sentinel_history_chunks
            WHERE rule = $1 AND end_ms >= $2 AND start_ms <= $3 AND (node <> $4 OR start_ms < $5) ORDER BY start_ms DESC
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = rule });
        cmd.Parameters.Add(new NpgsqlParameter { Value = fromMs });
        cmd.Parameters.Add(new NpgsqlParameter { Value = toMs });
        cmd.Parameters.Add(new NpgsqlParameter { Value = _node });
        cmd.Parameters.Add(new NpgsqlParameter { Value = beforeStartMs ?? long.MaxValue });
        var result = new List<CheckPoint>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            if (result.Count >= limit && r.GetInt64(0) < result[^1].At.ToUnixTimeMilliseconds() - HistoryMath.HourMs) break;
            result.AddRange(CheckChunk.Decode(r.GetInt64(0), r.GetFieldValue<byte[]>(2)).Where(p => p.At.ToUnixTimeMilliseconds() is var ms && ms >= fromMs && ms <= toMs));
            // Newest first, the limit kept: result[^1] is the oldest check kept.
            result.Sort((a, b) => b.At.CompareTo(a.At));
            if (result.Count > limit) result.RemoveRange(limit, result.Count - limit);
        }
        result.Sort((a, b) => a.At.CompareTo(b.At));
        return result;
    }

    public async Task<(int Chunks, int Hours)> PruneAsync(DateTimeOffset checksBefore, DateTimeOffset hourlyBefore, CancellationToken cancellationToken)
    {
        // Every node prunes the whole cluster's: a node that is gone for good leaves nothing behind.
        await using var chunks = _source.CreateCommand("DELETE FROM sentinel_history_chunks WHERE end_ms < $1");
        chunks.Parameters.Add(new NpgsqlParameter { Value = checksBefore.ToUnixTimeMilliseconds() });
        var c = await chunks.ExecuteNonQueryAsync(cancellationToken);
        await using var hours = _source.CreateCommand("DELETE FROM sentinel_history_hourly WHERE hour < $1");
        hours.Parameters.Add(new NpgsqlParameter { Value = hourlyBefore.ToUnixTimeMilliseconds() / HistoryMath.HourMs });
        return (c, await hours.ExecuteNonQueryAsync(cancellationToken));
    }

    public ValueTask DisposeAsync() => _source.DisposeAsync();
}
