using System.Text.Json;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.State;

/// <summary>
/// Rule state in an embedded SQLite file. A file that is not a readable SQLite database is moved aside
/// (<c>sentinel.db.corrupt-&lt;time&gt;</c>) with a warning, and a fresh one is started: never a crash.
/// </summary>
internal sealed partial class SqliteStateStore : IEngineStore
{
    private const int SchemaVersion = 6;
    private readonly SqliteConnection _connection;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private SqliteStateStore(SqliteConnection connection) => _connection = connection;

    public string Path { get; private init; } = "";

    /// <summary>The file the corrupt database was moved to, when that happened at open.</summary>
    public string? MovedAside { get; private init; }

    public static SqliteStateStore Open(string path, ILogger logger, TimeProvider? time = null)
    {
        var connection = SqliteFile.Open(path, Prepare, logger, time, out var movedAside);
        return new SqliteStateStore(connection) { Path = path, MovedAside = movedAside };
    }

    private static void Prepare(SqliteConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
            CREATE TABLE IF NOT EXISTS rule_state (
                rule TEXT PRIMARY KEY,
                status TEXT NOT NULL,
                since TEXT NOT NULL,
                consecutive_failures INTEGER NOT NULL,
                consecutive_successes INTEGER NOT NULL,
                checks INTEGER NOT NULL,
                failures INTEGER NOT NULL,
                last_check TEXT NULL,
                probe_state TEXT NULL,
                remediation TEXT NULL,
                config_paused INTEGER NULL
            );
            CREATE TABLE IF NOT EXISTS incidents (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                body TEXT NOT NULL,
                closed INTEGER NOT NULL DEFAULT 0
            );
            CREATE TABLE IF NOT EXISTS outbox (
                id INTEGER PRIMARY KEY AUTOINCREMENT,
                body TEXT NOT NULL,
                status TEXT NOT NULL
            );
            CREATE INDEX IF NOT EXISTS outbox_status ON outbox(status);
            CREATE TABLE IF NOT EXISTS pings (key TEXT PRIMARY KEY, body TEXT NOT NULL);
            """;
        cmd.ExecuteNonQuery();
        Migrate(connection);
    }

    // Version 1 had no probe_state column, version 2 no remediation column, version 3 no outbox.incident_id,
    // version 4 no config_paused, version 5 no pings (made by Prepare, as every table is).
    private static void Migrate(SqliteConnection connection)
    {
        foreach (var column in new[] { "probe_state TEXT", "remediation TEXT", "config_paused INTEGER" })
        {
            using var columns = connection.CreateCommand();
            columns.CommandText = $"SELECT COUNT(*) FROM pragma_table_info('rule_state') WHERE name = '{column.Split(' ')[0]}'";
            if ((long)columns.ExecuteScalar()! != 0) continue;
            using var alter = connection.CreateCommand();
            alter.CommandText = $"ALTER TABLE rule_state ADD COLUMN {column} NULL";
            alter.ExecuteNonQuery();
        }
        // Version 4: the outbox knows its incident, so an incident's messages are found without reading them all.
        using (var columns = connection.CreateCommand())
        {
            columns.CommandText = "SELECT COUNT(*) FROM pragma_table_info('outbox') WHERE name = 'incident_id'";
            if ((long)columns.ExecuteScalar()! == 0)
            {
                using var alter = connection.CreateCommand();
                alter.CommandText = """
                    ALTER TABLE outbox ADD COLUMN incident_id INTEGER NULL;
                    UPDATE outbox SET incident_id = json_extract(body, '$.incidentId');
                    """;
                alter.ExecuteNonQuery();
            }
            using var index = connection.CreateCommand();
            index.CommandText = "CREATE INDEX IF NOT EXISTS outbox_incident ON outbox(incident_id)";
            index.ExecuteNonQuery();
        }
        using var version = connection.CreateCommand();
        version.CommandText = "INSERT INTO meta(key, value) VALUES ('schema_version', $version) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
        version.Parameters.AddWithValue("$version", SchemaVersion.ToString());
        version.ExecuteNonQuery();
    }

    /// <summary>
    /// The probes' durable state (a log offset, growth samples) as the engine last saved it, read without writing
    /// anything, beside a running engine or without one: for `sentinel check`. Empty when there is no state yet.
    /// </summary>
    public static async Task<IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>> ReadProbeStatesAsync(string path, CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, IReadOnlyDictionary<string, string>>(StringComparer.Ordinal);
        if (!File.Exists(path)) return result;
        try
        {
            await using var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = path, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());
            await connection.OpenAsync(cancellationToken);
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = "SELECT rule, probe_state FROM rule_state WHERE probe_state IS NOT NULL";
            await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                try
                {
                    if (JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(1)) is { } state) result[reader.GetString(0)] = state;
                }
                catch (JsonException) { }
            }
        }
        catch (SqliteException) { } // unreadable or from an older schema: the probes start afresh, as on a first run
        return result;
    }

    public async Task<IReadOnlyDictionary<string, RuleState>> LoadAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var result = new Dictionary<string, RuleState>(StringComparer.Ordinal);
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = "SELECT rule, status, since, consecutive_failures, consecutive_successes, checks, failures, last_check, probe_state, remediation, config_paused FROM rule_state";
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
            {
                var rule = reader.GetString(0);
                if (!Enum.TryParse<RuleStatus>(reader.GetString(1), ignoreCase: true, out var status)) status = RuleStatus.Pending;
                CheckRecord? last = null;
                if (!reader.IsDBNull(7))
                {
                    try { last = JsonSerializer.Deserialize<CheckRecord>(reader.GetString(7), SentinelJson.Options); }
                    catch (JsonException) { last = null; }
                }
                Dictionary<string, string>? probeState = null;
                if (!reader.IsDBNull(8))
                {
                    try { probeState = JsonSerializer.Deserialize<Dictionary<string, string>>(reader.GetString(8)); }
                    catch (JsonException) { probeState = null; }
                }
                RemediationState? remediation = null;
                if (!reader.IsDBNull(9))
                {
                    try { remediation = JsonSerializer.Deserialize<RemediationState>(reader.GetString(9), SentinelJson.Options); }
                    catch (JsonException) { remediation = null; }
                }
                result[rule] = new RuleState(rule, status, DateTimeOffset.Parse(reader.GetString(2), System.Globalization.CultureInfo.InvariantCulture),
                    reader.GetInt32(3), reader.GetInt32(4), reader.GetInt64(5), reader.GetInt64(6), last, probeState, remediation)
                    { ConfigPaused = reader.IsDBNull(10) ? null : reader.GetInt64(10) != 0 };
            }
            return result;
        }
        finally { _gate.Release(); }
    }

    public async Task SaveAsync(IReadOnlyCollection<RuleState> states, IReadOnlyCollection<string> removed, CancellationToken cancellationToken)
    {
        if (states.Count == 0 && removed.Count == 0) return;
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var tx = _connection.BeginTransaction();
            await UpsertStatesAsync(tx, states, cancellationToken);
            using (var delete = _connection.CreateCommand())
            {
                delete.Transaction = tx;
                delete.CommandText = "DELETE FROM rule_state WHERE rule = $rule";
                var p = delete.Parameters.Add("$rule", SqliteType.Text);
                foreach (var r in removed)
                {
                    p.Value = r;
                    await delete.ExecuteNonQueryAsync(cancellationToken);
                }
            }
            await tx.CommitAsync(cancellationToken);
        }
        finally { _gate.Release(); }
    }

    private async Task UpsertStatesAsync(SqliteTransaction tx, IReadOnlyCollection<RuleState> states, CancellationToken cancellationToken)
    {
        using var upsert = _connection.CreateCommand();
        upsert.Transaction = tx;
        upsert.CommandText = """
            INSERT INTO rule_state(rule, status, since, consecutive_failures, consecutive_successes, checks, failures, last_check, probe_state, remediation, config_paused)
            VALUES ($rule, $status, $since, $cf, $cs, $checks, $failures, $last, $probe, $remediation, $configPaused)
            ON CONFLICT(rule) DO UPDATE SET status=excluded.status, since=excluded.since,
                consecutive_failures=excluded.consecutive_failures, consecutive_successes=excluded.consecutive_successes,
                checks=excluded.checks, failures=excluded.failures, last_check=excluded.last_check, probe_state=excluded.probe_state,
                remediation=excluded.remediation, config_paused=excluded.config_paused
            """;
        var p = new[] { "$rule", "$status", "$since", "$cf", "$cs", "$checks", "$failures", "$last", "$probe", "$remediation", "$configPaused" }
            .Select(n => upsert.Parameters.Add(n, SqliteType.Text)).ToArray();
        foreach (var s in states)
        {
            p[0].Value = s.Rule;
            p[1].Value = s.Status.ToString().ToLowerInvariant();
            p[2].Value = s.Since.ToString("O");
            p[3].Value = s.ConsecutiveFailures;
            p[4].Value = s.ConsecutiveSuccesses;
            p[5].Value = s.Checks;
            p[6].Value = s.Failures;
            p[7].Value = s.LastCheck is null ? DBNull.Value : JsonSerializer.Serialize(s.LastCheck, SentinelJson.Options);
            p[8].Value = s.ProbeState is null ? DBNull.Value : JsonSerializer.Serialize(s.ProbeState);
            p[9].Value = s.Remediation is null ? DBNull.Value : JsonSerializer.Serialize(s.Remediation, SentinelJson.Options);
            p[10].Value = s.ConfigPaused is { } paused ? paused ? 1 : 0 : DBNull.Value;
            await upsert.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try { await _connection.DisposeAsync(); }
        finally { _gate.Release(); }
    }

}
