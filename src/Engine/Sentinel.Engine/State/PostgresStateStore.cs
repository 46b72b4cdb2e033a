using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.State;

/// <summary>
/// Rule state, incidents and the notification outbox in PostgreSQL, for cluster mode: the same contract as
/// <see cref="SqliteStateStore"/> (one test suite runs over both), in tables <see cref="PostgresSchema"/> creates and
/// upgrades. A rule's state and the messages its change causes are written in one transaction. Writes from one
/// node are made one at a time, in the order asked, as the SQLite store makes them; times are kept to the microsecond.
/// </summary>
internal sealed partial class PostgresStateStore : IEngineStore, IClusterStore
{
    private readonly NpgsqlDataSource _source;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private PostgresStateStore(NpgsqlDataSource source, string node)
    {
        _source = source;
        Node = node;
    }

    /// <summary>This node's name: the owner it writes.</summary>
    public string Node { get; }

    /// <summary>The schema version the database had before this store opened it (0: new).</summary>
    public int FoundSchemaVersion { get; private init; }

    /// <summary>Connects and brings the schema up to date.</summary>
    /// <exception cref="SchemaTooNewException">A newer Sentinel upgraded the database.</exception>
    public static Task<PostgresStateStore> OpenAsync(string connectionString, CancellationToken cancellationToken)
        => OpenAsync(connectionString, Environment.MachineName, cancellationToken);

    /// <summary>Connects as the node <paramref name="node"/> and brings the schema up to date.</summary>
    /// <exception cref="SchemaTooNewException">A newer Sentinel upgraded the database.</exception>
    public static async Task<PostgresStateStore> OpenAsync(string connectionString, string node, CancellationToken cancellationToken)
    {
        var source = NpgsqlDataSource.Create(connectionString);
        try
        {
            var found = await PostgresSchema.MigrateAsync(source, cancellationToken);
            return new PostgresStateStore(source, node) { FoundSchemaVersion = found };
        }
        catch
        {
            await source.DisposeAsync();
            throw;
        }
    }

    public async Task<IReadOnlyDictionary<string, RuleState>> LoadAsync(CancellationToken cancellationToken)
    {
        await using var cmd = _source.CreateCommand($"SELECT {StateColumns} FROM sentinel_rule_state");
        return await ReadStatesAsync(cmd, cancellationToken);
    }

    private const string StateColumns = """
        rule, status, since, consecutive_failures, consecutive_successes, checks, failures,
        last_check::text, probe_state::text, remediation::text, config_paused
        """;

