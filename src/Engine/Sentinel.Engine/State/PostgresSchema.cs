using Npgsql;

namespace Sentinel.Engine.State;

/// <summary>
/// Sentinel's tables in a PostgreSQL database shared by the nodes of a cluster (beside Quartz's <c>qrtz_</c> tables),
/// created and upgraded by numbered migrations. <c>sentinel_schema</c> records each migration applied; a node applies
/// the ones it knows and the database lacks, one node at a time (an advisory lock), and refuses to start against a
/// database a newer Sentinel has upgraded past what it knows.
/// </summary>
internal static class PostgresSchema
{
    // Taken (for the transaction) by a node migrating, so nodes started together migrate one after the other.
    private const long MigrationLock = 0x53_45_4E_54_49_4E_45_4C; // "SENTINEL"

    /// <summary>The migrations, version 1 first: a version is its index + 1. Never edit one that has shipped: add one.</summary>
    internal static readonly string[] Migrations =
    [
        // 1: rule state, incidents and the outbox, as the SQLite store keeps them (bodies as jsonb).
        """
        CREATE TABLE sentinel_rule_state (
            rule text PRIMARY KEY,
            status text NOT NULL,
            since timestamptz NOT NULL,
            consecutive_failures integer NOT NULL,
            consecutive_successes integer NOT NULL,
            checks bigint NOT NULL,
            failures bigint NOT NULL,
            last_check jsonb NULL,
            probe_state jsonb NULL,
            remediation jsonb NULL,
            config_paused boolean NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE sentinel_incidents (
            id bigint PRIMARY KEY,
            rule text NOT NULL,
            body jsonb NOT NULL,
            closed boolean NOT NULL DEFAULT false
        );
        CREATE INDEX sentinel_incidents_open ON sentinel_incidents (id) WHERE NOT closed;
        CREATE TABLE sentinel_outbox (
            id bigint PRIMARY KEY,
            incident_id bigint NULL,
            body jsonb NOT NULL,
            status text NOT NULL
        );
        CREATE INDEX sentinel_outbox_pending ON sentinel_outbox (id) WHERE status = 'pending';
        CREATE INDEX sentinel_outbox_incident ON sentinel_outbox (incident_id);
        """,
        // 2: each rule's records are owned by the node that runs the rule (it writes them; another node takes them
        // over before it runs the rule); numbers for incidents and messages come in blocks from one sequence.
        """
        ALTER TABLE sentinel_rule_state ADD COLUMN node text NULL;
        ALTER TABLE sentinel_incidents ADD COLUMN owner text NULL;
        ALTER TABLE sentinel_outbox ADD COLUMN owner text NULL;
        ALTER TABLE sentinel_outbox ADD COLUMN rule text NULL;
        UPDATE sentinel_outbox SET rule = body->>'rule';
        CREATE INDEX sentinel_incidents_rule ON sentinel_incidents (rule) WHERE NOT closed;
        CREATE INDEX sentinel_outbox_rule ON sentinel_outbox (rule) WHERE status = 'pending';
        CREATE SEQUENCE sentinel_ids INCREMENT BY 100 MINVALUE 1;
        SELECT setval('sentinel_ids', GREATEST(1, (SELECT COALESCE(MAX(id), 0) FROM sentinel_incidents), (SELECT COALESCE(MAX(id), 0) FROM sentinel_outbox)) + 1, false);
        """,
        // 3: the nodes, as each says at its check-in (Quartz forgets a node it takes for dead; Sentinel must not, to
        // tell it); rule states read by what changed since.
        """
        CREATE TABLE sentinel_nodes (
            node text PRIMARY KEY,
            version text NOT NULL,
            started_at timestamptz NOT NULL,
            last_seen timestamptz NOT NULL,
            checkin_ms integer NOT NULL,
            left_at timestamptz NULL,
            rules text NOT NULL,
            slots text[] NOT NULL
        );
        CREATE INDEX sentinel_rule_state_updated ON sentinel_rule_state (updated_at);
        """,
        // 4: the inbound pings, so that a ping any node hears is judged by the node that runs its rule.
        """
        CREATE TABLE sentinel_pings (
            key text PRIMARY KEY,
            body jsonb NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX sentinel_pings_updated ON sentinel_pings (updated_at);
        """,
        // 5: the check history, each node's checks apart (a rule checked by two nodes in one hour has a row of counts
        // from each, summed when read): the chunks of checks, and the hourly counts kept longer.
        """
        CREATE TABLE sentinel_history_chunks (
            rule text NOT NULL,
            node text NOT NULL,
            start_ms bigint NOT NULL,
            end_ms bigint NOT NULL,
            count integer NOT NULL,
            data bytea NOT NULL,
            PRIMARY KEY (rule, start_ms, node)
        );
        CREATE INDEX sentinel_history_chunks_end ON sentinel_history_chunks (end_ms);
        CREATE TABLE sentinel_history_hourly (
            rule text NOT NULL,
            node text NOT NULL,
            hour bigint NOT NULL,
            checks bigint NOT NULL,
            failures bigint NOT NULL,
            degraded bigint NOT NULL,
            down bigint NOT NULL,
            duration_sum_us bigint NOT NULL,
            duration_max_us bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (rule, hour, node)
        );
        CREATE INDEX sentinel_history_hourly_updated ON sentinel_history_hourly (updated_at);
        """,
        // 6: where each node's API is (a command about a rule goes to the node that runs it), and its host; the
        // cluster's API token, when the configuration sets none (a forwarded command carries it to the other node).
        """
        ALTER TABLE sentinel_nodes ADD COLUMN api text, ADD COLUMN host text;
        CREATE TABLE sentinel_secrets (
            name text PRIMARY KEY,
            value text NOT NULL,
            created_by text NOT NULL,
            created_at timestamptz NOT NULL DEFAULT now()
        );
        """,
    ];

