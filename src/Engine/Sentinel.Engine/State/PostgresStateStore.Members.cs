using Npgsql;
using NpgsqlTypes;

namespace Sentinel.Engine.State;

// The cluster's members: each node's check-in, and what it reads back of the others.
internal sealed partial class PostgresStateStore
{
    public async Task<ClusterRead> CheckInAsync(NodeCheckIn? me, DateTimeOffset? statesSince, CancellationToken cancellationToken, bool states = true,
        DateTimeOffset? pingsSince = null)
    {
        // Its own connection, not the write gate: a check-in must not wait behind a slow flush (it says the node lives).
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        await using var batch = new NpgsqlBatch(connection)
        {
            BatchCommands =
            {
                new NpgsqlBatchCommand("""
                    INSERT INTO sentinel_nodes AS n (node, version, started_at, last_seen, checkin_ms, left_at, rules, slots, api, host)
                    VALUES ($1, $2, $3, now(), $4, NULL, $5, $6, $7, $8)
                    ON CONFLICT (node) DO UPDATE SET version = excluded.version, started_at = excluded.started_at, last_seen = excluded.last_seen,
                        checkin_ms = excluded.checkin_ms, left_at = NULL, rules = excluded.rules, slots = excluded.slots, api = excluded.api, host = excluded.host
                    """),
                new NpgsqlBatchCommand("SELECT now()"),
                new NpgsqlBatchCommand("SELECT key, body::text FROM sentinel_pings WHERE $1::timestamptz IS NULL OR updated_at > $1"),
                new NpgsqlBatchCommand("SELECT node, version, started_at, last_seen, checkin_ms, left_at, rules, slots, api, host FROM sentinel_nodes ORDER BY node"),
                new NpgsqlBatchCommand($"""
                    SELECT {StateColumns}, node, updated_at FROM sentinel_rule_state
                    WHERE node IS DISTINCT FROM $1 AND ($2::timestamptz IS NULL OR updated_at > $2)
                    """),
            },
        };
        batch.BatchCommands[2].Parameters.Add(new NpgsqlParameter<DateTimeOffset?> { TypedValue = pingsSince?.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        var since = batch.BatchCommands[4].Parameters;
        since.Add(new NpgsqlParameter { Value = Node });
        since.Add(new NpgsqlParameter<DateTimeOffset?> { TypedValue = statesSince?.ToUniversalTime(), NpgsqlDbType = NpgsqlDbType.TimestampTz });
        if (!states) batch.BatchCommands.RemoveAt(4);
        if (me is null) batch.BatchCommands.RemoveAt(0);
        else
        {
            var upsert = batch.BatchCommands[0].Parameters;
            upsert.Add(new NpgsqlParameter { Value = Node });
            upsert.Add(new NpgsqlParameter { Value = me.Version });
            upsert.Add(new NpgsqlParameter { Value = me.StartedAt.ToUniversalTime() });
            upsert.Add(new NpgsqlParameter { Value = (int)me.CheckinInterval.TotalMilliseconds });
            upsert.Add(new NpgsqlParameter { Value = me.Rules });
            upsert.Add(new NpgsqlParameter<string[]> { TypedValue = [.. me.Slots] });
            upsert.Add(new NpgsqlParameter<string?> { TypedValue = me.Api, NpgsqlDbType = NpgsqlDbType.Text });
            upsert.Add(new NpgsqlParameter<string?> { TypedValue = me.Host, NpgsqlDbType = NpgsqlDbType.Text });
        }
        await using var reader = await batch.ExecuteReaderAsync(cancellationToken);
        // The upsert returns no rows: the first result is the database's time (also with no node in the table yet).
        await reader.ReadAsync(cancellationToken);
        var now = reader.GetFieldValue<DateTimeOffset>(0);
        await reader.NextResultAsync(cancellationToken);
        var pings = new Dictionary<string, PingRecord>(StringComparer.Ordinal);
        while (await reader.ReadAsync(cancellationToken))
            if (SqliteStateStore.ReadPing(reader.GetString(1)) is { } ping) pings[reader.GetString(0)] = ping;
        await reader.NextResultAsync(cancellationToken);
        var members = new List<ClusterMember>();
        while (await reader.ReadAsync(cancellationToken))
            members.Add(new ClusterMember(reader.GetString(0), reader.GetString(1), reader.GetFieldValue<DateTimeOffset>(2), reader.GetFieldValue<DateTimeOffset>(3),
                TimeSpan.FromMilliseconds(reader.GetInt32(4)), reader.IsDBNull(5) ? null : reader.GetFieldValue<DateTimeOffset>(5), reader.GetString(6),
                reader.GetFieldValue<string[]>(7))
            { Api = reader.IsDBNull(8) ? null : reader.GetString(8), Host = reader.IsDBNull(9) ? null : reader.GetString(9) });
        var written = new List<OwnedState>();
        if (states && await reader.NextResultAsync(cancellationToken))
            while (await reader.ReadAsync(cancellationToken))
            written.Add(new OwnedState(ReadState(reader), reader.IsDBNull(11) ? null : reader.GetString(11), reader.GetFieldValue<DateTimeOffset>(12)));
        return new ClusterRead(now, members, written) { Pings = pings };
    }

    /// <summary>
    /// The cluster's API token: <paramref name="proposed"/> when no node has set one yet, else the one the first node
    /// set (every node must accept the token a forwarded command carries).
    /// </summary>
    public async Task<string> SharedApiTokenAsync(string proposed, CancellationToken cancellationToken)
    {
        await using var cmd = _source.CreateCommand("""
            WITH added AS (
                INSERT INTO sentinel_secrets (name, value, created_by) VALUES ('api-token', $1, $2) ON CONFLICT (name) DO NOTHING RETURNING value)
            SELECT value FROM added UNION ALL SELECT value FROM sentinel_secrets WHERE name = 'api-token' LIMIT 1
            """);
        cmd.Parameters.Add(new NpgsqlParameter { Value = proposed });
        cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
        // A node that waited on another's insert of the same row sees neither that row (its snapshot is older) nor
        // its own: the next statement sees it.
        while (true)
            if (await cmd.ExecuteScalarAsync(cancellationToken) is string token) return token;
    }

    public async Task LeaveAsync(CancellationToken cancellationToken)
    {
        await using var cmd = _source.CreateCommand("UPDATE sentinel_nodes SET left_at = now() WHERE node = $1");
        cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}