    private static async Task<Dictionary<string, RuleState>> ReadStatesAsync(NpgsqlCommand cmd, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, RuleState>(StringComparer.Ordinal);
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var state = ReadState(reader);
            result[state.Rule] = state;
        }
        return result;
    }

    // A row of StateColumns, from the reader's first column.
    private static RuleState ReadState(NpgsqlDataReader reader)
    {
        var rule = reader.GetString(0);
        if (!Enum.TryParse<RuleStatus>(reader.GetString(1), ignoreCase: true, out var status)) status = RuleStatus.Pending;
        return new RuleState(rule, status, reader.GetFieldValue<DateTimeOffset>(2), reader.GetInt32(3), reader.GetInt32(4),
            reader.GetInt64(5), reader.GetInt64(6),
            Json<CheckRecord>(reader, 7), Json<Dictionary<string, string>>(reader, 8), Json<RemediationState>(reader, 9))
        { ConfigPaused = reader.IsDBNull(10) ? null : reader.GetBoolean(10) };
    }

    // A value this Sentinel cannot read (written by another version, say) is left out, as the SQLite store does.
    private static T? Json<T>(NpgsqlDataReader reader, int column) where T : class
    {
        if (reader.IsDBNull(column)) return null;
        try { return JsonSerializer.Deserialize<T>(reader.GetString(column), SentinelJson.Options); }
        catch (JsonException) { return null; }
    }

    public async Task SaveAsync(IReadOnlyCollection<RuleState> states, IReadOnlyCollection<string> removed, CancellationToken cancellationToken)
    {
        if (states.Count == 0 && removed.Count == 0) return;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await _source.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            await UpsertStatesAsync(connection, tx, states, Node, cancellationToken);
            if (removed.Count > 0)
            {
                await using var delete = new NpgsqlCommand("""
                    DELETE FROM sentinel_rule_state WHERE rule IN
                        (SELECT rule FROM sentinel_rule_state WHERE rule = ANY($1) AND (node IS NULL OR node = $2) ORDER BY rule FOR UPDATE)
                    """, connection, tx);
                delete.Parameters.Add(new NpgsqlParameter { Value = removed.ToArray() });
                delete.Parameters.Add(new NpgsqlParameter { Value = Node });
                await delete.ExecuteNonQueryAsync(cancellationToken);
            }
            await tx.CommitAsync(cancellationToken);
        }
        finally { _gate.Release(); }
    }

    // All the states in one statement (arrays unnested), however many: a flush of 10,000 rules is one round trip. A
    // rule another node owns is not written (its owner's state is the one that counts). Rows are locked in the order
    // of their rule, as by every statement that locks several rule rows: two nodes writing or taking over the same
    // rules at once wait for each other, and never deadlock (measured: a node back after a kill took its rules over as
    // the others flushed theirs, and PostgreSQL aborted one).
    private static async Task UpsertStatesAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyCollection<RuleState> states, string node,
        CancellationToken cancellationToken)
    {
        if (states.Count == 0) return;
        await using var upsert = new NpgsqlCommand("""
            INSERT INTO sentinel_rule_state AS s (rule, status, since, consecutive_failures, consecutive_successes, checks, failures,
                last_check, probe_state, remediation, config_paused, updated_at, node)
            SELECT rule, status, since, cf, cs, checks, failures, last::jsonb, probe::jsonb, remediation::jsonb, paused, now(), $12
            FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::int[], $5::int[], $6::bigint[], $7::bigint[],
                        $8::text[], $9::text[], $10::text[], $11::boolean[])
                 AS u(rule, status, since, cf, cs, checks, failures, last, probe, remediation, paused)
            ORDER BY rule
            ON CONFLICT (rule) DO UPDATE SET status = excluded.status, since = excluded.since,
                consecutive_failures = excluded.consecutive_failures, consecutive_successes = excluded.consecutive_successes,
                checks = excluded.checks, failures = excluded.failures, last_check = excluded.last_check,
                probe_state = excluded.probe_state, remediation = excluded.remediation, config_paused = excluded.config_paused,
                updated_at = excluded.updated_at, node = excluded.node
            WHERE s.node IS NULL OR s.node = excluded.node
            """, connection, tx);
        // One row per rule: the last state given for a rule is the one kept (a statement cannot upsert a row twice).
        var rows = states.GroupBy(s => s.Rule, StringComparer.Ordinal).Select(g => g.Last()).ToList();
        Add(upsert, rows.Select(s => s.Rule).ToArray());
        Add(upsert, rows.Select(s => s.Status.ToString().ToLowerInvariant()).ToArray());
        Add(upsert, rows.Select(s => s.Since.ToUniversalTime()).ToArray(), NpgsqlDbType.Array | NpgsqlDbType.TimestampTz);
        Add(upsert, rows.Select(s => s.ConsecutiveFailures).ToArray());
        Add(upsert, rows.Select(s => s.ConsecutiveSuccesses).ToArray());
        Add(upsert, rows.Select(s => s.Checks).ToArray());
        Add(upsert, rows.Select(s => s.Failures).ToArray());
        Add(upsert, rows.Select(s => s.LastCheck is null ? null : JsonSerializer.Serialize(s.LastCheck, SentinelJson.Options)).ToArray());
        Add(upsert, rows.Select(s => s.ProbeState is null ? null : JsonSerializer.Serialize(s.ProbeState)).ToArray());
        Add(upsert, rows.Select(s => s.Remediation is null ? null : JsonSerializer.Serialize(s.Remediation, SentinelJson.Options)).ToArray());
        Add(upsert, rows.Select(s => s.ConfigPaused).ToArray());
        upsert.Parameters.Add(new NpgsqlParameter { Value = node });
        await upsert.ExecuteNonQueryAsync(cancellationToken);
    }

    private static void Add<T>(NpgsqlCommand cmd, T[] values, NpgsqlDbType? type = null)
    {
        var p = new NpgsqlParameter<T[]> { TypedValue = values };
        if (type is { } t) p.NpgsqlDbType = t;
        cmd.Parameters.Add(p);
    }

    public async Task<IReadOnlySet<string>> CommitAsync(RuleState? state, IReadOnlyCollection<Incident> incidents, IReadOnlyCollection<OutboxMessage> messages, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await _source.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            // A rule another node took over is that node's: an incident or message this node decided of it (a check
            // that ended as it was taken over) is not written, so the rule is told once, by its owner. The lock waits
            // for a take-over under way, and holds off the next until this commit is done (which then takes what it wrote).
            var taken = await TakenAsync(connection, tx, [.. incidents.Select(i => i.Rule), .. messages.Select(m => m.Rule), .. state is null ? [] : new[] { state.Rule }], cancellationToken);
            if (state is not null && !taken.Contains(state.Rule)) await UpsertStatesAsync(connection, tx, [state], Node, cancellationToken);
            foreach (var i in incidents.Where(i => !taken.Contains(i.Rule)))
            {
                await using var cmd = new NpgsqlCommand("""
                    INSERT INTO sentinel_incidents AS t (id, rule, body, closed, owner) VALUES ($1, $2, $3::jsonb, $4, $5)
                    ON CONFLICT (id) DO UPDATE SET rule = excluded.rule, body = excluded.body, closed = excluded.closed, owner = excluded.owner
                    WHERE t.owner IS NULL OR t.owner = excluded.owner
                    """, connection, tx);
                cmd.Parameters.Add(new NpgsqlParameter { Value = i.Id });
                cmd.Parameters.Add(new NpgsqlParameter { Value = i.Rule });
                cmd.Parameters.Add(new NpgsqlParameter { Value = JsonSerializer.Serialize(i, SentinelJson.Options) });
                cmd.Parameters.Add(new NpgsqlParameter { Value = i.ClosedAt is not null });
                cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }
            await WriteMessagesAsync(connection, tx, [.. messages.Where(m => !taken.Contains(m.Rule))], cancellationToken);
            await tx.CommitAsync(cancellationToken);
            return taken;
        }
        finally { _gate.Release(); }
    }

    public async Task<NotificationSnapshot> LoadNotificationsAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        // One snapshot of the three tables: a commit between the reads must not show a message without its incident.
        await using var tx = await connection.BeginTransactionAsync(System.Data.IsolationLevel.RepeatableRead, cancellationToken);
        // This node's: another node's incidents and messages are its own to send, remind of and resolve.
        var open = await BodiesAsync<Incident>(connection, tx, "SELECT body::text FROM sentinel_incidents WHERE NOT closed AND owner = $1 ORDER BY id", cancellationToken, Node);
        var pending = await BodiesAsync<OutboxMessage>(connection, tx, "SELECT body::text FROM sentinel_outbox WHERE status = 'pending' AND owner = $1 ORDER BY id", cancellationToken, Node);
        var counts = new Dictionary<OutboxStatus, long>();
        await using (var cmd = new NpgsqlCommand("SELECT status, COUNT(*) FROM sentinel_outbox GROUP BY status", connection, tx))
        await using (var r = await cmd.ExecuteReaderAsync(cancellationToken))
            while (await r.ReadAsync(cancellationToken))
                if (Enum.TryParse<OutboxStatus>(r.GetString(0), ignoreCase: true, out var s)) counts[s] = r.GetInt64(1);
        long maxIncident, maxMessage;
        await using (var cmd = new NpgsqlCommand("SELECT (SELECT COALESCE(MAX(id), 0) FROM sentinel_incidents), (SELECT COALESCE(MAX(id), 0) FROM sentinel_outbox)", connection, tx))
        await using (var r = await cmd.ExecuteReaderAsync(cancellationToken))
        {
            await r.ReadAsync(cancellationToken);
            (maxIncident, maxMessage) = (r.GetInt64(0), r.GetInt64(1));
        }
        await tx.CommitAsync(cancellationToken);
        return new NotificationSnapshot(open, pending, counts, maxIncident, maxMessage);
    }

    public async Task<List<OutboxMessage>> MessagesForAsync(IReadOnlyCollection<long> incidents, CancellationToken cancellationToken)
    {
        if (incidents.Count == 0) return [];
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("SELECT body::text FROM sentinel_outbox WHERE incident_id = ANY($1) ORDER BY id", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = incidents.ToArray() });
        return await ReadBodiesAsync<OutboxMessage>(cmd, cancellationToken);
    }

    public async Task<List<Incident>> RecentIncidentsAsync(int limit, CancellationToken cancellationToken)
    {
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        await using var cmd = new NpgsqlCommand("SELECT body::text FROM sentinel_incidents ORDER BY id DESC LIMIT $1", connection);
        cmd.Parameters.Add(new NpgsqlParameter { Value = limit });
        return await ReadBodiesAsync<Incident>(cmd, cancellationToken);
    }

    private static async Task<List<T>> BodiesAsync<T>(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken cancellationToken,
        params object[] values) where T : class
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        foreach (var v in values) cmd.Parameters.Add(new NpgsqlParameter { Value = v });
        return await ReadBodiesAsync<T>(cmd, cancellationToken);
    }

    private static async Task<List<T>> ReadBodiesAsync<T>(NpgsqlCommand cmd, CancellationToken cancellationToken) where T : class
    {
        var list = new List<T>();
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
            if (Json<T>(r, 0) is { } item) list.Add(item);
        return list;
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try { await _source.DisposeAsync(); }
        finally { _gate.Release(); }
    }
}