    /// <summary>The newest version this Sentinel knows.</summary>
    public static int Version => Migrations.Length;

    /// <summary>Brings the database to <see cref="Version"/>; returns the version it found.</summary>
    /// <exception cref="SchemaTooNewException">A newer Sentinel has upgraded the database.</exception>
    public static async Task<int> MigrateAsync(NpgsqlDataSource source, CancellationToken cancellationToken)
    {
        await using var connection = await source.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await ExecuteAsync(connection, tx, $"SELECT pg_advisory_xact_lock({MigrationLock})", cancellationToken);
        await ExecuteAsync(connection, tx, """
            CREATE TABLE IF NOT EXISTS sentinel_schema (
                version integer PRIMARY KEY,
                applied_at timestamptz NOT NULL DEFAULT now(),
                applied_by text NOT NULL
            )
            """, cancellationToken);
        int found;
        await using (var cmd = new NpgsqlCommand("SELECT COALESCE(MAX(version), 0) FROM sentinel_schema", connection, tx))
            found = (int)(await cmd.ExecuteScalarAsync(cancellationToken))!;
        if (found > Version) throw new SchemaTooNewException(found, Version);
        for (var version = found + 1; version <= Version; version++)
        {
            await ExecuteAsync(connection, tx, Migrations[version - 1], cancellationToken);
            await using var record = new NpgsqlCommand("INSERT INTO sentinel_schema (version, applied_by) VALUES ($1, $2)", connection, tx);
            record.Parameters.Add(new NpgsqlParameter { Value = version });
            record.Parameters.Add(new NpgsqlParameter { Value = $"sentinel {EngineInfo.Version} on {Environment.MachineName}" });
            await record.ExecuteNonQueryAsync(cancellationToken);
        }
        await tx.CommitAsync(cancellationToken);
        return found;
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string sql, CancellationToken cancellationToken)
    {
        await using var cmd = new NpgsqlCommand(sql, connection, tx);
        await cmd.ExecuteNonQueryAsync(cancellationToken);
    }
}

/// <summary>The database was upgraded by a newer Sentinel than this one: this node must be upgraded before it starts.</summary>
internal sealed class SchemaTooNewException(int found, int known)
    : Exception($"The PostgreSQL database is at Sentinel schema version {found}, newer than the {known} this Sentinel ({EngineInfo.Version}) knows: "
        + "another node runs a newer Sentinel. Upgrade Sentinel on this node to that version before starting it (a database is never downgraded).")
{
    public int Found { get; } = found;
    public int Known { get; } = known;
}
