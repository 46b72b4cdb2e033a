using System.Text.Json;
using Npgsql;

namespace Sentinel.Engine.State;

// The inbound pings, shared: whichever node a pinger reaches, the node that runs the check's rule reads the ping at
// its next check-in.
internal sealed partial class PostgresStateStore
{
    public async Task<IReadOnlyDictionary<string, PingRecord>> LoadPingsAsync(CancellationToken cancellationToken)
    {
        var result = new Dictionary<string, PingRecord>(StringComparer.Ordinal);
        await using var cmd = _source.CreateCommand("SELECT key, body::text FROM sentinel_pings");
        await using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
            if (SqliteStateStore.ReadPing(reader.GetString(1)) is { } record) result[reader.GetString(0)] = record;
        return result;
    }

    public async Task<PingRecord> RecordPingAsync(string key, Func<PingRecord, PingRecord> change, CancellationToken cancellationToken)
    {
        // Its own connection, not the write gate: a pinger waits for the answer. Two nodes pinged for one check at the
        // same moment take the row one after the other (the row lock), so neither ping is lost.
        await using var connection = await _source.OpenConnectionAsync(cancellationToken);
        await using var tx = await connection.BeginTransactionAsync(cancellationToken);
        await using (var insert = new NpgsqlCommand("INSERT INTO sentinel_pings (key, body) VALUES ($1, '{}') ON CONFLICT (key) DO NOTHING", connection, tx))
        {
            insert.Parameters.Add(new NpgsqlParameter { Value = key });
            await insert.ExecuteNonQueryAsync(cancellationToken);
        }
        PingRecord was;
        await using (var select = new NpgsqlCommand("SELECT body::text FROM sentinel_pings WHERE key = $1 FOR UPDATE", connection, tx))
        {
            select.Parameters.Add(new NpgsqlParameter { Value = key });
            was = await select.ExecuteScalarAsync(cancellationToken) is string body ? SqliteStateStore.ReadPing(body) ?? new PingRecord() : new PingRecord();
        }
        var record = change(was);
        await using (var update = new NpgsqlCommand("UPDATE sentinel_pings SET body = $2::jsonb, updated_at = now() WHERE key = $1", connection, tx))
        {
            update.Parameters.Add(new NpgsqlParameter { Value = key });
            update.Parameters.Add(new NpgsqlParameter { Value = JsonSerializer.Serialize(record, SentinelJson.Options) });
            await update.ExecuteNonQueryAsync(cancellationToken);
        }
        await tx.CommitAsync(cancellationToken);
        return record;
    }
}
