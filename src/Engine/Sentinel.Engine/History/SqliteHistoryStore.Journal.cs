using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;

namespace Sentinel.Engine.History;

// The journal (IJournaledHistoryStore): one row a flush holding the open chunks' new checks, as slices of their bytes.
// A row is deleted in the transaction that writes the last of its chunks as rows of their own; a chunk's slices, one
// after the other from its first check, are its bytes.
internal sealed partial class SqliteHistoryStore
{
    private readonly bool _readOnly;

    private SqliteHistoryStore(SqliteConnection connection, string path, bool readOnly) : this(connection, path) => _readOnly = readOnly;

    private sealed record Slice(long RuleId, long ChunkStartMs, int FirstIndex, int Count, long EndMs, byte[] Data);

    private long WriteJournal(SqliteTransaction tx, IReadOnlyCollection<JournalSlice> journal, long dropBefore)
    {
        if (dropBefore > 0)
        {
            using var drop = _connection.CreateCommand();
            drop.Transaction = tx;
            drop.CommandText = "DELETE FROM journal WHERE id < $before";
            drop.Parameters.AddWithValue("$before", dropBefore);
            drop.ExecuteNonQuery();
        }
        if (journal.Count == 0) return 0;
        using var data = new MemoryStream();
        using (var w = new BinaryWriter(data, System.Text.Encoding.UTF8, leaveOpen: true))
            foreach (var s in journal)
            {
                w.Write7BitEncodedInt64(RuleId(s.Rule, tx));
                w.Write7BitEncodedInt64(s.ChunkStartMs);
                w.Write7BitEncodedInt(s.FirstIndex);
                w.Write7BitEncodedInt(s.Count);
                w.Write7BitEncodedInt64(s.EndMs - s.ChunkStartMs);
                w.Write7BitEncodedInt(s.Data.Length);
                w.Write(s.Data);
            }
        using var cmd = _connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO journal(data) VALUES ($data) RETURNING id";
        cmd.Parameters.Add("$data", SqliteType.Blob).Value = data.ToArray();
        return (long)cmd.ExecuteScalar()!;
    }

    // Every slice in the journal (of one rule, or all), oldest row first.
    private static List<Slice> ReadJournal(SqliteConnection connection, long? ruleId)
    {
        var slices = new List<Slice>();
        using var exists = connection.CreateCommand();
        exists.CommandText = "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'";
        if ((long)exists.ExecuteScalar()! == 0) return slices; // a file an older version wrote, opened read-only
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT data FROM journal ORDER BY id";
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            using var reader = new BinaryReader(new MemoryStream((byte[])r.GetValue(0), writable: false));
            try
            {
                while (reader.BaseStream.Position < reader.BaseStream.Length)
                {
                    var id = reader.Read7BitEncodedInt64();
                    var start = reader.Read7BitEncodedInt64();
                    var first = reader.Read7BitEncodedInt();
                    var count = reader.Read7BitEncodedInt();
                    var end = start + reader.Read7BitEncodedInt64();
                    var bytes = reader.ReadBytes(reader.Read7BitEncodedInt());
                    if (ruleId is null || ruleId == id) slices.Add(new Slice(id, start, first, count, end, bytes));
                }
            }
            catch (Exception ex) when (ex is EndOfStreamException or FormatException or ArgumentOutOfRangeException) { } // damaged: what came before stands
        }
        return slices;
    }

    // The journal's chunks, each from its first check on as far as its slices follow one another, that have no row of their own.
    private static List<(long RuleId, ChunkWrite Chunk)> JournaledChunks(SqliteConnection connection, SqliteTransaction? tx, List<Slice> slices)
    {
        var chunks = new List<(long, ChunkWrite)>();
        using var exists = connection.CreateCommand();
        exists.Transaction = tx;
        exists.CommandText = "SELECT count(*) FROM chunks WHERE rule_id = $rule AND start_ms = $start";
        var rule = exists.Parameters.Add("$rule", SqliteType.Integer);
        var startMs = exists.Parameters.Add("$start", SqliteType.Integer);
        foreach (var group in slices.GroupBy(s => (s.RuleId, s.ChunkStartMs)))
        {
            rule.Value = group.Key.RuleId;
            startMs.Value = group.Key.ChunkStartMs;
            if ((long)exists.ExecuteScalar()! > 0) continue; // closed and written since
            using var data = new MemoryStream();
            int count = 0;
            long end = group.Key.ChunkStartMs;
            foreach (var s in group.OrderBy(s => s.FirstIndex))
            {
                if (s.FirstIndex != count) break; // not the next checks: the chain ends
                data.Write(s.Data);
                count += s.Count;
                end = s.EndMs;
            }
            if (count > 0) chunks.Add((group.Key.RuleId, new ChunkWrite("", group.Key.ChunkStartMs, end, count, data.ToArray())));
        }
        return chunks;
    }

    /// <summary>
    /// After a SIGKILL: the journal's chunks become rows of their own, their counts added to their hours', and the
    /// journal is emptied, in one transaction. Returns how many chunks it wrote.
    /// </summary>
    private static int RecoverJournal(SqliteConnection connection)
    {
        var slices = ReadJournal(connection, null);
        using var tx = connection.BeginTransaction();
        var chunks = new List<(long RuleId, ChunkWrite Chunk, HourCounts Counts)>();
        foreach (var (ruleId, chunk) in JournaledChunks(connection, tx, slices))
        {
            var counts = default(HourCounts);
            try { foreach (var p in CheckChunk.Decode(chunk.StartMs, chunk.Data)) counts.Add(p); }
            catch (Exception ex) when (ex is FormatException or IOException or ArgumentException) { continue; } // damaged: left out, never a failed start
            chunks.Add((ruleId, chunk, counts));
        }
        WriteChunks(connection, tx, chunks.Select(c => (c.RuleId, c.Chunk)));
        // The hour its checks count in: the chunk's own, as the engine that wrote it counted them unless its clock went back.
        WriteHours(connection, tx, chunks.Select(c => (c.RuleId, c.Chunk.StartMs / HistoryMath.HourMs, c.Counts)), add: true);
        using (var clear = connection.CreateCommand())
        {
            clear.Transaction = tx;
            clear.CommandText = "DELETE FROM journal";
            clear.ExecuteNonQuery();
        }
        tx.Commit();
        return chunks.Count;
    }

    // For a reader beside a stopped engine (the CLI after a SIGKILL): the checks still only in the journal. A running
    // engine holds them in memory, and the journal is made rows of their own at its next start.
    private List<CheckPoint> JournaledChecks(string rule, long fromMs, long toMs)
    {
        if (!_readOnly) return [];
        using var id = _connection.CreateCommand();
        id.CommandText = "SELECT id FROM rules WHERE name = $name";
        id.Parameters.AddWithValue("$name", rule);
        if (id.ExecuteScalar() is not long ruleId) return [];
        return JournaledChunks(_connection, null, ReadJournal(_connection, ruleId))
            .SelectMany(c => CheckChunk.Decode(c.Chunk.StartMs, c.Chunk.Data))
            .Where(p => p.At.ToUnixTimeMilliseconds() is var ms && ms >= fromMs && ms <= toMs).ToList();
    }

    [LoggerMessage(EventId = 412, Level = LogLevel.Information, Message = "History: {Chunks} chunks of checks not yet written when Sentinel last stopped were read back from the journal")]
    private static partial void LogRecovered(ILogger logger, int chunks);
}
