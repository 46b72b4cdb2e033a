using System.Text.Json;

namespace Sentinel.Engine.State;

// The inbound pings, in the same file as rule state: a restart forgets no run that started and did not finish.
internal sealed partial class SqliteStateStore
{
    public async Task<IReadOnlyDictionary<string, PingRecord>> LoadPingsAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            var result = new Dictionary<string, PingRecord>(StringComparer.Ordinal);
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = "SELECT key, body FROM pings";
            using var reader = await cmd.ExecuteReaderAsync(cancellationToken);
            while (await reader.ReadAsync(cancellationToken))
                if (ReadPing(reader.GetString(1)) is { } record) result[reader.GetString(0)] = record;
            return result;
        }
        finally { _gate.Release(); }
    }

    public async Task<PingRecord> RecordPingAsync(string key, Func<PingRecord, PingRecord> change, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            using var tx = _connection.BeginTransaction();
            using var cmd = _connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT body FROM pings WHERE key = $key";
            cmd.Parameters.AddWithValue("$key", key);
            var was = await cmd.ExecuteScalarAsync(cancellationToken) is string body ? ReadPing(body) : null;
            var record = change(was ?? new PingRecord());
            cmd.CommandText = "INSERT INTO pings(key, body) VALUES ($key, $body) ON CONFLICT(key) DO UPDATE SET body = excluded.body";
            cmd.Parameters.AddWithValue("$body", JsonSerializer.Serialize(record, SentinelJson.Options));
            await cmd.ExecuteNonQueryAsync(cancellationToken);
            await tx.CommitAsync(cancellationToken);
            return record;
        }
        finally { _gate.Release(); }
    }

    // A record this Sentinel cannot read (written by another version) starts afresh, as a state does.
    internal static PingRecord? ReadPing(string body)
    {
        try { return JsonSerializer.Deserialize<PingRecord>(body, SentinelJson.Options); }
        catch (JsonException) { return null; }
    }
}
