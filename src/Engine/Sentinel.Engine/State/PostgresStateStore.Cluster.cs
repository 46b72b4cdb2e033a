using System.Text.Json;
using Npgsql;

namespace Sentinel.Engine.State;

// What a cluster's nodes do with each other's records: take a rule's over, claim a message before it is sent, and
// take numbers no other node is given.
internal sealed partial class PostgresStateStore
{
    // Messages upserted with this node as their owner (also of a row no node owns yet); a row another node owns is
    // left as it is.
    private async Task WriteMessagesAsync(NpgsqlConnection connection, NpgsqlTransaction tx, IReadOnlyCollection<OutboxMessage> messages, CancellationToken cancellationToken)
    {
        foreach (var m in messages)
        {
            await using var cmd = new NpgsqlCommand("""
                INSERT INTO sentinel_outbox AS t (id, incident_id, body, status, owner, rule) VALUES ($1, $2, $3::jsonb, $4, $5, $6)
                ON CONFLICT (id) DO UPDATE SET incident_id = excluded.incident_id, body = excluded.body, status = excluded.status, owner = excluded.owner
                WHERE t.owner IS NULL OR t.owner = excluded.owner
                """, connection, tx);
            cmd.Parameters.Add(new NpgsqlParameter { Value = m.Id });
            cmd.Parameters.Add(new NpgsqlParameter<long?> { TypedValue = m.IncidentId });
            cmd.Parameters.Add(new NpgsqlParameter { Value = JsonSerializer.Serialize(m, SentinelJson.Options) });
            cmd.Parameters.Add(new NpgsqlParameter { Value = m.Status.ToString().ToLowerInvariant() });
            cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
            cmd.Parameters.Add(new NpgsqlParameter { Value = m.Rule });
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
    }

    // The rules of these another node owns now (their state row names it), locked until the transaction ends.
    private async Task<HashSet<string>> TakenAsync(NpgsqlConnection connection, NpgsqlTransaction tx, string[] rules, CancellationToken cancellationToken)
    {
        var taken = new HashSet<string>(StringComparer.Ordinal);
        if (rules.Length == 0) return taken;
        await using var cmd = new NpgsqlCommand("""
            SELECT rule, node FROM sentinel_rule_state WHERE rule = ANY($1) ORDER BY rule FOR SHARE
            """, connection, tx);
        cmd.Parameters.Add(new NpgsqlParameter { Value = rules.Distinct().ToArray() });
        await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
            if (!r.IsDBNull(1) && r.GetString(1) != Node) taken.Add(r.GetString(0));
        return taken;
    }

    // A message another node is sending this moment (claimed: its send start written) while it is alive is left to it.
    private const string NotSentByTheLiving = "(o.owner IS NULL OR o.owner = $2 OR NOT (o.owner = ANY($3)) OR o.body->>'sendingSince' IS NULL)";

    public async Task<AdoptedRules> AdoptAsync(IReadOnlyCollection<string> rules, CancellationToken cancellationToken, IReadOnlyCollection<string>? live = null)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await _source.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            // A rule whose message a live node is sending (claimed within the last minutes) waits for that send.
            var busy = new HashSet<string>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("""
                SELECT DISTINCT rule FROM sentinel_outbox
                WHERE rule = ANY($1) AND status = 'pending' AND owner <> $2 AND owner = ANY($3)
                  AND (body->>'sendingSince')::timestamptz > now() - interval '2 minutes'
                """, connection, tx))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = rules.ToArray() });
                cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
                cmd.Parameters.Add(new NpgsqlParameter { Value = (live ?? []).ToArray() });
                await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) busy.Add(r.GetString(0));
            }
            // Locked in the order of their rule first, as by every statement that locks several rule rows (no deadlock).
            // A rule whose row names this node already was taken by no other node since this one took it (another
            // node's writes of it change nothing): nothing to take, and what this node holds of it is its newest (taken
            // again, a state just written would be read back beside an incident still being written).
            var mine = new HashSet<string>(StringComparer.Ordinal);
            await using (var cmd = new NpgsqlCommand("SELECT rule, node FROM sentinel_rule_state WHERE rule = ANY($1) ORDER BY rule FOR UPDATE", connection, tx))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = rules.Where(r => !busy.Contains(r)).ToArray() });
                await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                    if (!r.IsDBNull(1) && r.GetString(1) == Node) mine.Add(r.GetString(0));
            }
            var names = rules.Where(r => !busy.Contains(r) && !mine.Contains(r)).ToArray();
            // Each UPDATE waits for a write of the old owner still under way, and from its commit on, that owner's
            // writes of these rows change nothing.
            Dictionary<string, RuleState> states;
            await using (var cmd = new NpgsqlCommand($"UPDATE sentinel_rule_state SET node = $2 WHERE rule = ANY($1) RETURNING {StateColumns}", connection, tx))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = names });
                cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
                states = await ReadStatesAsync(cmd, cancellationToken);
            }
            var open = await BodiesAsync<Incident>(connection, tx,
                "UPDATE sentinel_incidents SET owner = $2 WHERE rule = ANY($1) AND NOT closed RETURNING body::text", cancellationToken, names, Node);
            var pending = await BodiesAsync<OutboxMessage>(connection, tx,
                $"UPDATE sentinel_outbox o SET owner = $2 WHERE rule = ANY($1) AND status = 'pending' AND {NotSentByTheLiving} RETURNING body::text",
                cancellationToken, names, Node, (live ?? []).ToArray());
            await tx.CommitAsync(cancellationToken);
            return new AdoptedRules(states, [.. open.OrderBy(i => i.Id)], [.. pending.OrderBy(m => m.Id)]) { Busy = busy, Kept = mine };
        }
        finally { _gate.Release(); }
    }

    public async Task<List<OutboxMessage>> TakeOrphansAsync(IReadOnlyCollection<string> live, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await _source.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            var taken = await BodiesAsync<OutboxMessage>(connection, tx, $"""
                UPDATE sentinel_outbox o SET owner = $2 FROM sentinel_rule_state s
                WHERE s.rule = o.rule AND s.node = $2 AND o.status = 'pending' AND o.owner IS NOT NULL AND o.owner <> $2 AND {NotSentByTheLiving}
                RETURNING o.body::text
                """, cancellationToken, Array.Empty<string>(), Node, live.ToArray());
            await tx.CommitAsync(cancellationToken);
            return [.. taken.OrderBy(m => m.Id)];
        }
        finally { _gate.Release(); }
    }

    public async Task<ClaimResult> ClaimAsync(IReadOnlyCollection<OutboxMessage> messages, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            await using var connection = await _source.OpenConnectionAsync(cancellationToken);
            await using var tx = await connection.BeginTransactionAsync(cancellationToken);
            var claimed = new HashSet<long>();
            var lost = new HashSet<long>();
            // A row another transaction holds (its owner changing this moment) is skipped, not waited for: it is
            // neither claimed nor lost, and tried again at the next round.
            await using (var cmd = new NpgsqlCommand("""
                SELECT o.id, (o.owner IS NULL OR o.owner = $2) AND o.status = 'pending' AND (i.id IS NULL OR i.owner IS NULL OR i.owner = $2)
                FROM sentinel_outbox o LEFT JOIN sentinel_incidents i ON i.id = o.incident_id
                WHERE o.id = ANY($1)
                FOR UPDATE OF o SKIP LOCKED
                """, connection, tx))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = messages.Select(m => m.Id).ToArray() });
                cmd.Parameters.Add(new NpgsqlParameter { Value = Node });
                await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) (r.GetBoolean(1) ? claimed : lost).Add(r.GetInt64(0));
            }
            // A message that is not there at all was never written: its rule was another node's when it was decided.
            await using (var cmd = new NpgsqlCommand("SELECT id FROM sentinel_outbox WHERE id = ANY($1)", connection, tx))
            {
                cmd.Parameters.Add(new NpgsqlParameter { Value = messages.Select(m => m.Id).ToArray() });
                var present = new HashSet<long>();
                await using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) present.Add(r.GetInt64(0));
                lost.UnionWith(messages.Select(m => m.Id).Where(id => !present.Contains(id)));
            }
            await WriteMessagesAsync(connection, tx, [.. messages.Where(m => claimed.Contains(m.Id))], cancellationToken);
            await tx.CommitAsync(cancellationToken);
            return new ClaimResult(claimed, lost);
        }
        finally { _gate.Release(); }
    }

    private long _lastFallback;

    // From the sequence; while the database cannot be reached, from numbers far above any it gives (about 10^15):
    // one block per second and node (by a hash of its name), a second block in one second taking the next second's.
    // An outage must be numbered, and told, while the database is away too.
    public long ReserveIds()
    {
        try
        {
            using var cmd = _source.CreateCommand("SELECT nextval('sentinel_ids')");
            return (long)cmd.ExecuteScalar()!;
        }
        catch (Exception ex) when (ex is NpgsqlException or System.Net.Sockets.SocketException or TimeoutException or InvalidOperationException)
        {
            const long Nodes = 10_000;
            var slot = BitConverter.ToUInt32(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(Node))) % Nodes;
            var block = (DateTimeOffset.UtcNow.ToUnixTimeSeconds() * Nodes + slot) * ClusterIds.IdBlock;
            lock (_source) _lastFallback = block > _lastFallback ? block : _lastFallback + Nodes * ClusterIds.IdBlock;
            return _lastFallback;
        }
    }
}
