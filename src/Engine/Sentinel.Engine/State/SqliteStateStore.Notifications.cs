using System.Text.Json;
using Microsoft.Data.Sqlite;
using Sentinel.Engine.Notifications;
using Sentinel.Engine.Rules;

namespace Sentinel.Engine.State;

// Incidents and the notification outbox live in the same file as rule state, so the state change that causes a
// notification and the notification itself are written in one transaction.
internal sealed partial class SqliteStateStore
{
    public async Task<IReadOnlySet<string>> CommitAsync(RuleState? state, IReadOnlyCollection<Incident> incidents, IReadOnlyCollection<OutboxMessage> messages, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var tx = _connection.BeginTransaction();
            if (state is not null) await UpsertStatesAsync(tx, [state], cancellationToken);
            foreach (var i in incidents)
            {
                using var cmd = _connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = "INSERT INTO incidents(id, body, closed) VALUES ($id, $body, $closed) ON CONFLICT(id) DO UPDATE SET body = excluded.body, closed = excluded.closed";
                cmd.Parameters.AddWithValue("$body", JsonSerializer.Serialize(i, SentinelJson.Options));
                cmd.Parameters.AddWithValue("$closed", i.ClosedAt is null ? 0 : 1);
                cmd.Parameters.AddWithValue("$id", i.Id);
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }
            foreach (var m in messages)
            {
                using var cmd = _connection.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = """
                    INSERT INTO outbox(id, body, status, incident_id) VALUES ($id, $body, $status, $incident)
                    ON CONFLICT(id) DO UPDATE SET body = excluded.body, status = excluded.status, incident_id = excluded.incident_id
                    """;
                cmd.Parameters.AddWithValue("$incident", m.IncidentId is { } incident ? incident : DBNull.Value);
                cmd.Parameters.AddWithValue("$body", JsonSerializer.Serialize(m, SentinelJson.Options));
                cmd.Parameters.AddWithValue("$status", m.Status.ToString().ToLowerInvariant());
                cmd.Parameters.AddWithValue("$id", m.Id);
                await cmd.ExecuteNonQueryAsync(cancellationToken);
            }
            await tx.CommitAsync(cancellationToken);
            return NoneTaken;
        }
        finally { _gate.Release(); }
    }

    // One box: no other node takes a rule over.
    private static readonly IReadOnlySet<string> NoneTaken = new HashSet<string>();

    public async Task<NotificationSnapshot> LoadNotificationsAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var open = new List<Incident>();
            var pending = new List<OutboxMessage>();
            var counts = new Dictionary<OutboxStatus, long>();
            using (var cmd = _connection.CreateCommand())
            {
                cmd.CommandText = "SELECT body FROM incidents WHERE closed = 0";
                using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                    if (JsonSerializer.Deserialize<Incident>(r.GetString(0), SentinelJson.Options) is { } i) open.Add(i);
            }
            using (var cmd = _connection.CreateCommand())
            {
                cmd.CommandText = "SELECT body FROM outbox WHERE status = 'pending'";
                using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                    if (JsonSerializer.Deserialize<OutboxMessage>(r.GetString(0), SentinelJson.Options) is { } m) pending.Add(m);
            }
            using (var cmd = _connection.CreateCommand())
            {
                cmd.CommandText = "SELECT status, COUNT(*) FROM outbox GROUP BY status";
                using var r = await cmd.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                    if (Enum.TryParse<OutboxStatus>(r.GetString(0), ignoreCase: true, out var s)) counts[s] = r.GetInt64(1);
            }
            long Max(string table)
            {
                using var cmd = _connection.CreateCommand();
                cmd.CommandText = $"SELECT COALESCE(MAX(id), 0) FROM {table}";
                return (long)cmd.ExecuteScalar()!;
            }
            return new NotificationSnapshot(open, pending, counts, Max("incidents"), Max("outbox"));
        }
        finally { _gate.Release(); }
    }

    public async Task<List<OutboxMessage>> MessagesForAsync(IReadOnlyCollection<long> incidents, CancellationToken cancellationToken)
    {
        if (incidents.Count == 0) return [];
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var list = new List<OutboxMessage>();
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = $"SELECT body FROM outbox WHERE incident_id IN ({string.Join(",", incidents.Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)))}) ORDER BY id";
            using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
                if (JsonSerializer.Deserialize<OutboxMessage>(r.GetString(0), SentinelJson.Options) is { } m) list.Add(m);
            return list;
        }
        finally { _gate.Release(); }
    }

    public async Task<List<Incident>> RecentIncidentsAsync(int limit, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var list = new List<Incident>();
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = "SELECT body FROM incidents ORDER BY id DESC LIMIT $limit";
            cmd.Parameters.AddWithValue("$limit", limit);
            using var r = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
                if (JsonSerializer.Deserialize<Incident>(r.GetString(0), SentinelJson.Options) is { } i) list.Add(i);
            return list;
        }
        finally { _gate.Release(); }
    }
}
